"""What every page of the app shares: the current model and input settings, read from the link
and the sidebar, and the cached analysis of them.

The configuration lives in the link (`?model=resnet50~se-1`), so that a bookmark reopens the same
network; the sidebar's picker and the Build page change it. The input settings (`size`, `batch`,
`dtype`, `device`) sit in the link beside it when they differ from the defaults, and the page is
the link's path (st.navigation's url_path: `/architecture`). Everything derived from them is
cached as data, keyed by the link token and the settings, and bounded, so that a stream of
distinct links cannot grow the server's memory without end.

The session, not the link, is the source of truth once a session has started: Streamlit clears
the query string when st.navigation switches pages, so every run writes the session's state back
into the link. A link value is taken over only when it differs from what the app wrote last (a
new link, or code that set it on purpose, such as `switch_model`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import streamlit as st

from resnet_viz import PRESETS, ResNetConfig, build_model
from resnet_viz.analysis import DTYPES, Analysis, analyze, natural_input_size, parse_input_size
from resnet_viz.devices import available_devices
from resnet_viz.presets import preset_name

DEFAULT_PRESET = "resnet50"
CUSTOM = "custom"
TOKEN_KEY = "model_token"
INPUTS_KEY = "input_settings"
# What the app last wrote into each query parameter; see the module docstring.
WRITTEN_KEY = "link_written"
# The link as the session opened it, for pages that read their own parameters once.
OPENED_KEY = "link_opened"


@dataclass(frozen=True)
class InputSettings:
    """The input the analysis is made for. `size` None: the size the network was made for."""

    size: tuple[int, int] | None = None
    batch: int = 1
    dtype: str = "float32"
    device: str = "cpu"

    def input_size(self, config: ResNetConfig) -> tuple[int, int]:
        return self.size if self.size is not None else natural_input_size(config)


@st.cache_data(show_spinner=False, max_entries=64)
def _cached_analysis(token: str, input_size: tuple[int, int], batch: int, dtype: str) -> Analysis:
    config = ResNetConfig.from_url_token(token)
    with warnings.catch_warnings():
        # Kept in analysis.warnings and shown on the page instead.
        warnings.simplefilter("ignore")
        return analyze(config, input_size=input_size, batch=batch, dtype=dtype)


def load_analysis(
    token: str,
    *,
    input_size: tuple[int, int] | None = None,
    batch: int | None = None,
    dtype: str | None = None,
) -> Analysis:
    """Every layer's numbers, traced on `meta` (no memory), at the current input settings.

    Each of `input_size`, `batch` and `dtype` left out takes the current setting; the size
    setting "natural" is 224x224, or 32x32 for CIFAR nets.
    """
    settings = current_inputs()
    if input_size is None:
        input_size = settings.input_size(ResNetConfig.from_url_token(token))
    return _cached_analysis(
        token,
        tuple(input_size),  # type: ignore[arg-type]
        settings.batch if batch is None else batch,
        settings.dtype if dtype is None else dtype,
    )


@st.cache_data(show_spinner=False, max_entries=64)
def load_tree(token: str) -> str:
    """PyTorch's own printout of the module."""
    return str(build_model(ResNetConfig.from_url_token(token), device="meta"))


# -- the link ------------------------------------------------------------------------------


def link_value(param: str) -> str | None:
    """The link's `param` when it is news: present, and not what the app wrote there last."""
    value = st.query_params.get(param)
    if value is None or value == st.session_state.get(WRITTEN_KEY, {}).get(param):
        return None
    return value


def write_link(param: str, value: str | None) -> None:
    """Put `value` in the link (None: take `param` out) and remember it as the app's own."""
    if value is None:
        if param in st.query_params:
            del st.query_params[param]
    elif st.query_params.get(param) != value:
        st.query_params[param] = value
    st.session_state.setdefault(WRITTEN_KEY, {})[param] = value


def opened_link() -> dict[str, str]:
    """The query parameters the session was opened with (read on its first run)."""
    if OPENED_KEY not in st.session_state:
        st.session_state[OPENED_KEY] = dict(st.query_params.to_dict())
    return dict(st.session_state[OPENED_KEY])


def config_from_url() -> ResNetConfig:
    """The link's model if it is new, else the session's, else the default preset."""
    kept = st.session_state.get(TOKEN_KEY)
    token = link_value("model")
    if token is not None:
        try:
            return ResNetConfig.from_url_token(token)
        except ValueError as err:
            fallback = kept or DEFAULT_PRESET
            st.warning(f"The link's model could not be read ({err}); showing {fallback}.")
            return ResNetConfig.from_url_token(fallback)
    return ResNetConfig.from_url_token(kept) if kept else PRESETS[DEFAULT_PRESET]


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
        format_func=lambda name: "custom (Build page or link)" if name == CUSTOM else name,
    )
    return current if choice == CUSTOM else PRESETS[choice]


def choose_model() -> ResNetConfig:
    """The sidebar's model and the input settings, written into the link; called by app.py
    before any page runs."""
    opened_link()
    config = preset_picker_ui(config_from_url())
    token = config.to_url_token()
    write_link("model", token)
    st.session_state[TOKEN_KEY] = token
    settings = inputs_from_link()
    st.session_state[INPUTS_KEY] = settings
    write_inputs(settings)
    return config


def switch_model(token: str) -> None:
    """Make `token` the sidebar's model; as a widget callback, so it runs before the sidebar.

    The picker's own state must change with the model: `choose_model` prefers the picker's
    preset to the link, so setting the link alone would be undone on the next run.
    """
    config = ResNetConfig.from_url_token(token)
    st.query_params["model"] = token
    st.session_state[TOKEN_KEY] = token
    st.session_state.preset = preset_name(config) or CUSTOM


def current_token() -> str:
    return str(st.session_state.get(TOKEN_KEY, DEFAULT_PRESET))


def current_config() -> ResNetConfig:
    return ResNetConfig.from_url_token(current_token())


def current_analysis(
    *,
    input_size: tuple[int, int] | None = None,
    batch: int | None = None,
    dtype: str | None = None,
) -> Analysis:
    """The analysis of the sidebar's model at the current input settings (each can be given),
    or a message in the page and a stop."""
    try:
        with st.spinner("Tracing the network..."):
            return load_analysis(current_token(), input_size=input_size, batch=batch, dtype=dtype)
    except ValueError as err:
        st.error(str(err))
        st.stop()
        raise  # st.stop() does not return; this keeps type checkers informed


# -- input settings ----------------------------------------------------------------------


def parse_batch(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 4096:
        raise ValueError(f"batch {text[:40]!r} is not a whole number from 1 to 4096")
    return int(text)


def parse_dtype_name(text: str) -> str:
    if text not in DTYPES:
        raise ValueError(f"dtype {text[:40]!r} is not one of {', '.join(DTYPES)}")
    return text


def inputs_from_link() -> InputSettings:
    """The session's input settings, with any new value from the link taken over; a value that
    cannot be read is left out with a message."""
    settings = st.session_state.get(INPUTS_KEY, InputSettings())
    readers = {
        "size": lambda text: parse_input_size(text),
        "batch": parse_batch,
        "dtype": parse_dtype_name,
        "device": str,
    }
    for param, read in readers.items():
        text = link_value(param)
        if text is None:
            continue
        try:
            settings = replace(settings, **{param: read(text)})
        except ValueError as err:
            st.warning(f"The link's {param} could not be read ({err}); it is left as it was.")
    return settings


def usable_device(settings: InputSettings) -> tuple[str, str | None]:
    """The device to use, and a notice when the one asked for is not on this machine."""
    present = [d for d in available_devices() if d != "meta"]
    wanted = settings.device
    if wanted in present or (wanted == "cuda" and any(d.startswith("cuda") for d in present)):
        return wanted, None
    return "cpu", f"Device {wanted!r} is not available on this machine; using the CPU."


def write_inputs(settings: InputSettings) -> None:
    """Each setting into the link, or out of it when it has its default value."""
    default = InputSettings()
    size = None if settings.size is None else f"{settings.size[0]}x{settings.size[1]}"
    write_link("size", size)
    write_link("batch", None if settings.batch == default.batch else str(settings.batch))
    write_link("dtype", None if settings.dtype == default.dtype else settings.dtype)
    write_link("device", None if settings.device == default.device else settings.device)


def current_inputs() -> InputSettings:
    return st.session_state.get(INPUTS_KEY, InputSettings())  # type: ignore[no-any-return]


def set_inputs(settings: InputSettings) -> None:
    """New input settings, from a widget callback (so the sidebar and pages see them at once)."""
    st.session_state[INPUTS_KEY] = settings
    write_inputs(settings)
