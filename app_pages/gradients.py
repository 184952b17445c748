"""Gradient lab: plain versus residual, with and without BatchNorm, at initialisation and in a
short training race, and the spread of layer responses of He et al. 2015, Fig. 7.
"""

from __future__ import annotations

import streamlit as st

from app_pages.gradient_charts import (
    gradient_norms_figure,
    loss_curves_figure,
    response_std_figure,
)
from app_pages.gradient_data import load_flows
from app_pages.shared import current_config
from resnet_viz.gradients import default_batch, response_std
from resnet_viz.presets import PRESETS, preset_name
from resnet_viz.race import RaceSettings, TrainingRace
from resnet_viz.shapes_data import CLASSES, make_shapes

CIFAR = ("resnet20", "resnet56", "resnet110")
IMAGENET = ("resnet18", "resnet34", "resnet50")
RACE_KEY = "gradient_lab_race"
RUNNING_KEY = "gradient_lab_running"
# Measured outcome of the default race; see README, "Gradient lab".
RACE_OUTCOME = (
    "Measured with these defaults (seeds 0, 1 and 2, 40 steps, on a 2-core CPU in about 40 s): "
    "plain-56 never left chance (loss ln 3 = 1.10) while ResNet-56 fell to 0.18-0.78 and "
    "plain-20 to 0.65-0.84. The deeper plain net trains worse than the shallower one: the "
    "degradation problem. Its residual twin, as deep, does not. Expect about a minute on an "
    "idle laptop CPU, much longer on a busy server."
)


def _flows_ui() -> None:
    st.markdown("#### 1. Gradient flow at initialisation")
    left, middle, right = st.columns([2, 1, 1])
    options = (*CIFAR, *IMAGENET)
    # Start from the sidebar's network when it is one of the CIFAR nets, else ResNet-56: four
    # ImageNet nets at 224 pixels take a minute on a CPU, too long for opening the page.
    sidebar = preset_name(current_config())
    name = left.selectbox(
        "Network (its plain twin and the variants without normalisation come with it)",
        options,
        index=options.index(sidebar) if sidebar in CIFAR else 1,
        key="gradient_lab_model",
    )
    config = PRESETS[name]
    # A batch of 64 at 224 pixels would take minutes on a CPU; ImageNet nets get at most 16.
    cifar = config.stem == "cifar"
    batch = middle.number_input(
        "Batch",
        min_value=2,
        max_value=64 if cifar else 16,
        value=default_batch(config),
        key=f"gradient_lab_batch_{'cifar' if cifar else 'imagenet'}",
    )
    seed = right.number_input("Seed", min_value=0, max_value=10_000, value=0)
    with st.spinner(f"Forward and backward passes of four {config.depth}-layer nets..."):
        flows = load_flows(config.to_url_token(), int(batch), int(seed))

    cols = st.columns(4)
    for col, (label, (ratio, _)) in zip(cols, flows.items(), strict=True):
        col.metric(label, f"{ratio:.3g}", help="first conv's weight-gradient norm / last conv's")
    series = {label: norms for label, (_, norms) in flows.items()}
    st.plotly_chart(
        gradient_norms_figure(series, f"{name} and its twins: |dL/dW| per layer"),
    )
    st.caption(
        "Training mode, Kaiming initialisation (the no-norm nets too), cross-entropy on a fixed "
        f"batch of {batch} generated images, seed {seed}. Numbers above the chart: first conv's "
        "gradient norm over the last conv's. With BatchNorm the plain net's gradients *grow* "
        "toward the input as it deepens (He et al. 2015, section 4.1: they do not vanish), by "
        "orders of magnitude at 110 layers, while the residual net's stay within a small "
        "factor. Without normalisation neither explodes: Kaiming's initialisation keeps the "
        "plain net's ratio near 1 at the start (try other seeds)."
    )


def _race_settings() -> RaceSettings:
    default = RaceSettings()
    with st.expander("Race settings"):
        left, right = st.columns(2)
        deep = left.selectbox(
            "Depth of the deep nets", (32, 44, 56, 110), index=2, key="gradient_lab_deep"
        )
        steps = right.number_input(
            "Steps", min_value=1, max_value=500, value=default.steps, key="gradient_lab_steps"
        )
    return RaceSettings(deep=int(deep), steps=int(steps))


def _start_race() -> None:
    # Read the settings widgets now: a callback's bound arguments date from the previous run,
    # before any change made together with the click.
    settings = RaceSettings(
        deep=int(st.session_state["gradient_lab_deep"]),
        steps=int(st.session_state["gradient_lab_steps"]),
    )
    st.session_state[RACE_KEY] = {"race": TrainingRace(settings), "losses": {}}
    st.session_state[RUNNING_KEY] = True


def _stop_race() -> None:
    st.session_state[RUNNING_KEY] = False


def _race_ui() -> TrainingRace | None:
    st.markdown("#### 2. Training race: the degradation problem")
    settings = _race_settings()
    names = list(settings.entrants())
    st.write(
        f"{names[0]}, {names[1]} and {names[2]} (CIFAR nets at widths "
        f"{'-'.join(map(str, settings.widths))}) train side by side on generated 32x32 "
        f"images of {', '.join(CLASSES[: settings.num_classes])}: {settings.steps} SGD steps "
        f"of {settings.batch} images each, the same batches for all three, seed "
        f"{settings.seed}. {RACE_OUTCOME}"
    )
    start, stop, _ = st.columns([1, 1, 4])
    start.button("Start the race", type="primary", on_click=_start_race, key="race_go")
    # Clicking "Stop" reruns the script, which interrupts the loop below between two Streamlit
    # calls; its callback runs first, so the rerun does not carry on training. The losses so far
    # stay in the session state.
    stop.button("Stop", on_click=_stop_race, key="race_stop")
    state = st.session_state.get(RACE_KEY)
    if state is None:
        return None
    race: TrainingRace = state["race"]
    settings = race.settings
    losses: dict[str, list[float]] = state["losses"]
    chart = st.empty()
    if st.session_state.get(RUNNING_KEY):
        progress = st.progress(race.steps_done / settings.steps, text="Training...")
        for step in race.run():
            for name, loss in step.losses.items():
                losses.setdefault(name, []).append(loss)
            progress.progress(
                step.step / settings.steps, text=f"Step {step.step} of {settings.steps}"
            )
            chart.plotly_chart(loss_curves_figure(losses, "Training loss"), key=f"race{step.step}")
        st.session_state[RUNNING_KEY] = False
        progress.empty()
    chart.plotly_chart(loss_curves_figure(losses, "Training loss"), key="race_final")
    if race.steps_done < settings.steps:
        st.caption(f"Stopped after {race.steps_done} of {settings.steps} steps.")
    return race


@st.cache_data(show_spinner=False, max_entries=1)
def response_batch(seed: int) -> object:
    # Images the race never trained on: a different seed of the same task.
    return make_shapes(256, seed=seed + 1)[0]


def _fig7_ui(race: TrainingRace | None) -> None:
    st.markdown("#### 3. Responses of each layer (He et al. 2015, Fig. 7)")
    if race is None or race.steps_done == 0:
        st.info("Run the training race first: Fig. 7 is measured on the nets it trains.")
        return
    images = response_batch(race.settings.seed)
    with st.spinner("Measuring every 3x3 layer's response..."):
        series = {name: response_std(model, images) for name, model in race.models.items()}
    st.plotly_chart(
        response_std_figure(series, f"Std of layer responses after {race.steps_done} steps"),
        key="fig7",
    )
    st.caption(
        "Each 3x3 layer's output after BatchNorm, before the ReLU or the addition, in eval mode "
        "on 256 held-out generated images. The paper measured fully trained CIFAR nets; these "
        "have trained for seconds, so expect the direction, not the paper's curves: the "
        "residual net's responses are generally smaller than the plain nets'."
    )


st.subheader("Gradient lab: plain versus residual")
_flows_ui()
_fig7_ui(_race_ui())
