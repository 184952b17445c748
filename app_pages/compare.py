"""Compare: two to four networks side by side, the choice kept in the link (`?compare=a,b`).

Totals, per-stage charts on shared axes, Table 1 side by side, the diagram difference of a pair
and the latency of a forward pass measured on this machine.
"""

from __future__ import annotations

import warnings

import pandas as pd
import streamlit as st
import torch

from app_pages.diagram_view import draw_diagram
from app_pages.shared import current_token, load_analysis
from resnet_viz import PRESETS, ResNetConfig, build_model
from resnet_viz.analysis import Analysis, analyze
from resnet_viz.charts import byte_text, compare_parts_figure, latency_figure
from resnet_viz.costs import part_totals
from resnet_viz.devices import available_devices, out_of_memory_as_error
from resnet_viz.latency import check_latency_fits, summarize, time_forward
from resnet_viz.paper_table import to_csv, to_latex, to_markdown
from resnet_viz.presets import describe

PARAM = "compare"
MAX_COMPARED = 4
PICK_KEY = "compare_pick"
EXTRA_KEY = "compare_extra"  # tokens that are not presets: from the link, the sidebar, typed in
RESULTS_KEY = "compare_latency"  # (token, device, batch) -> timed runs in ms, kept across reruns
LATENCY_BATCHES = (1, 2, 4, 8, 16, 32)


def _read_link() -> list[str]:
    """The link's networks, each checked; unreadable ones are named in a warning and dropped."""
    raw = st.query_params.get(PARAM, "")
    tokens, bad = [], []
    for token in (t.strip() for t in raw.split(",")):
        if not token or token in tokens:
            continue
        try:
            tokens.append(ResNetConfig.from_url_token(token).to_url_token())
        except ValueError as err:
            bad.append(f"{token!r} ({err})")
    if bad:
        st.warning(f"The link's comparison skipped {'; '.join(bad)}.")
    if len(tokens) > MAX_COMPARED:
        st.warning(f"The link names {len(tokens)} networks; the first {MAX_COMPARED} are shown.")
    return tokens[:MAX_COMPARED]


def _default_pick() -> list[str]:
    """The sidebar's network and a partner of its kind: a CIFAR net is set beside resnet20
    (its 32x32 input would make its bars vanish next to an ImageNet net's)."""
    current = current_token()
    cifar = ResNetConfig.from_url_token(current).stem == "cifar"
    first, second = ("resnet20", "resnet56") if cifar else ("resnet34", "resnet50")
    return [first if current != first else second, current]


def _add_typed() -> None:
    """Callback of the token box: check the token, then add it to the choice."""
    text = st.session_state.get("compare_typed", "").strip()
    if not text:
        return
    try:
        token = ResNetConfig.from_url_token(text).to_url_token()
    except ValueError as err:
        st.session_state.compare_typed_error = f"{text!r} is not a network token: {err}"
        return
    st.session_state.compare_typed_error = None
    st.session_state[EXTRA_KEY] = list(dict.fromkeys([*st.session_state[EXTRA_KEY], token]))
    picked = st.session_state[PICK_KEY]
    if token not in picked and len(picked) < MAX_COMPARED:
        st.session_state[PICK_KEY] = [*picked, token]
    st.session_state.compare_typed = ""


def selection_ui() -> list[str]:
    """The networks to compare, from the widget, which starts from the link once per session."""
    if PICK_KEY not in st.session_state:
        st.session_state[PICK_KEY] = _read_link() or _default_pick()
        st.session_state[EXTRA_KEY] = [t for t in st.session_state[PICK_KEY] if t not in PRESETS]
    current = current_token()
    if current not in PRESETS and current not in st.session_state[EXTRA_KEY]:
        st.session_state[EXTRA_KEY] = [*st.session_state[EXTRA_KEY], current]

    cols = st.columns([3, 2])
    picked = cols[0].multiselect(
        "Networks (two to four)",
        [*PRESETS, *st.session_state[EXTRA_KEY]],
        key=PICK_KEY,
        max_selections=MAX_COMPARED,
        help="presets, the sidebar's network, or any network token typed on the right",
    )
    cols[1].text_input(
        "Add a network by its token",
        key="compare_typed",
        on_change=_add_typed,
        placeholder="resnet50~se-1, resnet18~n-1.1.1~w-64.128.256",
        help="the token in the address of a page (`?model=...`), as the Build page shows it",
    )
    if st.session_state.get("compare_typed_error"):
        cols[1].error(st.session_state.compare_typed_error)
    st.query_params[PARAM] = ",".join(picked)
    return list(picked)


def _analyses(tokens: list[str]) -> dict[str, Analysis]:
    analyses = {}
    with st.spinner("Tracing the networks..."):
        for token in tokens:
            try:
                analyses[token] = load_analysis(token)
            except ValueError as err:
                st.error(f"{token}: {err}")
    return analyses


def totals_ui(analyses: dict[str, Analysis]) -> None:
    rows = []
    for token, a in analyses.items():
        config = ResNetConfig.from_url_token(token)
        memory = a.memory
        rows.append(
            {
                "network": token,
                "parameters": a.total_params,
                "mult-adds": a.mult_adds,
                "FLOPs": a.flops,
                "depth": config.depth,
                "input": "x".join(map(str, a.input_size)),
                "inference memory": byte_text(
                    memory.parameters + memory.buffers + memory.inference_peak
                ),
                "training memory": "n/a"
                if memory.training_total is None
                else byte_text(memory.training_total),
                "described as": describe(config),
            }
        )
    exact = st.column_config.NumberColumn(format="localized")
    columns = {"parameters": exact, "mult-adds": exact, "FLOPs": exact}
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config=columns)
    st.caption(
        "Parameters and mult-adds are exact, for one image at the input shown; FLOPs are 2 x "
        "mult-adds. Memory at batch 1 in float32: inference is weights plus the peak of live "
        "activations, training adds gradients and what backward keeps (no optimizer state); the "
        "Parameters & compute page gives it for any batch."
    )


def per_stage_ui(analyses: dict[str, Analysis]) -> None:
    parts = {token: part_totals(a) for token, a in analyses.items()}
    left, right = st.columns(2)
    left.plotly_chart(compare_parts_figure(parts, "params"), width="stretch")
    right.plotly_chart(compare_parts_figure(parts, "mult_adds"), width="stretch")


def table_ui(analyses: dict[str, Analysis]) -> None:
    tokens, shown = list(analyses), list(analyses.values())
    st.markdown(to_markdown(shown, titles=tokens), unsafe_allow_html=True)
    name = "_vs_".join(tokens)[:120]
    cols = st.columns([1, 1, 1, 5])
    cols[0].download_button("CSV", to_csv(shown, titles=tokens), f"{name}_table1.csv", "text/csv")
    cols[1].download_button("Markdown", to_markdown(shown, titles=tokens), f"{name}_table1.md")
    cols[2].download_button(
        "LaTeX", to_latex(shown, titles=tokens), f"{name}_table1.tex", "text/x-tex"
    )


def diagram_ui(tokens: list[str]) -> None:
    cols = st.columns([2, 2, 3])
    first = cols[0].selectbox("Network A", tokens, index=0, key="compare_a")
    second = cols[1].selectbox("Network B", tokens, index=min(1, len(tokens) - 1), key="compare_b")
    level = (
        cols[2].segmented_control(
            "Level", ["stages", "blocks"], default="stages", key="compare_level"
        )
        or "stages"
    )
    if first == second:
        st.info("Pick two different networks to see their difference.")
        return
    options = {
        "level": level,
        "theme": "light",
        "direction": "TB",
        "counts": False,
        "collapse": False,
        "highlight": None,
    }
    key = tuple(sorted(options.items()))
    if draw_diagram(first, second, key) is None:
        return
    st.caption("Dashed: in one network only; shapes or numbers that differ are shown for both.")


@st.cache_data(show_spinner=False, max_entries=64)
def timing_analysis(token: str, batch: int) -> Analysis:
    """The network traced on meta at the timed batch: what its pass will need."""
    config = ResNetConfig.from_url_token(token)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analyze(config, batch=batch)


@st.cache_resource(show_spinner=False, max_entries=8)
def timed_model(token: str, device: str) -> torch.nn.Module:
    """One model per network and device, random weights (seed 0), in eval mode; only read."""
    return build_model(ResNetConfig.from_url_token(token), device=device, seed=0)


def _measure(tokens: list[str], device: str, batch: int, warmup: int, repeats: int) -> None:
    """Time each network in turn; a click on Stop reruns the page, which ends this loop."""
    results = st.session_state.setdefault(RESULTS_KEY, {})
    bar = st.progress(0.0, text="Starting...")
    steps, done = len(tokens) * (warmup + repeats), 0
    for token in tokens:
        analysis = timing_analysis(token, batch)
        check_latency_fits(analysis, device, built=False)
        bar.progress(done / steps, text=f"Building {token} on {device}...")
        channels = ResNetConfig.from_url_token(token).in_channels
        shape = (batch, channels, *analysis.input_size)
        # An out-of-memory error on a GPU becomes a message naming the CPU (a ValueError,
        # shown by latency_ui); the runs timed before it stay in the results.
        with out_of_memory_as_error(torch.device(device), f"Timing {token}"):
            model = timed_model(token, device)
            for progress in time_forward(model, shape, warmup=warmup, repeats=repeats):
                done += 1
                if progress.times_ms:
                    results[(token, device, batch)] = progress.times_ms
                text = f"{token}: {progress.phase} run {progress.done} of {progress.total}"
                bar.progress(done / steps, text=text)
    bar.progress(1.0, text="Done.")


def latency_ui(tokens: list[str]) -> None:
    devices = [d for d in available_devices() if d != "meta"]
    cols = st.columns([2, 1, 1, 1, 1, 1], vertical_alignment="bottom")
    device = cols[0].selectbox("Device", devices, key="compare_device")
    batch = cols[1].selectbox("Batch", LATENCY_BATCHES, key="compare_batch")
    warmup = cols[2].number_input("Warm-up runs", 0, 20, 3, key="compare_warmup")
    repeats = cols[3].number_input("Timed runs", 1, 100, 10, key="compare_repeats")
    start = cols[4].button("Measure", type="primary", key="compare_measure")
    if cols[5].button("Stop", key="compare_stop"):
        st.info("Stopped; the runs made before the click are kept below.")
    if start:
        try:
            _measure(tokens, device, batch, int(warmup), int(repeats))
        except ValueError as err:
            st.error(str(err))

    results = st.session_state.get(RESULTS_KEY, {})
    shown = {
        t: summarize(results[(t, device, batch)]) for t in tokens if (t, device, batch) in results
    }
    if not shown:
        st.caption(
            f"Times one forward pass of each network on {device} at batch {batch}, random "
            "weights, after the warm-up runs. On a shared machine the numbers move; compare "
            "medians measured in the same go."
        )
        return
    st.plotly_chart(latency_figure(shown, f"{device}, batch {batch}"), width="stretch")
    rows = [
        {
            "network": t,
            "timed runs": s.repeats,
            "median ms": round(s.median_ms, 2),
            "first quartile ms": round(s.q1_ms, 2),
            "third quartile ms": round(s.q3_ms, 2),
            "fastest ms": round(s.min_ms, 2),
            "slowest ms": round(s.max_ms, 2),
        }
        for t, s in shown.items()
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(
        "Wall-clock time of `model(x)` under `torch.inference_mode`, the device synchronised "
        "before and after; Python's overhead is included, which dominates for small CIFAR nets."
    )


st.subheader("Compare networks")
tokens = selection_ui()
if len(tokens) < 2:
    st.info("Pick at least two networks to compare (up to four).")
    st.stop()
analyses = _analyses(tokens)
if len(analyses) < 2:
    st.stop()
totals_ui(analyses)
stages_tab, table_tab, diagram_tab, latency_tab = st.tabs(
    ["Per stage", "Table 1", "Diagram difference", "Latency"]
)
with stages_tab:
    per_stage_ui(analyses)
with table_tab:
    table_ui(analyses)
with diagram_tab:
    diagram_ui(list(analyses))
with latency_tab:
    latency_ui(list(analyses))
