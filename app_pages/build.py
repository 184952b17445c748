"""Build: pick or edit a network, set the input, and see its headline figures, stages,
configuration and module tree; download it as JSON or ONNX."""

from __future__ import annotations

import time

import streamlit as st

from app_pages.knobs import OPTION_NAMES, Knob, all_knobs, check, widget_value
from app_pages.shared import (
    InputSettings,
    current_analysis,
    current_config,
    current_inputs,
    current_token,
    load_tree,
    set_inputs,
    switch_model,
    usable_device,
)
from resnet_viz import ResNetConfig
from resnet_viz.analysis import DTYPES, Analysis, parse_input_size
from resnet_viz.devices import available_devices, available_memory, resolve_device
from resnet_viz.export import check_onnx_size, export_onnx
from resnet_viz.paper_table import human, to_markdown
from resnet_viz.presets import describe

SHORTCUT_NAMES = OPTION_NAMES["shortcut"]
KNOBS_OF = "knobs_of"  # the token the editor's widgets were last filled from
KNOB_ERRORS = "knob_errors"
INPUT_ERRORS = "input_errors"
COLUMNS = 4


def knob_key(name: str) -> str:
    return f"knob_{name}"


# -- the editor ------------------------------------------------------------------------------


def fill_knobs(config: ResNetConfig, token: str) -> None:
    """Set every widget from `config`: on the first visit, and when the model changed elsewhere.

    Widget state set before the widgets exist, never their `value`, for the reason given in
    shared.preset_picker_ui.
    """
    missing = any(knob_key(k.field) not in st.session_state for k in all_knobs())
    if st.session_state.get(KNOBS_OF) == token and not missing:
        return
    for knob in all_knobs():
        st.session_state[knob_key(knob.field)] = widget_value(knob, config)
    st.session_state[KNOBS_OF] = token
    st.session_state[KNOB_ERRORS] = {}


def knobs_changed(edited: str) -> None:
    """Callback: apply the edited configuration if it is valid, else keep the messages."""
    values = {k.field: st.session_state[knob_key(k.field)] for k in all_knobs()}
    config, errors = check(values, edited)
    st.session_state[KNOB_ERRORS] = errors
    if config is not None:
        token = config.to_url_token()
        switch_model(token)
        st.session_state[KNOBS_OF] = token


def reset_knobs() -> None:
    st.session_state[KNOBS_OF] = None


def knob_widget(knob: Knob) -> None:
    key = knob_key(knob.field)
    common = {
        "key": key,
        "on_change": knobs_changed,
        "args": (knob.field,),
        "help": knob.help or None,
    }
    if knob.kind == "choice":
        names = OPTION_NAMES.get(knob.field, {})
        st.selectbox(knob.label, knob.options, format_func=lambda v: names.get(v, v), **common)
    elif knob.kind == "bool":
        st.toggle(knob.label, **common)
    elif knob.kind == "int":
        st.number_input(knob.label, step=1, format="%d", **common)
    else:
        st.text_input(knob.label, placeholder=knob.placeholder or None, **common)
    message = st.session_state.get(KNOB_ERRORS, {}).get(knob.field)
    if message:
        st.error(message)


def editor_ui(config: ResNetConfig, token: str) -> None:
    fill_knobs(config, token)
    errors = st.session_state.get(KNOB_ERRORS, {})
    if errors:
        st.warning(
            f"Not applied: the model stays {describe(config)} until the fields marked below "
            "make a valid network."
        )
        if "" in errors:
            st.error(errors[""])
    knobs = all_knobs()
    columns = st.columns(COLUMNS)
    per_column = -(-len(knobs) // COLUMNS)
    for index, knob in enumerate(knobs):
        with columns[index // per_column]:
            knob_widget(knob)
    if errors:
        st.button("Reset the fields to the current model", on_click=reset_knobs, key="knob_reset")


# -- the input -----------------------------------------------------------------------------


def fill_inputs(settings: InputSettings) -> None:
    if st.session_state.get("inputs_of") == settings and "in_size" in st.session_state:
        return
    size = "" if settings.size is None else f"{settings.size[0]}x{settings.size[1]}"
    st.session_state.update(
        in_size=size, in_batch=settings.batch, in_dtype=settings.dtype, in_device=settings.device
    )
    st.session_state["inputs_of"] = settings
    st.session_state[INPUT_ERRORS] = {}


def inputs_changed() -> None:
    """Callback: take the new input settings if each can be read, else keep the messages."""
    state = st.session_state
    errors: dict[str, str] = {}
    size = None
    if state.in_size.strip():
        try:
            size = parse_input_size(state.in_size)
        except ValueError as err:
            errors["size"] = str(err)
    batch = state.in_batch
    if not isinstance(batch, int) or not 1 <= batch <= 4096:
        errors["batch"] = f"batch must be a whole number from 1 to 4096, got {batch}"
    state[INPUT_ERRORS] = errors
    if not errors:
        settings = InputSettings(size, batch, state.in_dtype, state.in_device)
        set_inputs(settings)
        state["inputs_of"] = settings


def inputs_ui(config: ResNetConfig) -> InputSettings:
    settings = current_inputs()
    fill_inputs(settings)
    errors = st.session_state.get(INPUT_ERRORS, {})
    devices = [d for d in available_devices() if d != "meta"]
    if settings.device not in devices:
        devices.append(settings.device)  # kept as asked, with the notice below
    cols = st.columns([3, 2, 2, 2])
    with cols[0]:
        natural = "x".join(map(str, settings.input_size(config)))
        st.text_input(
            "Input size (H x W)",
            key="in_size",
            placeholder=f"{natural} (what the network was made for)",
            on_change=inputs_changed,
            help="224, or HEIGHTxWIDTH such as 160x192; empty for the network's own size",
        )
        if "size" in errors:
            st.error(errors["size"])
    with cols[1]:
        st.number_input("Batch", step=1, format="%d", key="in_batch", on_change=inputs_changed)
        if "batch" in errors:
            st.error(errors["batch"])
    cols[2].selectbox("dtype", list(DTYPES), key="in_dtype", on_change=inputs_changed)
    cols[3].selectbox(
        "Device",
        devices,
        key="in_device",
        on_change=inputs_changed,
        help="Where the memory figures are checked against free memory; the CPU is always "
        "there, CUDA and MPS when this machine has them. Shapes are traced on 'meta'.",
    )
    device, notice = usable_device(settings)
    if notice:
        st.info(notice)
    return InputSettings(settings.size, settings.batch, settings.dtype, device)


# -- figures -------------------------------------------------------------------------------


def gib(count: int) -> str:
    return f"{count / 2**30:.2f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


def headline_ui(config: ResNetConfig, analysis: Analysis) -> None:
    memory = analysis.memory
    weights = memory.parameters + memory.buffers
    inference = weights + memory.inference_peak
    training = memory.training_total
    top, bottom = st.columns(4), st.columns(4)
    params = analysis.total_params
    top[0].metric("Parameters", human(params), help=f"{params:,} learnable")
    top[1].metric(
        "Mult-adds",
        human(analysis.mult_adds),
        help=f"{analysis.mult_adds:,} multiply-adds for the whole batch",
    )
    top[2].metric("FLOPs", human(analysis.flops), help=f"{analysis.flops:,}: 2 x mult-adds")
    top[3].metric("Depth", config.depth, help="weighted layers on the main path")
    bottom[0].metric(
        "Blocks",
        sum(config.blocks_per_stage),
        help="per stage: " + "-".join(map(str, config.blocks_per_stage)),
    )
    bottom[1].metric("Output stride", config.output_stride)
    bottom[2].metric(
        "Memory, inference",
        gib(inference),
        help=f"{inference:,} bytes: weights and buffers {weights:,} + peak activations "
        f"{memory.inference_peak:,}",
    )
    bottom[3].metric(
        "Memory, training",
        "n/a" if training is None else gib(training),
        help="weights, their gradients and the activations kept for the backward pass; no "
        "optimizer state"
        if training is not None
        else "BatchNorm cannot train on one value per channel (batch 1 and 1x1 maps)",
    )
    height, width = analysis.input_size
    st.caption(
        f"For a batch of {analysis.batch} at {height}x{width} in {analysis.dtype}. Parameters "
        "are learnable weights only (BatchNorm running statistics are buffers). Mult-adds are "
        "what the papers call FLOPs; counters such as torch.utils.flop_counter report twice as "
        "many, shown as FLOPs. Memory is what PyTorch holds in tensors, before allocator "
        "rounding."
    )


def fits_caption(analysis: Analysis, device: str) -> None:
    """How the training figure compares with the device's free memory, where it can be told."""
    free = available_memory(resolve_device(device))
    need = analysis.memory.training_total
    if free is None or need is None:
        return
    verdict = "fits" if need <= free else "does not fit"
    st.caption(f"Training at this batch {verdict} in the {gib(free)} free on {device}.")


def stage_rows(config: ResNetConfig) -> list[dict[str, object]]:
    """One row per stage: the numbers that distinguish the stages of this configuration."""
    block = "bottleneck" if config.block == "bottleneck" else "basic block"
    return [
        {
            "stage": f"Stage {index + 1}",
            "module": f"layer{index + 1}",
            "paper row": f"conv{index + 2}_x",
            "blocks": f"{blocks} x {block}",
            "width": config.widths[index],
            "out channels": config.widths[index] * config.expansion,
            "first stride": config.stage_strides[index],
            "dilation": 2 ** sum(stage <= index + 1 for stage in config.dilated_stages),
            "shortcut": SHORTCUT_NAMES[config.shortcut] if config.residual else "none (plain)",
        }
        for index, blocks in enumerate(config.blocks_per_stage)
    ]


# -- downloads -----------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=4)
def onnx_bytes(token: str, input_size: tuple[int, int]) -> bytes:
    """The ONNX file, per model and traced size; a few only, since each is up to 2 GiB."""
    return export_onnx(ResNetConfig.from_url_token(token), input_size)


def downloads_ui(config: ResNetConfig, token: str, input_size: tuple[int, int]) -> None:
    name = token.replace("~", "_")[:80]
    cols = st.columns(2)
    cols[0].download_button(
        "Configuration (JSON)",
        config.to_json(),
        file_name=f"{name}.json",
        mime="application/json",
        help="Reads back with `resnet-viz summary FILE` or ResNetConfig.from_json",
    )
    with cols[1]:
        asked = st.session_state.get("onnx_for") == (token, input_size)
        if not asked:
            st.button(
                "Make the ONNX file",
                key="onnx_make",
                on_click=st.session_state.__setitem__,
                args=("onnx_for", (token, input_size)),
                help="The network with its random initialisation (seed 0), traced at the "
                "input size above with a dynamic batch, to open in Netron",
            )
            return
        try:
            check_onnx_size(config)
            started = time.perf_counter()
            with st.spinner("Exporting to ONNX (resnet50: about 15 s, resnet152: 30 to 60 s)..."):
                data = onnx_bytes(token, input_size)
        except ValueError as err:
            st.error(f"No ONNX file: {err}")
            return
        st.download_button(
            f"ONNX model ({len(data) / 2**20:,.1f} MB)",
            data,
            file_name=f"{name}.onnx",
            mime="application/octet-stream",
            key="onnx_download",
        )
        st.caption(f"Ready in {time.perf_counter() - started:.1f} s; open it in Netron.")


# -- the page ------------------------------------------------------------------------------

config = current_config()
token = current_token()
st.subheader(describe(config))
# The figures first, so that an edit below shows its effect without scrolling.
figures = st.container()
with st.expander("Edit the network", expanded=True):
    editor_ui(config, token)
st.markdown("**Input**")
settings = inputs_ui(config)
analysis = current_analysis()
with figures:
    headline_ui(config, analysis)
    fits_caption(analysis, settings.device)
for message in analysis.warnings:
    st.warning(message)
downloads_ui(config, token, analysis.input_size)

st.markdown("**Table 1** (as in He et al. 2015)")
st.markdown(to_markdown(analysis, titles=["layers"]), unsafe_allow_html=True)

st.markdown("**Stages**")
st.dataframe(stage_rows(config), hide_index=True)

left, right = st.columns(2)
with left:
    st.markdown("**Configuration** (JSON, as the command line accepts it)")
    st.code(config.to_json(), language="json")
with right:
    st.markdown("**Module tree** (PyTorch's own printout)")
    st.code(load_tree(token), language="text", height=460)
