"""Parameters & compute: where the chosen network's parameters, mult-adds and memory go."""

from __future__ import annotations

import warnings

import pandas as pd
import streamlit as st

from app_pages.shared import current_analysis, current_config, current_token
from resnet_viz import ResNetConfig
from resnet_viz.analysis import DTYPES, Analysis, Memory
from resnet_viz.charts import (
    byte_text,
    memory_figure,
    memory_parts,
    part_bars_figure,
    treemap_figure,
)
from resnet_viz.costs import BlockCost, block_costs, memory_by_batch, part_totals
from resnet_viz.paper_table import human
from resnet_viz.presets import describe

EXACT = st.column_config.NumberColumn(format="localized")
PERCENT = st.column_config.NumberColumn(format="%.1f %%")
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CHANNELS = (64, 128, 256, 512, 1024, 2048)
MAP_SIZES = (112, 56, 28, 14, 7)


@st.cache_data(show_spinner=False, max_entries=64)
def load_memory(token: str, batch: int, dtype: str) -> Memory:
    """The memory at this batch, traced at that batch (it is not exactly batch x batch 1)."""
    config = ResNetConfig.from_url_token(token)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-map warnings are shown by the analysis above
        return memory_by_batch(config, [batch], dtype=dtype)[batch]


@st.cache_data(show_spinner=False, max_entries=32)
def load_block_costs(channels: int, size: int) -> tuple[BlockCost, BlockCost]:
    return block_costs(channels, size)


def where_ui(analysis: Analysis) -> None:
    shown = st.segmented_control(
        "Size the boxes by",
        ["params", "mult_adds"],
        default="params",
        key="compute_measure",
        format_func=lambda m: "parameters" if m == "params" else "mult-adds",
    )
    st.plotly_chart(treemap_figure(analysis, shown or "params"), width="stretch")
    st.caption(
        "Stem, stages and head, then blocks; click a box to open it down to its layers, and the "
        "bar at the top to go back. Hover for the exact count. Layers that hold nothing (ReLU, "
        "pooling, additions) have no box."
    )


def per_stage_ui(analysis: Analysis) -> None:
    parts = part_totals(analysis)
    left, right = st.columns(2)
    left.plotly_chart(part_bars_figure(parts, "params"), width="stretch")
    right.plotly_chart(part_bars_figure(parts, "mult_adds"), width="stretch")
    rows = [
        {
            "part": p.label,
            "module": p.name,
            "parameters": p.params,
            "% of parameters": 100 * p.params / max(analysis.total_params, 1),
            "mult-adds": p.mult_adds,
            "% of mult-adds": 100 * p.mult_adds / max(analysis.mult_adds, 1),
        }
        for p in parts
    ]
    config = {"parameters": EXACT, "mult-adds": EXACT}
    config.update({"% of parameters": PERCENT, "% of mult-adds": PERCENT})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config=config)
    st.caption(
        f"Together: {analysis.total_params:,} parameters and {analysis.mult_adds:,} mult-adds "
        "for one image, the analysis's totals."
    )


def memory_ui(token: str, analysis: Analysis) -> None:
    cols = st.columns([3, 1])
    batch = cols[0].select_slider("Batch size", BATCHES, value=1, key="compute_batch")
    dtype = cols[1].selectbox("Number type", list(DTYPES), key="compute_dtype")
    with st.spinner(f"Tracing batch {batch}..."):
        memory = load_memory(token, batch, dtype)
    parts = memory_parts(memory)
    shown = {
        "Parameters": memory.parameters,
        "Buffers": memory.buffers,
        "Inference peak": sum(parts["inference"].values()),
        "Training step": memory.training_total,
    }
    cols = st.columns(len(shown))
    for col, (label, count) in zip(cols, shown.items(), strict=True):
        if count is None:
            col.metric(label, "n/a", help="BatchNorm cannot train on one value per channel")
        else:
            col.metric(label, byte_text(count), help=f"{count:,} bytes")
    st.plotly_chart(memory_figure(memory), width="stretch")
    height, width = analysis.input_size
    st.caption(
        f"At {height}x{width}, traced at batch {batch} on `meta` (not scaled from batch 1: "
        "BatchNorm keeps its statistics once per layer whatever the batch). Inference: weights "
        "plus the largest set of activations alive at once. Training: weights, their gradients, "
        "buffers and the activations kept for the backward pass; optimizer state (Adam: two "
        "more copies of the weights) and the allocator's rounding are not included."
    )


def _block_table(cost: BlockCost) -> pd.DataFrame:
    rows = [
        {
            "layer": layer.layer,
            "shape": layer.shape,
            "parameters": f"{layer.params_formula} = {layer.params:,}",
            "mult-adds": f"{layer.mult_adds_formula} = {layer.mult_adds:,}",
        }
        for layer in cost.layers
    ]
    rows.append(
        {
            "layer": "total",
            "shape": "",
            "parameters": f"{cost.params:,}",
            "mult-adds": f"{cost.mult_adds:,}",
        }
    )
    return pd.DataFrame(rows)


def blocks_ui() -> None:
    cols = st.columns(2)
    channels = cols[0].selectbox("Channels in and out", CHANNELS, index=2, key="compute_channels")
    size = cols[1].selectbox("Map size", MAP_SIZES, index=1, key="compute_size")
    basic, bottleneck = load_block_costs(channels, size)
    st.markdown(
        f"A block that takes and gives **{channels} channels at {size}x{size}**. The basic "
        f"block runs two 3x3 convolutions at {channels} channels; the bottleneck squeezes to "
        f"{channels // 4} channels with a 1x1, runs its 3x3 there and expands back with a 1x1. "
        "A convolution k x k from C_in to C_out has k·k·C_in·C_out weights and does that many "
        f"mult-adds at every output position ({size}x{size} = {size * size:,} of them)."
    )
    for cost in (basic, bottleneck):
        st.markdown(
            f"**{cost.name}**: {human(cost.params)} parameters, {human(cost.mult_adds)} mult-adds"
        )
        st.dataframe(_block_table(cost), hide_index=True, width="stretch")
    st.markdown(
        f"The bottleneck needs **{basic.params / bottleneck.params:.1f}x fewer parameters** and "
        f"**{basic.mult_adds / bottleneck.mult_adds:.1f}x fewer mult-adds** for the same "
        "channels: that is how ResNet-50 and deeper afford four times wider outputs than "
        "ResNet-34 at about the same cost (the paper's Fig. 5 sets a 64-channel basic block "
        "beside a 256-channel bottleneck for this reason)."
    )
    st.caption(
        "Every number is worked out from the formulas and checked against a real BasicBlock and "
        "Bottleneck of this project, built and analysed; BatchNorm adds 2·C parameters and "
        "counts them once per image, as torchinfo does."
    )


def flops_note() -> None:
    st.markdown(
        "**Mult-adds, MACs and FLOPs.** One mult-add (a multiply-accumulate, MAC) is a multiply "
        "and an add, so it is two floating-point operations: FLOPs = 2 x mult-adds. The ResNet "
        'paper\'s "FLOPs" row (3.6 x 10^9 for ResNet-34) counts mult-adds, as do torchinfo and '
        "most papers' tables; counters such as `torch.utils.flop_counter` and fvcore report twice "
        "the number. This app shows mult-adds, and FLOPs where it says so."
    )


config = current_config()
st.subheader(describe(config))
analysis = current_analysis()
for message in analysis.warnings:
    st.warning(message)
token = current_token()
where_tab, stages_tab, memory_tab, blocks_tab = st.tabs(
    ["Where it goes", "Per stage", "Memory", "Basic block vs bottleneck"]
)
with where_tab:
    where_ui(analysis)
    flops_note()
with stages_tab:
    per_stage_ui(analysis)
with memory_tab:
    memory_ui(token, analysis)
with blocks_tab:
    blocks_ui()
