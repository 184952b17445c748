"""resnet-viz in the browser: `streamlit run app.py`.

For now one page: pick a preset and see its headline figures, the paper's Table 1 and its
structure. The pages for diagrams, compute, activations, comparison and the lecture mode build
on this.
"""

from __future__ import annotations

import logging
import warnings

import streamlit as st

from resnet_viz import PRESETS, ResNetConfig, build_model
from resnet_viz.analysis import Analysis, analyze
from resnet_viz.paper_table import human, to_markdown
from resnet_viz.presets import describe, preset_name

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

DEFAULT_PRESET = "resnet50"
CUSTOM = "custom"
SHORTCUT_NAMES = {
    "A": "A: zero-padded identity",
    "B": "B: projection on change",
    "C": "C: projection everywhere",
    "D": "D: avg pool + projection",
}


# Bounded, so that a stream of distinct links cannot grow the server's memory without end.
@st.cache_data(show_spinner=False, max_entries=64)
def load_analysis(token: str) -> Analysis:
    """Every layer's numbers at 224x224 (32x32 for CIFAR nets), traced on `meta`: no memory."""
    config = ResNetConfig.from_url_token(token)
    with warnings.catch_warnings():
        # Kept in analysis.warnings and shown on the page instead.
        warnings.simplefilter("ignore")
        return analyze(config, input_size=32 if config.stem == "cifar" else 224)


@st.cache_data(show_spinner=False, max_entries=64)
def load_tree(token: str) -> str:
    """PyTorch's own printout of the module."""
    return str(build_model(ResNetConfig.from_url_token(token), device="meta"))


def config_from_url() -> ResNetConfig:
    token = st.query_params.get("model", DEFAULT_PRESET)
    try:
        return ResNetConfig.from_url_token(token)
    except ValueError as err:
        st.warning(f"The link's model could not be read ({err}); showing {DEFAULT_PRESET}.")
        return PRESETS[DEFAULT_PRESET]


def preset_picker_ui(current: ResNetConfig) -> ResNetConfig:
    # The widget keeps its own state under a fixed key, set from the link once per session.
    # Computing its `index` from the link on every run would make Streamlit treat it as a new
    # widget whenever the link changed, and drop every second pick.
    if "preset" not in st.session_state:
        st.session_state.preset = preset_name(current) or CUSTOM
    choice = st.sidebar.selectbox(
        "Preset",
        [CUSTOM, *PRESETS],
        key="preset",
        format_func=lambda name: "custom (from the link)" if name == CUSTOM else name,
    )
    return current if choice == CUSTOM else PRESETS[choice]


def headline_ui(config: ResNetConfig, analysis: Analysis) -> None:
    cols = st.columns(5)
    params = analysis.total_params
    cols[0].metric("Parameters", human(params), help=f"{params:,} learnable")
    cols[1].metric(
        "Mult-adds",
        human(analysis.mult_adds),
        help=f"{analysis.mult_adds:,} multiply-adds for one image; FLOPs are twice this",
    )
    cols[2].metric("Depth", config.depth, help="weighted layers on the main path")
    cols[3].metric(
        "Blocks",
        sum(config.blocks_per_stage),
        help="per stage: " + "-".join(map(str, config.blocks_per_stage)),
    )
    cols[4].metric("Output stride", config.output_stride)
    height, width = analysis.input_size
    st.caption(
        f"At a {height}x{width} input. Parameters are learnable weights only (BatchNorm running "
        "statistics are buffers). Mult-adds are what the papers call FLOPs; counters such as "
        "torch.utils.flop_counter report twice as many."
    )


def main() -> None:
    st.set_page_config(page_title="resnet-viz", layout="wide")
    st.title("resnet-viz")

    config = preset_picker_ui(config_from_url())
    token = config.to_url_token()
    st.query_params["model"] = token

    st.subheader(describe(config))
    try:
        analysis = load_analysis(token)
    except ValueError as err:
        st.error(str(err))
        st.stop()
    headline_ui(config, analysis)
    for message in analysis.warnings:
        st.warning(message)

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


main()
