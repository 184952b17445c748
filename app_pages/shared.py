"""What every page of the app shares: the current model, read from the link and the sidebar,
and the cached analysis of it.

The configuration lives in the link (`?model=resnet50~se-1`), so that a bookmark reopens the same
network; the sidebar's picker changes it. Everything derived from it is cached as data, keyed
by the link token, and bounded, so that a stream of distinct links cannot grow the server's
memory without end.
"""

from __future__ import annotations

import warnings

import streamlit as st

from resnet_viz import PRESETS, ResNetConfig, build_model
from resnet_viz.analysis import Analysis, analyze
from resnet_viz.presets import preset_name

DEFAULT_PRESET = "resnet50"
CUSTOM = "custom"
TOKEN_KEY = "model_token"


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


def choose_model() -> ResNetConfig:
    """The sidebar's model, written into the link; called by app.py before any page runs."""
    config = preset_picker_ui(config_from_url())
    token = config.to_url_token()
    st.query_params["model"] = token
    st.session_state[TOKEN_KEY] = token
    return config


def switch_model(token: str) -> None:
    """Make `token` the sidebar's model; as a widget callback, so it runs before the sidebar.

    The picker's own state must change with the link: `choose_model` prefers the picker's
    preset to the link, so setting the link alone would be undone on the next run.
    """
    config = ResNetConfig.from_url_token(token)
    st.query_params["model"] = token
    st.session_state.preset = preset_name(config) or CUSTOM


def current_token() -> str:
    return str(st.session_state.get(TOKEN_KEY, DEFAULT_PRESET))


def current_config() -> ResNetConfig:
    return ResNetConfig.from_url_token(current_token())


def current_analysis() -> Analysis:
    """The analysis of the sidebar's model, or a message in the page and a stop."""
    try:
        with st.spinner("Tracing the network..."):
            return load_analysis(current_token())
    except ValueError as err:
        st.error(str(err))
        st.stop()
        raise  # st.stop() does not return; this keeps type checkers informed
