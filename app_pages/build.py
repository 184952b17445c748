"""Build: the chosen network's headline figures, its stages, configuration and module tree."""

from __future__ import annotations

import streamlit as st

from app_pages.shared import current_analysis, current_config, current_token, load_tree
from resnet_viz import ResNetConfig
from resnet_viz.analysis import Analysis
from resnet_viz.paper_table import human, to_markdown
from resnet_viz.presets import describe

SHORTCUT_NAMES = {
    "A": "A: zero-padded identity",
    "B": "B: projection on change",
    "C": "C: projection everywhere",
    "D": "D: avg pool + projection",
}


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


config = current_config()
st.subheader(describe(config))
analysis = current_analysis()
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
    st.code(load_tree(current_token()), language="text", height=460)
