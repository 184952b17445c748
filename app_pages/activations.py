"""Activations: what each stage of the network does to a real photo.

A photo (a sample, an upload or the webcam) goes through the sidebar's network with its random
initialisation, and beside it through real weights when a checkpoint or torchvision's weights
are loaded. Tabs show the feature maps of any layer, the anatomy of a residual block, the
predictions with Grad-CAM, and the receptive fields on the photo. The computing and its caches
live in app_pages/activation_data.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image
from streamlit.delta_generator import DeltaGenerator

from app_pages.activation_data import (
    FIELD_QUANTILE,
    STEM,
    Network,
    Preprocessing,
    analysis_at,
    anatomy_of,
    block_names,
    cam_for,
    cam_layers,
    capture_layer,
    checkpoint_network,
    decode_photo,
    default_layer,
    default_stage,
    digest,
    display_photo,
    enlarged,
    field_of,
    field_picture,
    layer_choices,
    plan_checkpoint,
    prepare_input,
    published_network,
    random_network,
    response_spread,
    share_of_field,
    stage_names,
    with_crop_box,
)
from app_pages.shared import (
    current_config,
    current_token,
    load_analysis,
    opened_link,
    switch_model,
    write_link,
)
from resnet_viz import ResNetConfig
from resnet_viz.activations import (
    ChannelStats,
    ResidualAnatomy,
    feature_grid,
    normalise_maps,
    tensor_stats,
    top_channels,
    top_predictions,
)
from resnet_viz.analysis import Analysis
from resnet_viz.images import CROP_SIZE, Prepared, imagenet_labels, sample_images
from resnet_viz.images import network_view as to_picture
from resnet_viz.presets import describe, preset_name
from resnet_viz.rendering import (
    feature_grid_image,
    heat_overlay,
    map_image,
    png_bytes,
)
from resnet_viz.weights import (
    PublishedWeights,
    cached_weights_path,
    fetch_published_weights,
    published_weights,
)

logger = logging.getLogger(__name__)

SAMPLE_TITLES = {
    "chelsea": "Chelsea the cat",
    "coffee": "a cup of coffee",
    "astronaut": "an astronaut",
    "rocket": "a rocket",
}
DEFAULT_SAMPLE = "chelsea"
# What the upload offers; the type is then read from the content, whatever the name says.
IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif", "mpo"]
CHECKPOINT_TYPES = ["pth", "pt", "bin", "safetensors"]
CIFAR_SIZE = 32
RANDOM_WARNING = (
    "Random weights: the network has not been trained, so what it shows here is the photo "
    "passed through random filters, and its predictions mean nothing."
)


@contextmanager
def shown_as_error(what: str) -> Iterator[None]:
    """Ends a section with a message in the page, never a traceback, when it fails."""
    try:
        yield
    except (ValueError, RuntimeError) as err:
        logger.warning("%s failed", what, exc_info=True)
        st.error(f"{what}: {err}")


def weights_caption(net: Network) -> str:
    return f"**{net.label}**" + (" (not trained)" if net.random else "")


# -- the photo ---------------------------------------------------------------------------


def photo_source_ui() -> tuple[str, bytes]:
    """(name, bytes) of the photo chosen; the default sample when nothing else is given."""
    samples = sample_images()
    source = st.segmented_control(
        "Photo",
        ["sample", "upload", "webcam"],
        default="sample",
        required=True,
        key="act_source",
        format_func=str.capitalize,
    )
    if source == "upload":
        upload = st.file_uploader(
            "Your photo",
            type=IMAGE_TYPES,
            key="act_upload",
            help="JPEG, PNG, WebP, BMP, TIFF or GIF; the format is read from the content",
        )
        if upload is not None:
            return upload.name, upload.getvalue()
        st.caption(f"Until a photo is chosen, the page shows {SAMPLE_TITLES[DEFAULT_SAMPLE]}.")
    elif source == "webcam":
        # Behind a toggle, so that the browser asks for the camera only when it is wanted.
        if st.toggle("Turn the camera on", key="act_camera_on"):
            shot = st.camera_input("Take a photo", key="act_camera")
            if shot is not None:
                return "webcam photo", shot.getvalue()
        st.caption(f"Until a photo is taken, the page shows {SAMPLE_TITLES[DEFAULT_SAMPLE]}.")
    else:
        names = list(samples)
        # In the link as `sample`; seeded once, like the sidebar's preset (see shared.py).
        if "act_sample" not in st.session_state:
            wanted = remembered("sample")
            st.session_state.act_sample = wanted if wanted in names else DEFAULT_SAMPLE
        name = st.selectbox(
            "Sample",
            names,
            key="act_sample",
            format_func=lambda n: SAMPLE_TITLES.get(n, n),
        )
        remember("sample", name)
        return SAMPLE_TITLES.get(name, name), samples[name].read_bytes()
    return SAMPLE_TITLES[DEFAULT_SAMPLE], samples[DEFAULT_SAMPLE].read_bytes()


def preprocessing_ui(config: ResNetConfig, published: PublishedWeights | None) -> Preprocessing:
    cifar = config.stem == "cifar"
    recipe = st.radio(
        "Preprocessing",
        ["torchvision", "whole"],
        key="act_recipe",
        horizontal=True,
        format_func=lambda r: "resize + centre crop" if r == "torchvision" else "whole photo",
        help="**resize + centre crop**: torchvision's ImageNet recipe, the short side resized "
        "to 256 and the centre 224x224 kept (at other sizes, the same ratio). **whole photo**: "
        "the whole photo, its short side resized to the size chosen.",
    )
    size = st.slider(
        "Input size (px)",
        CIFAR_SIZE,
        512,
        CIFAR_SIZE if cifar else (published.crop_size if published else CROP_SIZE),
        step=8,
        # One slider per kind of stem, so that switching to a CIFAR net starts it at 32.
        key=f"act_size_{config.stem}",
    )
    resize = None
    if recipe == "torchvision" and published is not None:
        # torchvision's V2 weights expect a resize to 232 before the 224 crop.
        resize = round(size * published.resize_size / published.crop_size)
    if cifar:
        st.caption("CIFAR networks were made for 32x32 pictures, so the input starts at 32 px.")
    return Preprocessing(recipe, size, resize, config.in_channels)


# -- weights -----------------------------------------------------------------------------


def weights_ui(config: ResNetConfig, token: str) -> tuple[list[Network], str]:
    """The networks to show, random first, and the configuration token they share."""
    entries = published_weights(preset_name(config) or "")
    options = ["random", "checkpoint"] + (["torchvision"] if entries else [])
    labels = {
        "random": "random initialisation",
        "checkpoint": "checkpoint file",
        "torchvision": "torchvision's ImageNet weights",
    }
    # A radio, not a segmented control: the labels must be read in full on a narrow column.
    choice = st.radio(
        "Weights",
        options,
        key="act_weights",
        format_func=labels.__getitem__,
        help="**random initialisation**: untrained. **checkpoint file**: a state dict. "
        "**torchvision's ImageNet weights**: published for this preset; read from the torch "
        "hub cache, downloaded only when asked.",
    )
    if choice == "checkpoint":
        real = checkpoint_ui(config, token)
    elif choice == "torchvision":
        real = published_ui(token, entries)
    else:
        st.caption("The network's random initialisation (seed 0): nothing has been learned.")
        real = None
    if real is None:
        return [random_network(token)], token
    return [random_network(real.token), real], real.token


def checkpoint_ui(config: ResNetConfig, token: str) -> Network | None:
    upload = st.file_uploader(
        "Checkpoint",
        type=CHECKPOINT_TYPES,
        key="act_checkpoint",
        help="A state dict saved with torch.save (.pth, .pt, .bin) or safetensors; read "
        "without running any code stored in it",
    )
    if upload is None:
        st.caption("Random weights until a checkpoint is loaded.")
        return None
    data = upload.getvalue()
    sha = digest(data)
    with st.spinner("Reading the checkpoint..."):
        plan = plan_checkpoint(sha, token, data)
    if plan.error or plan.token is None:
        st.error(f"{upload.name}: {plan.error}")
        return None
    for notice in plan.notices:
        st.info(notice)
    if plan.mismatch:
        held = ResNetConfig.from_url_token(plan.token)
        st.warning(
            f"{upload.name} does not fit the sidebar's {describe(config)}: it holds "
            f"{describe(held)} (`{plan.token}`), shown here instead."
        )
        with st.expander("How it differs, key by key"):
            st.caption(plan.mismatch)
        st.button(
            f"Use {describe(held)} in the sidebar",
            key="act_switch",
            on_click=switch_model,
            args=(plan.token,),
        )
    try:
        with st.spinner(f"Loading {upload.name}..."):
            net = checkpoint_network(sha, plan.token, upload.name, data)
    except Exception as err:  # an upload can hold anything: PyTorch's own errors included
        # A strict load: nothing is loaded, and nothing is shown as loaded.
        logger.warning("loading %s failed", upload.name, exc_info=True)
        reason = (str(err) or type(err).__name__).splitlines()[0]
        st.error(f"{upload.name} was not loaded: {reason}")
        return None
    tensors = len(net.model.state_dict())
    st.success(f"Loaded all {tensors} tensors of {upload.name}.")
    return net


def published_ui(token: str, entries: list[PublishedWeights]) -> Network | None:
    entry = st.selectbox(
        "torchvision weights",
        entries,
        index=len(entries) - 1,
        key="act_published",
        format_func=lambda e: f"{e.name} (ImageNet top-1 {e.acc1:.1f}%)",
    )
    path = cached_weights_path(entry)
    if not path.is_file():
        st.info(f"Not in the torch hub cache: {path}.")
        if st.button(f"Download {entry.file_name}", key="act_download_weights"):
            try:
                with st.spinner(f"Downloading {entry.url}..."):
                    fetch_published_weights(entry, progress=False)
            except ValueError as err:
                st.error(str(err))
                return None
            st.rerun()
        return None
    try:
        with st.spinner(f"Loading {entry.name}..."):
            net = published_network(token, entry.preset, entry.name)
    except ValueError as err:
        st.error(str(err))
        return None
    st.success(f"torchvision's {entry.preset} {entry.name}, from {path.parent}.")
    return net


def chosen_published(config: ResNetConfig) -> PublishedWeights | None:
    """The published weights the user has picked, for their preprocessing; None otherwise."""
    if st.session_state.get("act_weights") != "torchvision":
        return None
    picked = st.session_state.get("act_published")
    entries = published_weights(preset_name(config) or "")
    return picked if picked in entries else (entries[-1] if entries else None)


# -- feature maps ------------------------------------------------------------------------


def layer_picker_ui(analysis: Analysis, token: str) -> tuple[str, str]:
    """(block, layer): the stage, then the block, then one of its layers; in the link as `layer`.

    Each picker's state is seeded before it exists (from the link or the last pick, else the
    default) and never given an `index`, for the reason in shared.preset_picker_ui.
    """
    stages = stage_names(analysis)
    wanted = placement(analysis, remembered("layer"))
    stage_key = f"act_stage_{token}"
    if stage_key not in st.session_state:
        st.session_state[stage_key] = wanted[0] if wanted else default_stage(stages)
    cols = st.columns([2, 2, 3])
    stage = cols[0].selectbox(
        "Stage",
        stages,
        key=stage_key,
        format_func=lambda s: "Stem" if s == STEM else f"Stage {s[5:]} ({s})",
    )
    blocks = block_names(analysis, stage)
    block_key = f"act_block_{token}_{stage}"
    if block_key not in st.session_state:
        st.session_state[block_key] = wanted[1] if wanted and wanted[0] == stage else blocks[-1]
    block = cols[1].selectbox("Block", blocks, key=block_key)
    layers = layer_choices(analysis, block)
    layer_key = f"act_layer_{token}_{block}"
    if layer_key not in st.session_state:
        on_block = wanted and wanted[1] == block
        st.session_state[layer_key] = wanted[2] if on_block else default_layer(analysis, block)
    layer = cols[2].selectbox(
        "Layer",
        layers,
        key=layer_key,
        format_func=lambda name: f"{name} (block output)" if name == block != STEM else name,
        help="A module that runs twice (a block's ReLU) appears once per call: "
        "'layer1.0.relu (2)' is its second call.",
    )
    remember("layer", layer)
    return block, layer


def placement(analysis: Analysis, layer: str | None) -> tuple[str, str, str] | None:
    """(stage, block, layer) of a layer label such as "layer3.5.relu (2)", if it is in there."""
    if not layer:
        return None
    for stage in stage_names(analysis):
        if stage != STEM and not layer.startswith(stage):
            continue
        for block in block_names(analysis, stage):
            if layer in layer_choices(analysis, block):
                return stage, block, layer
    return None


def remembered(param: str) -> str | None:
    """The page's last pick of `param` in this session, else the link's when it opened."""
    picks = st.session_state.get("act_picks", {})
    return picks.get(param, opened_link().get(param))  # type: ignore[no-any-return]


def remember(param: str, value: str) -> None:
    """Keep a pick for the session (widget state goes when another page shows) and the link."""
    st.session_state.setdefault("act_picks", {})[param] = value
    write_link(param, value)


def grid_controls_ui(
    channels: int, primary_top: list[int], key: str
) -> tuple[list[int] | None, int, str, int]:
    """(chosen channels or None for top-k, k, normalisation, enlarged channel)."""
    cols = st.columns([2, 3, 2, 2])
    mode = cols[0].segmented_control(
        "Channels",
        ["top", "chosen"],
        default="top",
        required=True,
        key="act_channel_mode",
        format_func=lambda m: "top-k by mean" if m == "top" else "chosen",
    )
    chosen: list[int] | None = None
    top_k = 16
    if mode == "top" and channels == 1:
        # A slider from 1 to 1 is refused by Streamlit; there is nothing to choose.
        top_k = 1
        cols[1].caption("1 channel")
    elif mode == "top":
        top_k = cols[1].slider("k", 1, min(64, channels), min(16, channels), key="act_top_k")
    else:
        chosen = (
            cols[1].multiselect(
                f"Channels (0 to {channels - 1})",
                list(range(channels)),
                default=primary_top[:8],
                key=f"act_channels_{key}",
                max_selections=64,
            )
            or primary_top[:1]
        )
    per = cols[2].segmented_control(
        "Colour scale",
        ["channel", "layer"],
        default="channel",
        required=True,
        key="act_norm",
        format_func=lambda p: f"per {p}",
        help="**per channel**: each map from its own minimum to maximum, to see its pattern. "
        "**per layer**: one scale for the layer, to compare strengths.",
    )
    big = cols[3].selectbox(
        "Enlarge channel",
        list(range(channels)),
        index=primary_top[0],
        # Keyed by the top channel too: a new photo or new weights bring a new default, where a
        # widget under a fixed key would keep the first network's pick.
        key=f"act_big_{key}_{primary_top[0]}",
    )
    return chosen, top_k, str(per), int(big)


def stat_row(first: str, value: object, stats: ChannelStats) -> dict[str, object]:
    return {
        first: value,
        "mean": stats.mean,
        "std": stats.std,
        "min": stats.min,
        "max": stats.max,
        "zeros": stats.zero_fraction,
    }


def stats_table(rows: list[dict[str, object]], first: str) -> None:
    number = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        height=min(36 * len(rows) + 38, 320),
        column_config={
            first: st.column_config.Column(first),
            **{name: number for name in ("mean", "std", "min", "max")},
            "zeros": st.column_config.NumberColumn(format="%.2f", help="fraction of exact zeros"),
        },
    )


def maps_panel_ui(
    net: Network,
    fmap: torch.Tensor,
    layer: str,
    choice: tuple[list[int] | None, int, str, int],
    photo: tuple[Image.Image, Prepared],
    wide: bool,
) -> None:
    """One network's grid, enlarged channel, overlay and statistics for one layer."""
    chosen, top_k, per, big = choice
    channels, height, width = fmap.shape
    flat_note = ""
    if height * width == 1 and per == "channel":
        # One value per channel: its own scale would paint every map the same flat colour.
        per = "layer"
        flat_note = " (1x1 maps: one scale for the layer, since per channel would be flat)"
    grid = feature_grid(fmap, top_k, chosen, per)
    # Bigger cells for a few maps, smaller for many: the grid stays about 500 px wide.
    cell = 120 if len(grid.channels) <= 16 else 80
    picture = feature_grid_image(grid, cell=cell)
    single = feature_grid(fmap, channels=[big], normalisation=per)
    scale = max(1, 240 // max(height, width))
    big_map = map_image(single.maps[0], (width * scale, height * scale))
    overlay = heat_overlay(photo[0], single.maps[0], photo[1])

    left, right = st.columns([3, 2]) if wide else (st.container(), st.container())
    what = f"top {len(grid.channels)} by mean" if chosen is None else "chosen channels"
    left.image(
        picture,
        caption=f"{layer}, {channels}x{height}x{width}: {what}, scaled per {per}{flat_note}. "
        f"Weights: {net.label}.",
    )
    left.download_button(
        "Download the grid (PNG)",
        png_bytes(picture),
        file_name=f"{layer.replace(' ', '')}_{net.key.split(':')[0]}.png",
        mime="image/png",
        key=f"act_grid_png_{net.key}",
        on_click="ignore",
    )
    pair = right.columns(2)
    pair[0].image(big_map, caption=f"channel {big} enlarged ({net.label})")
    pair[1].image(overlay, caption=f"channel {big} on the photo ({net.label})")
    whole = tensor_stats(fmap)
    with right:
        st.caption(
            f"The whole layer: mean {whole.mean:.3f}, std {whole.std:.3f}, range "
            f"{whole.min:.2f} to {whole.max:.2f}, {whole.zero_fraction:.0%} zeros."
        )
        stats_table([stat_row("channel", s.channel, s) for s in grid.stats], "channel")


def feature_maps_tab(
    nets: list[Network],
    analysis: Analysis,
    token: str,
    x: torch.Tensor,
    input_key: str,
    photo: tuple[Image.Image, Prepared],
) -> tuple[str, str]:
    """The feature maps of the layer picked; returns (block, layer), for the other tabs."""
    block, layer = layer_picker_ui(analysis, token)
    with shown_as_error(f"Capturing {layer}"):
        with st.spinner(f"Running the photo up to {layer}..."):
            maps = [capture_layer(net.key, input_key, layer, net, x)[0] for net in nets]
        if maps[-1].dim() != 3:
            st.warning(f"{layer} has no feature maps (its output is {tuple(maps[-1].shape)}).")
            return block, layer
        channels = maps[-1].shape[0]
        # The controls follow the trained network when there is one: its channels mean more.
        ranking = top_channels(maps[-1], min(64, channels))
        choice = grid_controls_ui(channels, ranking, f"{token}_{layer}")
        if len(nets) == 1:
            maps_panel_ui(nets[0], maps[0], layer, choice, photo, wide=True)
        else:
            for column, net, fmap in zip(
                st.columns(len(nets), gap="large"), nets, maps, strict=True
            ):
                with column:
                    st.markdown(weights_caption(net))
                    maps_panel_ui(net, fmap, layer, choice, photo, wide=False)
    return block, layer


# -- residual anatomy --------------------------------------------------------------------

ANATOMY_PARTS = [
    ("x", "x (the block's input)"),
    ("branch", "F(x), the residual branch"),
    ("shortcut", "shortcut(x)"),
    ("total", "F(x) + shortcut(x)"),
    ("output", "output"),
]


def anatomy_tab(
    nets: list[Network],
    analysis: Analysis,
    token: str,
    x: torch.Tensor,
    input_key: str,
    picked: str,
) -> None:
    blocks = [name for name in cam_layers(analysis) if "." in name]
    if not blocks:
        st.info("This network has no residual blocks.")
        return
    fallback = block_names(analysis, default_stage(stage_names(analysis)))[-1]
    cols = st.columns([2, 2, 2])
    block = cols[0].selectbox(
        "Block",
        blocks,
        index=blocks.index(picked if picked in blocks else fallback),
        key=f"act_anat_block_{token}",
    )
    mode = cols[1].segmented_control(
        "Show",
        ["mean", "channel"],
        default="mean",
        required=True,
        key="act_anat_mode",
        format_func=lambda m: "mean over channels" if m == "mean" else "one channel",
    )
    channel = None
    if mode == "channel":
        out_channels = analysis.find(block).output_shape[1]
        channel = int(
            cols[2].number_input("Channel", 0, out_channels - 1, 0, key=f"act_anat_ch_{block}")
        )
    with shown_as_error(f"The anatomy of {block}"):
        for net in nets:
            with st.spinner(f"Taking {block} apart..."):
                anatomy = anatomy_of(net.key, input_key, block, net, x)
            anatomy_row_ui(net, anatomy, channel)

    with shown_as_error("The residual responses"):
        with st.spinner("Measuring every block's F(x)..."):
            figure = go.Figure()
            for net in nets:
                spreads = response_spread(net.key, input_key, net, x)
                figure.add_trace(
                    go.Scatter(
                        x=[name for name, _ in spreads],
                        y=[value for _, value in spreads],
                        mode="lines+markers",
                        name=net.label,
                    )
                )
        figure.update_layout(
            height=330,
            margin={"l": 10, "r": 10, "t": 40, "b": 10},
            title="Spread of each block's residual response F(x), along the depth",
            xaxis_title="block",
            yaxis_title="std of F(x)",
            legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        )
        st.plotly_chart(figure, width="stretch")
        st.caption(
            "As in He et al. (2015), Fig. 7: the standard deviation of each block's residual "
            "branch F(x) for this photo, just before the addition. In trained ResNets it is "
            "small and shrinks with depth: each block changes the signal only a little, closer "
            "to the identity than a plain network's layers. With random weights the curve only "
            "shows how the initialisation scales the signal."
        )


def anatomy_row_ui(net: Network, anatomy: ResidualAnatomy, channel: int | None) -> None:
    """x, F(x), shortcut(x), the sum and the output on one colour scale, with statistics."""
    tensors = {
        "x": anatomy.x,
        "branch": anatomy.branch,
        "shortcut": anatomy.shortcut,
        "total": anatomy.total,
        "output": anatomy.output,
    }
    present = {name: t for name, t in tensors.items() if t is not None}

    def plane(name: str, t: torch.Tensor) -> torch.Tensor:
        # x has other channels than the rest when a projection shortcut changes the width.
        if channel is None or channel >= t.shape[0]:
            return t.float().mean(0)
        return t[channel].float()

    planes = {name: plane(name, t) for name, t in present.items()}
    low = min(p.min().item() for p in planes.values())
    high = max(p.max().item() for p in planes.values())
    st.markdown(
        weights_caption(net)
        + f": {anatomy.block}, "
        + ("mean over channels" if channel is None else f"channel {channel}")
        + f", one colour scale for all ({low:.2f} to {high:.2f})"
    )
    columns = st.columns(len(ANATOMY_PARTS))
    stats = anatomy.stats()
    titles = dict(ANATOMY_PARTS)
    if anatomy.relu_after_sum:
        titles["output"] = "output = ReLU(sum)"
    for column, (name, _) in zip(columns, ANATOMY_PARTS, strict=True):
        if name not in planes:
            column.caption(f"{titles[name]}: none (a plain block has no shortcut)")
            continue
        values = normalise_maps(planes[name][None], "layer", (low, high))[0]
        side = max(values.shape)
        scale = max(1, 200 // side)
        column.image(
            map_image(values, (values.shape[1] * scale, values.shape[0] * scale)),
            caption=f"{titles[name]}: mean {stats[name].mean:.2f}, std {stats[name].std:.2f}",
            width="stretch",
        )
    if channel is not None and anatomy.x.shape[0] != anatomy.output.shape[0]:
        st.caption(
            f"x has {anatomy.x.shape[0]} channels and the output {anatomy.output.shape[0]} (a "
            "projection shortcut), so x is shown as its mean over channels."
        )
    with st.expander(f"Statistics of each part ({net.label})"):
        stats_table([stat_row("part", titles[n], s) for n, s in stats.items()], "part")


# -- predictions and Grad-CAM ------------------------------------------------------------


def predictions_tab(
    nets: list[Network],
    analysis: Analysis,
    token: str,
    x: torch.Tensor,
    input_key: str,
    feature_layer: str,
    photo: tuple[Image.Image, Prepared],
) -> None:
    classes = int(analysis.records[-1].output_shape[-1])
    labels = imagenet_labels() if classes == 1000 else [f"class {i}" for i in range(classes)]
    layers = cam_layers(analysis)
    stages = [name for name in layers if "." not in name]
    cols = st.columns([2, 4])
    layer = cols[0].selectbox(
        "Grad-CAM at",
        layers,
        index=layers.index(stages[-1]),
        key=f"act_cam_layer_{token}",
        help="Any stage or block; the last stage is Grad-CAM's usual choice.",
    )
    picked = cols[1].selectbox(
        "Class to explain",
        [None, *range(classes)],
        key=f"act_cam_class_{classes}",
        format_func=lambda c: "each network's top prediction" if c is None else f"{c}: {labels[c]}",
    )
    for column, net in zip(st.columns(len(nets), gap="large"), nets, strict=True):
        with column, shown_as_error(f"Explaining with {net.label}"):
            if len(nets) > 1:
                st.markdown(weights_caption(net))
            # The logits come with any capture; this one is cached by the feature maps tab.
            logits = capture_layer(net.key, input_key, feature_layer, net, x)[1]
            # One network: the table beside the picture; two: each column stacks them.
            table, picture = (
                st.columns([2, 3], gap="large")
                if len(nets) == 1
                else (st.container(), st.container())
            )
            with table:
                predictions_ui(net, logits)
            with st.spinner(f"Grad-CAM at {layer}..."):
                cam = cam_for(net.key, input_key, layer, picked, net, x)
            overlay = heat_overlay(photo[0], cam.cam, photo[1])
            picture.image(
                overlay,
                caption=f"Grad-CAM of '{labels[cam.class_index]}' at {layer} "
                f"(score {cam.score:.2f}, probability {cam.probability:.1%}). "
                f"Weights: {net.label}"
                + (", untrained: the map explains noise." if net.random else "."),
            )
            if cam.peak == 0:
                picture.info("No positive evidence for this class at this layer: the map is flat.")
            picture.download_button(
                "Download the Grad-CAM (PNG)",
                png_bytes(overlay),
                file_name=f"gradcam_{layer}_{cam.class_index}_{net.key.split(':')[0]}.png",
                mime="image/png",
                key=f"act_cam_png_{net.key}",
                on_click="ignore",
            )


def predictions_ui(net: Network, logits: torch.Tensor) -> None:
    predictions = top_predictions(net.model, logits)
    st.dataframe(
        pd.DataFrame(
            [
                {"class": p.index, "label": p.label, "probability": p.probability}
                for p in predictions.top
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "probability": st.column_config.ProgressColumn(
                "probability", format="percent", min_value=0.0, max_value=1.0
            )
        },
    )
    if predictions.random_weights:
        st.warning(RANDOM_WARNING)
    elif predictions.note:
        st.caption(predictions.note[:1].upper() + predictions.note[1:] + ".")


# -- receptive fields --------------------------------------------------------------------


def receptive_field_tab(
    nets: list[Network],
    analysis: Analysis,
    token: str,
    x: torch.Tensor,
    input_key: str,
    view: Image.Image,
) -> None:
    stem_end = layer_choices(analysis, STEM)[-1]
    stages = stage_names(analysis)[1:]
    options = [stem_end, *stages]
    cols = st.columns([2, 2, 2])
    layer = cols[0].selectbox(
        "Output of",
        options,
        index=options.index(default_stage(stages)),
        key=f"act_rf_layer_{token}",
        format_func=lambda name: f"stem ({name})" if name == stem_end else name,
    )
    height, width = int(x.shape[-2]), int(x.shape[-1])
    with shown_as_error(f"The receptive field of {layer}"):
        rows, columns = analysis_at(token, height, width).find(layer).output_shape[2:]
        row = position_ui(cols[1], "Row", rows, f"act_rf_row_{layer}_{rows}")
        col = position_ui(cols[2], "Column", columns, f"act_rf_col_{layer}_{columns}")
        for column, net in zip(st.columns(2, gap="large"), nets, strict=False):
            with column:
                with st.spinner("Following the gradient back to the photo..."):
                    field = field_of(net.key, input_key, layer, (row, col), net, x)
                held = share_of_field(field.heat)
                st.image(
                    enlarged(field_picture(view, field), 448),
                    caption=f"{layer} at ({row}, {col}), weights: {net.label}. Box: the "
                    f"theoretical field, {field.size}x{field.size} px (past the photo's edge it "
                    f"covers padding). Heat: the effective field, saturating at its "
                    f"{FIELD_QUANTILE:.1%} quantile.",
                )
                st.metric(
                    "Effective field: pixels holding 90% of the gradient",
                    f"{held:,} px",
                    help=f"The theoretical field covers {field.size**2:,} px",
                )
                st.caption(f"{held / field.size**2:.0%} of the theoretical field's area.")
        st.caption(
            "The effective receptive field (Luo et al. 2016) is how strongly each input pixel "
            "moves this output: the gradient of the output position with respect to the input. "
            "It is much smaller than the theoretical field and roughly Gaussian, concentrated "
            "at the centre; training widens it somewhat. Shown for this one photo (the paper "
            "averages over many)."
        )


def position_ui(column: DeltaGenerator, label: str, count: int, key: str) -> int:
    """A row or column of a map, the middle one first; no slider when there is only one."""
    if count == 1:
        # Streamlit refuses a slider whose minimum and maximum are equal (a 1x1 map).
        column.caption(f"{label} 0: the map has only one")
        return 0
    return int(column.slider(label, 0, count - 1, count // 2, key=key))


# -- the page ----------------------------------------------------------------------------


def input_row_ui(
    config: ResNetConfig, token: str
) -> tuple[list[Network], str, Prepared, tuple[Image.Image, Prepared], Image.Image, str]:
    """The photo, its preprocessing, the network's view of it and the weights, in one row."""
    source_col, photo_col, view_col, weights_col = st.columns([5, 4, 4, 5], gap="medium")
    refused: ValueError | None = None
    with weights_col:
        try:
            nets, shown_token = weights_ui(config, token)
        except ValueError as err:
            refused = err
    if refused is not None:
        # A network too large for the server's memory: refused before it is built. Said
        # across the page, not in the narrow weights column.
        st.error(
            f"{describe(config)} is too large to run on this server: {refused}. The Build and "
            "Architecture pages show it all the same, from its shapes alone."
        )
        st.stop()
    shown_config = ResNetConfig.from_url_token(shown_token)
    with source_col:
        name, data = photo_source_ui()
        how = preprocessing_ui(shown_config, chosen_published(shown_config))
        sha = digest(data)
        try:
            photo = decode_photo(sha, data)
            prepared = prepare_input(sha, how, photo)
        except ValueError as err:
            st.error(f"{name}: {err}")
            st.stop()
        for notice in photo.notices:
            st.info(notice[:1].upper() + notice[1:] + ".")
    shown, placed = display_photo(sha, how, photo, prepared)
    view = to_picture(prepared)
    photo_col.image(
        with_crop_box(shown, placed),
        caption=f"{name}: {photo.size[0]}x{photo.size[1]} {photo.format}"
        + ("; the box is what the network sees" if how.recipe == "torchvision" else ""),
    )
    height, width = prepared.input_size
    view_col.image(
        enlarged(view, 224),
        caption=f"What the network sees: {height}x{width} (the input tensor, un-normalised)",
    )
    return nets, shown_token, prepared, (shown, placed), view, f"{sha}:{how.key()}"


config = current_config()
# The heading names the network shown, which a checkpoint may change; it is filled in below.
heading = st.empty()
nets, token, prepared, photo, view, input_key = input_row_ui(config, current_token())
heading.subheader(f"What {describe(ResNetConfig.from_url_token(token))} does to a photo")
for message in analysis_at(token, *prepared.input_size).warnings:
    st.warning(message[:1].upper() + message[1:] + ".")
try:
    analysis = load_analysis(token)
except ValueError as err:
    st.error(str(err))
    st.stop()
if nets[0].random and len(nets) == 1:
    st.caption(
        "Random weights: everything below comes from an untrained network. Load a checkpoint "
        "or ImageNet weights (above, right) to see what training changes, side by side."
    )
x = prepared.tensor
# The open tab is in the link (`view=Receptive field`), so that a reload keeps it.
maps_tab, anatomy_tab_, predictions_tab_, field_tab = st.tabs(
    ["Feature maps", "Residual anatomy", "Predictions and Grad-CAM", "Receptive field"],
    key="view",
    bind="query-params",
)
with maps_tab:
    block, layer = feature_maps_tab(nets, analysis, token, x, input_key, photo)
with anatomy_tab_:
    anatomy_tab(nets, analysis, token, x, input_key, block)
with predictions_tab_:
    predictions_tab(nets, analysis, token, x, input_key, layer, photo)
with field_tab:
    receptive_field_tab(nets, analysis, token, x, input_key, view)
