"""resnet-viz in the browser: `streamlit run app.py`.

For now one page: pick a preset and see its headline figures and structure. The pages for
diagrams, compute, activations, comparison and the lecture mode build on this.
"""

from __future__ import annotations

import logging

import streamlit as st

from resnet_viz import PRESETS, ResNetConfig, build_model, count_parameters
from resnet_viz.presets import FAMILIES, describe, preset_name

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

DEFAULT_PRESET = "resnet50"
CUSTOM = "custom"


@st.cache_resource(show_spinner=False)
def load_structure(token: str) -> tuple[int, str]:
    """Parameter count and module tree of a config; built on `meta`, so it costs no memory."""
    model = build_model(ResNetConfig.from_url_token(token), device="meta")
    return count_parameters(model), str(model)


def config_from_url() -> ResNetConfig:
    token = st.query_params.get("model", DEFAULT_PRESET)
    try:
        return ResNetConfig.from_url_token(token)
    except ValueError as err:
        st.warning(f"The link's model could not be read ({err}); showing {DEFAULT_PRESET}.")
        return PRESETS[DEFAULT_PRESET]


def preset_picker_ui(current: ResNetConfig) -> ResNetConfig:
    current_name = preset_name(current)
    # A configuration from a link that is no preset keeps its own entry, so that opening the
    # link does not silently swap it for a preset.
    names = ([] if current_name else [CUSTOM]) + list(PRESETS)
    label = {name: f"{name}  ·  {family}" for family, group in FAMILIES.items() for name in group}
    label[CUSTOM] = "custom (from the link)"
    choice = st.sidebar.selectbox(
        "Preset", names, index=names.index(current_name or CUSTOM), format_func=label.get
    )
    return current if choice in (CUSTOM, current_name) else PRESETS[choice]


def headline_ui(config: ResNetConfig, params: int) -> None:
    cols = st.columns(4)
    cols[0].metric("Parameters", f"{params / 1e6:.2f} M", help=f"{params:,} learnable")
    cols[1].metric("Depth", config.depth, help="weighted layers on the main path")
    cols[2].metric("Blocks per stage", "-".join(map(str, config.blocks_per_stage)))
    cols[3].metric("Output stride", config.output_stride)
    st.caption(
        "Parameters are learnable weights only; BatchNorm running statistics are buffers "
        "and are not counted."
    )


def main() -> None:
    st.set_page_config(page_title="resnet-viz", layout="wide")
    st.title("resnet-viz")

    config = preset_picker_ui(config_from_url())
    token = config.to_url_token()
    st.query_params["model"] = token

    st.subheader(describe(config))
    try:
        params, tree = load_structure(token)
    except ValueError as err:
        st.error(str(err))
        st.stop()
    headline_ui(config, params)

    left, right = st.columns([2, 3])
    with left:
        st.markdown("**Configuration** (JSON, as the command line accepts it)")
        st.code(config.to_json(), language="json")
    with right:
        st.markdown("**Stages**")
        st.dataframe(stage_rows(config), hide_index=True)
        with st.expander("Module tree (PyTorch's own printout)"):
            st.code(tree, language="text", height=500)


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
        }
        for index, blocks in enumerate(config.blocks_per_stage)
    ]


main()
