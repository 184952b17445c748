"""Lecture: the network one part at a time, in large type, for a projector.

Prev and Next (or the arrow keys) step through an overview, the stem, each stage and the head.
Each step shows the part's row of the paper's Table 1, the arithmetic of the shape change, the
diagram with the part highlighted, what the part makes of a photo, and a few sentences on what
it does. The step is kept in the link (`?step=3`).

The steps are a list of `Step`s: a page can append its own with a title and a function that
draws it (see `lecture_steps`).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
import torch
from PIL import Image

from app_pages.activation_data import (
    STEM,
    Network,
    Preprocessing,
    capture_layer,
    decode_photo,
    digest,
    display_photo,
    layer_choices,
    prepare_input,
    published_network,
    random_network,
    stage_names,
    with_crop_box,
)
from app_pages.diagram_view import draw_diagram
from app_pages.gradient_charts import gradient_norms_figure
from app_pages.gradient_data import load_flows
from app_pages.shared import current_analysis, current_config, current_token
from resnet_viz import ResNetConfig
from resnet_viz.activations import feature_grid, top_predictions
from resnet_viz.analysis import Analysis, LayerRecord, shape_arithmetic
from resnet_viz.config import short_repr
from resnet_viz.diagram import LEVELS, THEMES
from resnet_viz.images import CROP_SIZE, network_view, sample_images
from resnet_viz.paper_table import Bracket, TableRow, human, table_rows
from resnet_viz.presets import describe, preset_name
from resnet_viz.rendering import feature_grid_image
from resnet_viz.weights import PublishedWeights, cached_weights_path, published_weights

logger = logging.getLogger(__name__)

STEP_PARAM = "step"
STEP_KEY = "lecture_step"
THEME = "projector"
# Sizes for a 1280x720 projector. The overview fits the whole diagram beside the text; a part's
# step shows the diagram near its natural size (readable), scrolled to the part, above its maps.
OVERVIEW_DIAGRAM = (340, 560)
PART_DIAGRAM = (620, 330)
# Feature maps shown per step: the channels with the largest mean, in one row.
TOP_CHANNELS = 4
DEFAULT_PHOTO = "chelsea"
CIFAR_SIZE = 32


@dataclass(frozen=True)
class Lecture:
    """What every step draws from: the sidebar's network and the lecture's settings."""

    config: ResNetConfig
    token: str
    analysis: Analysis
    photo: str  # a sample photo's name
    level: str  # the diagram's level
    maps: bool  # show activation maps


@dataclass(frozen=True)
class Step:
    """One screen of the lecture.

    Attributes:
        key: A stable name ("overview", "stem", "layer2", "head", or a page's own).
        title: The heading.
        part: What the diagram highlights ("stem", "layer2", "head"); None for none.
        show: Draws the step below the heading.
    """

    key: str
    title: str
    part: str | None
    show: Callable[[Lecture, Step], None]


# -- the network's parts ---------------------------------------------------------------


def _ordered(analysis: Analysis) -> list[LayerRecord]:
    return sorted(analysis.records, key=lambda record: record.start_order)


def part_records(analysis: Analysis, part: str) -> list[LayerRecord]:
    """Every record of a part: "stem", "head" or a stage ("layer2"), in the order they run."""
    if part in ("stem", "head"):
        return [r for r in _ordered(analysis) if r.part == part]
    return [r for r in _ordered(analysis) if r.name == part or r.name.startswith(part + ".")]


def part_shapes(analysis: Analysis, part: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(what enters the part, what leaves it), batch dimension dropped."""
    records = part_records(analysis, part)
    leaves = [r for r in records if r.is_leaf]
    return tuple(leaves[0].input_shapes[0][1:]), tuple(leaves[-1].output_shape[1:])


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def arithmetic_records(analysis: Analysis, part: str) -> list[LayerRecord]:
    """The convs and pools on a part's path that change the map's size; if none does, the
    first window wider than one pixel, to show why the size is kept."""
    # A squeeze-and-excitation gate's pooling is a side branch: the map itself keeps its size.
    windows = [
        r
        for r in part_records(analysis, part)
        if r.is_leaf and r.call_index == 0 and ".se." not in r.name and shape_arithmetic(r)
    ]
    changing = [r for r in windows if r.input_shapes[0][-2:] != r.output_shape[-2:]]
    if changing or not windows:
        return changing
    return [next((r for r in windows if (r.kernel_size or 1) > 1), windows[0])]


def arithmetic_text(analysis: Analysis, part: str) -> str:
    """Each record's name and shapes, then its formula; the fc's count for the head."""
    blocks = []
    for record in arithmetic_records(analysis, part):
        shapes = f"{shape_text(record.input_shapes[0][1:])} → {shape_text(record.output_shape[1:])}"
        blocks.append(f"{record.name}: {shapes}\n" + "\n".join(shape_arithmetic(record)))
    if part == "head":
        for fc in (r for r in part_records(analysis, part) if r.type == "Linear"):
            n_in, n_out = fc.input_shapes[0][-1], fc.output_shape[-1]
            count = (
                f"{n_in} × {n_out} weights + {n_out} biases = {fc.params:,} parameters"
                if n_in * n_out + n_out == fc.params
                else f"{fc.params:,} parameters"
            )
            blocks.append(f"{fc.name}: {n_in} → {n_out}\n{count}")
    return "\n\n".join(blocks)


def paper_row(analysis: Analysis, part: str) -> TableRow:
    """Table 1's row for a part: conv1 for the stem, conv(N+1)_x for layerN, the head."""
    name = {"stem": "conv1", "head": "head"}.get(part) or f"conv{int(part[5:]) + 1}_x"
    return next(row for row in table_rows(analysis) if row.name == name)


def row_html(row: TableRow) -> str:
    """The row as the paper prints it, a bracket of layers times the repeat count."""
    cells = []
    for item in row.layers:
        if isinstance(item, Bracket):
            lines = "".join(f"<div>{html.escape(line)}</div>" for line in item.lines)
            cells.append(
                f"<div class='lec-bracket-row'><div class='lec-bracket'>{lines}</div>"
                f"<div class='lec-repeat'>× {item.repeat}</div></div>"
            )
        else:
            cells.append(f"<div>{html.escape(item)}</div>")
    return (
        "<div class='lec-row'>"
        f"<div class='lec-row-name'>{html.escape(row.name)}<span>{html.escape(row.output_size)}"
        f"</span></div><div class='lec-row-layers'>{''.join(cells)}</div></div>"
    )


# -- teaching text -----------------------------------------------------------------------


def _kind(config: ResNetConfig) -> str:
    return "bottleneck" if config.block == "bottleneck" else "basic"


# Each step says one or two things, in a sentence or two: the lecturer says the rest.


def overview_text(config: ResNetConfig, analysis: Analysis) -> str:
    blocks = "-".join(map(str, config.blocks_per_stage))
    start = (
        f"**{describe(config)}**: a stem, {config.num_stages} stages of {_kind(config)} "
        f"blocks ({blocks}) and a classifier head, {config.depth} weighted layers in all."
    )
    if not config.residual:
        return (
            f"{start} It is a *plain* net, the paper's baseline without shortcuts: He et al. "
            "(2015) found their 34-layer plain net trained to a higher error than the 18-layer "
            "one, a degradation that shortcuts cure."
        )
    return (
        f"{start} Each block adds its input back to what its layers compute, y = F(x) + x, so "
        "the layers learn only a residual; this let He et al. (2015) train 152 layers to a "
        "lower error than shallower nets."
    )


def stem_text(config: ResNetConfig, analysis: Analysis) -> str:
    (c_in, h_in, w_in), (c_out, h_out, w_out) = part_shapes(analysis, "stem")
    if config.stem == "cifar":
        return (
            f"For {h_in}×{w_in} CIFAR pictures the stem is one 3×3 convolution with {c_out} "
            "filters and no pooling (the paper's Section 4.2): the map keeps its size, only the "
            f"channels change, {c_in} → {c_out}."
        )
    first = (
        "Three 3×3 convolutions, the first with stride 2 ('ResNet-C', He et al. 2019),"
        if config.stem in ("deep", "deep_tiered")
        else "A 7×7 convolution with stride 2"
    )
    return (
        f"{first} and a 3×3 max pool with stride 2 shrink {h_in}×{w_in} to {h_out}×{w_out}, "
        f"1/{(h_in * w_in) // (h_out * w_out)} of the positions, so that the stages work on "
        "small maps. Table 1 lists the max pool under conv2_x; torchvision counts it in the stem."
    )


def _block_text(config: ResNetConfig, index: int) -> str:
    """What every block of the stage computes; said at the first stage."""
    blocks, kind = config.blocks_per_stage[index], _kind(config)
    if not config.residual:
        return f"Its {blocks} plain {kind} blocks compute ReLU(F(x)): no shortcut carries x on."
    if config.preact:
        return (
            f"Each of its {blocks} pre-activation {kind} blocks computes x + F(x), BN and ReLU "
            "coming before each convolution (He et al. 2016), so x passes on untouched."
        )
    return (
        f"Each of its {blocks} {kind} blocks computes ReLU(F(x) + x): the bracket's layers "
        "learn the residual F(x), and the identity shortcut adds x back for free."
    )


def _design_text(config: ResNetConfig, index: int) -> str:
    if config.block == "bottleneck":
        middle = config.bottleneck_width(config.widths[index])
        out = config.widths[index] * config.expansion
        text = (
            f"The 1×1 convolutions shrink the channels to {middle} and restore {out}, so the 3×3 "
            "one works on the narrow middle"
        )
        if config.groups > 1:
            text += f", in {config.groups} groups (ResNeXt's cardinality, Xie et al. 2017)"
        return text + "."
    if config.groups > 1:
        return f"Its 3×3 convolutions work in {config.groups} groups (ResNeXt's cardinality)."
    return ""


def _last_3x3(analysis: Analysis, stage: str) -> LayerRecord | None:
    """The last 3x3 convolution of the stage's last block: the stage's steady state."""
    convs = [
        r
        for r in part_records(analysis, stage)
        if r.type == "Conv2d" and r.kernel_size == 3 and r.is_leaf and r.depth == 3
    ]
    return convs[-1] if convs else None


def _cost_text(analysis: Analysis, index: int) -> str:
    here, before = _last_3x3(analysis, f"layer{index + 1}"), _last_3x3(analysis, f"layer{index}")
    if here is None or before is None:
        return "to keep each layer's cost"
    if here.mult_adds == before.mult_adds:
        return (
            f"so that a 3×3 convolution costs {here.mult_adds:,} mult-adds, as in conv{index + 1}_x"
        )
    return (
        f"to keep each layer's cost; here a 3×3 convolution costs {here.mult_adds:,} mult-adds "
        f"against {before.mult_adds:,} in conv{index + 1}_x, the widths not doubling exactly"
    )


SHORTCUTS = {
    "A": "keeps every second pixel and pads the new channels with zeros (option A, no parameters)",
    "B": "becomes a 1×1 convolution with stride 2 (a projection, option B)",
    "C": "is a 1×1 convolution with stride 2, like every shortcut here (option C)",
    "D": "averages 2×2 pixels, then projects with a 1×1 convolution (ResNet-D)",
}


def _transition_text(config: ResNetConfig, analysis: Analysis, index: int) -> str:
    """How the stage changes the map: halved, kept, or kept by dilation."""
    (c_in, h_in, w_in), (c_out, h_out, w_out) = part_shapes(analysis, f"layer{index + 1}")
    if index + 1 in config.dilated_stages:
        return (
            "Instead of halving the map, this stage dilates its 3×3 convolutions: the map stays "
            f"{h_out}×{w_out} and the receptive field still grows, at a higher cost."
        )
    if config.stage_strides[index] == 1:
        return ""
    where = (
        "its first 1×1 convolution (the paper's 'v1')"
        if config.stride_in_1x1 and config.block == "bottleneck"
        else "its 3×3 convolution (torchvision's 'v1.5')"
        if config.block == "bottleneck"
        else "its first 3×3 convolution"
    )
    text = (
        f"The first block halves the map, {h_in}×{w_in} → {h_out}×{w_out}, with stride 2 on "
        f"{where}, and the channels go {c_in} → {c_out}: the paper doubles the filters when it "
        f"halves the map {_cost_text(analysis, index)}."
    )
    if config.residual:
        text += f" Its shortcut {SHORTCUTS[config.shortcut]}, so that x and F(x) can be added."
    return text


def stage_text(config: ResNetConfig, analysis: Analysis, index: int) -> str:
    """The first stage says what a block does; the others, how the stage changes the map."""
    if index == 0 or not _transition_text(config, analysis, index):
        parts = [_block_text(config, index), _design_text(config, index)]
        parts.append(_transition_text(config, analysis, index))
    else:
        parts = [_transition_text(config, analysis, index)]
    if config.se and index == 0:
        parts.append("A squeeze-and-excitation gate (Hu et al. 2018) rescales the channels.")
    return " ".join(part for part in parts if part)


def head_text(config: ResNetConfig, analysis: Analysis) -> str:
    (channels, height, width), (classes,) = part_shapes(analysis, "head")
    head = paper_row(analysis, "head")
    share = head.params / analysis.total_params
    return (
        f"Global average pooling turns each of the {channels} maps ({height}×{width}) into one "
        f"number, whatever the input size, and one fully connected layer maps them to {classes} "
        f"class scores for the softmax. No hidden fc layers, unlike VGG: the head holds "
        f"{head.params:,} of the {analysis.total_params:,} parameters ({share:.1%})."
    )


# -- what the photo becomes --------------------------------------------------------------


def _published_entry(config: ResNetConfig) -> PublishedWeights | None:
    """torchvision's weights for this preset if a file of them is in the torch hub cache.

    Nothing is downloaded: the lecture must run in a hall without a network. The newest
    weights (listed last) come first.
    """
    for entry in reversed(published_weights(preset_name(config) or "")):
        if cached_weights_path(entry).is_file():
            return entry
    return None


def lecture_network(lecture: Lecture) -> tuple[Network, PublishedWeights | None]:
    entry = _published_entry(lecture.config)
    if entry is not None:
        try:
            with st.spinner(f"Loading torchvision's {entry.name} weights..."):
                return published_network(lecture.token, entry.preset, entry.name), entry
        except ValueError as err:
            st.warning(f"{err}; random weights are shown instead.")
    return random_network(lecture.token), None


@dataclass(frozen=True)
class PhotoInput:
    """The photo as the network's input.

    Attributes:
        x: The input tensor (1, C, H, W).
        key: The photo's sha256 and the preprocessing, which the caches are keyed by.
        view: What the network sees, as a picture.
        framed: The photo with the part the network sees outlined.
    """

    x: torch.Tensor
    key: str
    view: Image.Image
    framed: Image.Image


def photo_input(lecture: Lecture, entry: PublishedWeights | None) -> PhotoInput:
    """The chosen sample photo made into the network's input, as torchvision prepares it."""
    data = sample_images()[lecture.photo].read_bytes()
    sha = digest(data)
    if lecture.config.stem == "cifar":
        how = Preprocessing("torchvision", CIFAR_SIZE, None, lecture.config.in_channels)
    else:
        size = entry.crop_size if entry else CROP_SIZE
        resize = round(size * entry.resize_size / entry.crop_size) if entry else None
        how = Preprocessing("torchvision", size, resize, lecture.config.in_channels)
    photo = decode_photo(sha, data)
    prepared = prepare_input(sha, how, photo)
    shown, placed = display_photo(sha, how, photo, prepared)
    return PhotoInput(
        prepared.tensor, f"{sha}:{how.key()}", network_view(prepared), with_crop_box(shown, placed)
    )


def weights_note(net: Network) -> str:
    """How captions name the weights: a few words, the overview says more."""
    return "random weights (untrained)" if net.random else net.label


def maps_ui(lecture: Lecture, layer: str, title: str) -> None:
    """The part's strongest feature maps for the photo, in one row."""
    net, entry = lecture_network(lecture)
    try:
        source = photo_input(lecture, entry)
        with st.spinner(f"Running the photo up to {layer}..."):
            fmap, _ = capture_layer(net.key, source.key, layer, net, source.x)
    except (ValueError, RuntimeError) as err:
        logger.warning("the lecture's maps of %s failed", layer, exc_info=True)
        st.error(f"The maps of {layer} could not be made: {err}")
        return
    channels, height, width = fmap.shape
    # 1x1 maps: one scale for the layer, since each channel's own would paint it flat.
    grid = feature_grid(
        fmap, min(TOP_CHANNELS, channels), None, "channel" if height * width > 1 else "layer"
    )
    st.image(
        feature_grid_image(grid, columns=len(grid.channels), cell=160),
        caption=f"{title}: the {len(grid.channels)} strongest of {channels} maps "
        f"({height}×{width}); {weights_note(net)}",
        width="stretch",
    )


def photo_ui(lecture: Lecture) -> None:
    net, entry = lecture_network(lecture)
    try:
        source = photo_input(lecture, entry)
    except ValueError as err:
        st.error(f"The photo could not be prepared for this network: {err}")
        return
    left, right = st.columns(2)
    left.image(source.framed, caption="The photo", width="stretch")
    height, width = source.x.shape[-2:]
    right.image(source.view, caption=f"What the network sees: {height}×{width}", width="stretch")
    if net.random:
        st.caption(
            "The network has random weights (seed 0). torchvision's trained weights are used "
            "instead when they are in the torch hub cache; nothing is downloaded."
        )
    else:
        st.caption(f"Weights: {net.label}, from the torch hub cache.")


def predictions_ui(lecture: Lecture) -> None:
    net, entry = lecture_network(lecture)
    last = stage_names(lecture.analysis)[-1]
    try:
        source = photo_input(lecture, entry)
        with st.spinner("Running the photo through the network..."):
            _, logits = capture_layer(net.key, source.key, last, net, source.x)
    except (ValueError, RuntimeError) as err:
        st.error(f"The prediction could not be made: {err}")
        return
    predictions = top_predictions(net.model, logits)
    rows = "".join(
        f"<tr><td>{html.escape(p.label)}</td><td class='lec-bar'><div style='width:"
        f"{max(1.0, 100 * p.probability):.1f}%'></div></td><td>{p.probability:.1%}</td></tr>"
        for p in predictions.top
    )
    st.html(f"<table class='lec-predictions'>{rows}</table>")
    st.caption(
        "Random weights (untrained): these predictions mean nothing."
        if net.random
        else f"Weights: {net.label}."
    )


# -- the diagram -------------------------------------------------------------------------


def diagram_ui(lecture: Lecture, part: str | None, size: tuple[int, int]) -> None:
    """The network with `part` highlighted, drawn by the Architecture page's helpers."""
    options = {
        "level": lecture.level,
        "theme": THEME,
        "direction": "TB",
        "counts": False,
        "collapse": True,
        "highlight": part,
        # Each stage is one box at the stages level: nothing there needs a key.
        "legend": lecture.level != "stages",
        # A custom network's full description would make the title, and so the diagram, wider
        # than the column, and everything in it smaller.
        "name": preset_name(lecture.config) or "custom network",
    }
    key = tuple(sorted(options.items()))
    colour = THEMES[THEME].highlight if part else None
    width, height = size
    draw_diagram(
        lecture.token,
        None,
        key,
        panel_width=width,
        max_height=height,
        focus=colour,
        fit=part is None,
    )


# -- the steps ---------------------------------------------------------------------------


def teaching_ui(text: str) -> None:
    st.markdown(f"<div class='lec-teach'>\n\n{text}\n\n</div>", unsafe_allow_html=True)


def shapes_ui(lecture: Lecture, part: str) -> None:
    before, after = part_shapes(lecture.analysis, part)
    st.html(f"<div class='lec-shape'>{shape_text(before)} <span>→</span> {shape_text(after)}</div>")


def part_layout(lecture: Lecture, step: Step, text: str, visual: Callable[[], None]) -> None:
    """Text, Table 1's row and the arithmetic on the left; the diagram and the maps beside."""
    part = step.part or "stem"
    words, pictures = st.columns([1, 1.05], gap="medium")
    with words:
        teaching_ui(text)
        st.html(row_html(paper_row(lecture.analysis, part)))
        shapes_ui(lecture, part)
        arithmetic = arithmetic_text(lecture.analysis, part)
        if arithmetic:
            st.code(arithmetic, language="text", wrap_lines=True)
    with pictures:
        diagram_ui(lecture, part, PART_DIAGRAM)
        if lecture.maps:
            visual()
        else:
            st.caption("Activation maps are off (sidebar).")


def show_overview(lecture: Lecture, step: Step) -> None:
    config, analysis = lecture.config, lecture.analysis
    words, picture, photos = st.columns([5, 3.6, 4], gap="medium")
    with words:
        teaching_ui(overview_text(config, analysis))
        first, second = st.columns(2), st.columns(2)
        first[0].metric("Depth", config.depth, help="weighted layers on the main path")
        params = analysis.total_params
        first[1].metric("Parameters", human(params), help=f"{params:,}")
        second[0].metric(
            "Mult-adds", human(analysis.mult_adds), help=f"{analysis.mult_adds:,} for one image"
        )
        height, width = analysis.input_size
        second[1].metric("Input", f"{height}×{width}", help=f"output stride {config.output_stride}")
        for message in analysis.warnings:
            st.warning(message[:1].upper() + message[1:] + ".")
    with picture:
        diagram_ui(lecture, None, OVERVIEW_DIAGRAM)
    with photos:
        if lecture.maps:
            photo_ui(lecture)
        st.caption("Next, or the → key, steps through the network one part at a time.")


def show_stem(lecture: Lecture, step: Step) -> None:
    stem_end = layer_choices(lecture.analysis, STEM)[-1]
    part_layout(
        lecture,
        step,
        stem_text(lecture.config, lecture.analysis),
        lambda: maps_ui(lecture, stem_end, f"The stem's output ({stem_end})"),
    )


def show_stage(lecture: Lecture, step: Step) -> None:
    index = int(step.key[5:]) - 1
    part_layout(
        lecture,
        step,
        stage_text(lecture.config, lecture.analysis, index),
        lambda: maps_ui(lecture, step.key, f"The output of {step.key}"),
    )


def show_head(lecture: Lecture, step: Step) -> None:
    part_layout(
        lecture, step, head_text(lecture.config, lecture.analysis), lambda: predictions_ui(lecture)
    )


# The gradient step measures the paper's CIFAR ResNet-56 whatever the sidebar's network: a
# batch of 16 at 32x32 through four 56-layer nets takes seconds, an ImageNet net's minutes.
GRADIENT_NET = "resnet56"
GRADIENT_BATCH = 16
GRADIENT_TEXT = (
    "**Why not just stack more layers?** Not because the gradients vanish: with BatchNorm a "
    "deep *plain* net's gradients grow toward the input instead, by orders of magnitude here. "
    "Yet deeper plain nets train *worse* than shallower ones (the degradation problem, the "
    "paper's Fig. 1). The shortcut lets each block start near the identity, and the residual "
    "net's gradients stay within a small factor from first layer to last."
)


def show_gradients(lecture: Lecture, step: Step) -> None:
    with st.spinner(f"Forward and backward passes of four {GRADIENT_NET} variants..."):
        flows = load_flows(GRADIENT_NET, GRADIENT_BATCH, 0)
    words, chart = st.columns([1, 1.4], gap="medium")
    with words:
        teaching_ui(GRADIENT_TEXT)
        cols = st.columns(2)
        for index, label in enumerate(("plain, BN", "residual, BN")):
            ratio, _ = flows[label]
            cols[index].metric(
                label, f"{ratio:.3g}×", help="first conv's weight-gradient norm / last conv's"
            )
        st.caption(
            f"{GRADIENT_NET} and its plain twin at initialisation, a batch of {GRADIENT_BATCH} "
            "generated images. The Gradient lab page has the other depths and the training race."
        )
    with chart:
        series = {label: flows[label][1] for label in ("plain, BN", "residual, BN")}
        st.plotly_chart(gradient_norms_figure(series, "|dL/dW| per layer, input → output"))


def lecture_steps(analysis: Analysis) -> list[Step]:
    """Overview, stem, one step per stage, head. To add a step, append one:

        steps.append(Step("gradients", "How gradients flow", None, show_gradients))

    where `show_gradients(lecture, step)` draws it with Streamlit calls.
    """
    stages = stage_names(analysis)[1:]
    steps = [
        Step("overview", "The whole network", None, show_overview),
        Step("stem", "The stem · conv1", "stem", show_stem),
    ]
    for index, stage in enumerate(stages):
        steps.append(Step(stage, f"Stage {index + 1} · conv{index + 2}_x", stage, show_stage))
    steps.append(Step("head", "The head · pool, fc, prediction", "head", show_head))
    steps.append(
        Step("gradients", "Why the shortcut · gradients at initialisation", None, show_gradients)
    )
    return steps


# -- the page ----------------------------------------------------------------------------


def step_from_link(count: int) -> tuple[int, str | None]:
    """The link's step (1-based) if it is one of `count`; else 1 and a notice saying why."""
    raw = st.query_params.get(STEP_PARAM)
    if raw is None:
        return 1, None
    try:
        number = int(raw)
    except ValueError:
        number = 0
    if 1 <= number <= count:
        return number, None
    return 1, (
        f"The link's step {short_repr(raw)} is not a step of this lecture (1 to {count}); "
        "starting at step 1."
    )


def move(by: int, count: int) -> None:
    """Prev/Next: one step, never past either end."""
    st.session_state[STEP_KEY] = min(max(1, st.session_state[STEP_KEY] + by), count)


def go_to() -> None:
    st.session_state[STEP_KEY] = st.session_state.lecture_goto


def settings_ui(steps: list[Step]) -> tuple[str, str, bool]:
    """The sidebar's lecture settings: the step to jump to, the photo, the diagram, the maps."""
    st.sidebar.subheader("Lecture")
    # Set before the widget is made, so that it always shows the current step.
    st.session_state.lecture_goto = st.session_state[STEP_KEY]
    st.sidebar.selectbox(
        "Go to step",
        range(1, len(steps) + 1),
        key="lecture_goto",
        on_change=go_to,
        format_func=lambda n: f"{n}. {steps[n - 1].title}",
    )
    photos = list(sample_images())
    photo = st.sidebar.selectbox(
        "Photo",
        photos,
        index=photos.index(DEFAULT_PHOTO) if DEFAULT_PHOTO in photos else 0,
        key="lecture_photo",
        format_func=str.capitalize,
    )
    level = st.sidebar.segmented_control(
        "Diagram", LEVELS, default="stages", key="lecture_level", required=True
    )
    maps = st.sidebar.toggle("Activation maps", value=True, key="lecture_maps")
    return str(photo), str(level or "stages"), bool(maps)


def header_ui(steps: list[Step], number: int) -> None:
    # No arrow icons: Streamlit shows each button's key (← and →) beside its label already.
    back, title, forward = st.columns([1.6, 7, 1.6], vertical_alignment="center")
    back.button(
        "Prev",
        key="lecture_prev",
        on_click=move,
        args=(-1, len(steps)),
        disabled=number == 1,
        shortcut="Left",
        width="stretch",
    )
    forward.button(
        "Next",
        key="lecture_next",
        on_click=move,
        args=(1, len(steps)),
        disabled=number == len(steps),
        shortcut="Right",
        width="stretch",
    )
    step = steps[number - 1]
    title.html(
        f"<div class='lec-title'><span class='lec-count'>{number} / {len(steps)}</span>"
        f"{html.escape(step.title)}</div>"
    )


STYLE = """
<style>
/* Room for the content: less padding, and no width cap on a wide projector. */
[data-testid="stMainBlockContainer"] {
    padding: 4.2rem 1.5rem 1rem 1.5rem; max-width: none;
}
/* Large, black type: the back row reads it. */
[data-testid="stMain"] { color: #000; }
.lec-teach p { font-size: 1.32rem; line-height: 1.42; color: #000; margin-bottom: 0.4rem; }
.lec-title { font-size: 2.1rem; font-weight: 700; line-height: 1.1; color: #000; }
.lec-count {
    font-size: 1.1rem; font-weight: 600; color: #fff; background: #000; border-radius: 0.4rem;
    padding: 0.15rem 0.5rem; margin-right: 0.8rem; vertical-align: middle;
}
.st-key-lecture_prev button, .st-key-lecture_next button {
    min-height: 3rem; border: 2px solid #000; color: #000;
}
.st-key-lecture_prev button p, .st-key-lecture_next button p {
    font-size: 1.25rem; font-weight: 600;
}
.lec-row {
    display: flex; gap: 1rem; align-items: center; border-top: 3px solid #000;
    border-bottom: 3px solid #000; padding: 0.4rem 0.2rem; font-size: 1.25rem; color: #000;
}
.lec-row-name { font-weight: 700; min-width: 6.5rem; }
.lec-row-name span { display: block; font-weight: 400; }
.lec-bracket-row { display: flex; align-items: center; gap: 0.5rem; }
.lec-bracket {
    border-left: 3px solid #000; border-right: 3px solid #000; border-radius: 0.5rem;
    padding: 0 0.6rem; text-align: center;
}
.lec-repeat { font-weight: 700; }
.lec-shape { font-size: 1.45rem; font-weight: 700; color: #000; }
.lec-shape span { color: #D55E00; }
[data-testid="stMain"] [data-testid="stCode"] code { font-size: 0.98rem; color: #000; }
[data-testid="stMain"] [data-testid="stCaptionContainer"] p { font-size: 1.02rem; color: #222; }
[data-testid="stMain"] [data-testid="stImageCaption"] { font-size: 1rem; color: #222; }
[data-testid="stMain"] [data-testid="stMetricValue"] { color: #000; }
[data-testid="stMain"] [data-testid="stMetricLabel"] p { font-size: 1.1rem; color: #000; }
.lec-predictions { font-size: 1.3rem; color: #000; border-collapse: collapse; width: 100%; }
.lec-predictions td { padding: 0.2rem 0.4rem; border: none; }
.lec-bar { width: 40%; }
.lec-bar div { background: #0072B2; height: 1.1rem; }
</style>
"""


def render() -> None:
    # The lecture needs the whole screen; the sidebar (model picker, lecture settings) stays
    # one click away, behind the arrow at the top left.
    st.set_page_config(initial_sidebar_state="collapsed")
    st.html(STYLE)
    config, token = current_config(), current_token()
    analysis = current_analysis()
    steps = lecture_steps(analysis)
    notice = None
    if STEP_KEY not in st.session_state:
        st.session_state[STEP_KEY], notice = step_from_link(len(steps))
    # A network with fewer stages than the last one ends sooner.
    st.session_state[STEP_KEY] = min(st.session_state[STEP_KEY], len(steps))
    photo, level, maps = settings_ui(steps)
    number = st.session_state[STEP_KEY]
    st.query_params[STEP_PARAM] = str(number)

    header_ui(steps, number)
    if notice:
        st.warning(notice)
    step = steps[number - 1]
    step.show(Lecture(config, token, analysis, photo, level, maps), step)


if __name__ == "__main__":
    render()
