"""What the Activations page computes, cached; no widgets here, so the tests can call it.

Models are resources: one per configuration with its random initialisation, shared by every
session and never changed by one (the library's functions remove their hooks and restore the
mode; nothing here loads weights into it or trains it), and one per checkpoint, keyed by the
sha256 of its bytes. Hooks are visible to every thread that runs a module, so each model comes
with a lock and only one pass runs on it at a time: another session's pass would otherwise
trigger this session's hooks.

Everything derived from a pass is data, keyed by the model's key, the photo's sha256, the
preprocessing and the layer, and bounded. What is drawn from it (grids, overlays, statistics)
is made from the cached tensors on every run, so changing the normalisation, the top-k or the
enlarged channel never runs the network again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch
from PIL import Image, ImageDraw

from resnet_viz import ResNet, ResNetConfig, build_model
from resnet_viz.activations import (
    EffectiveField,
    GradCam,
    ResidualAnatomy,
    capture,
    effective_receptive_field,
    grad_cam,
    layer_label,
    parse_layer,
    residual_anatomy,
    residual_response_std,
)
from resnet_viz.analysis import Analysis, LayerRecord, analyze
from resnet_viz.images import LoadedImage, Prepared, load_image, prepare
from resnet_viz.rendering import receptive_field_image
from resnet_viz.weights import (
    WeightsMismatchError,
    config_for_checkpoint,
    fetch_published_weights,
    infer_config,
    load_state_dict,
    published_weights,
    read_checkpoint,
)

logger = logging.getLogger(__name__)

# The random initialisation is drawn from this seed, so that every session, and every restart
# of the server, shows the same random network.
RANDOM_SEED = 0
RANDOM_LABEL = "random initialisation"
# Photos are shown, and overlays drawn, at most this many pixels on their long side: a 48 MP
# phone photo would otherwise cost a gigabyte of floats per overlay and look no different.
DISPLAY_SIDE = 1280

# How often each cached computation has actually run (cache misses), for the tests.
RUNS: Counter[str] = Counter()


@dataclass(frozen=True)
class Network:
    """A model the page may run, with the lock that keeps one pass on it at a time.

    Attributes:
        key: What the cached results are keyed by: "random:TOKEN",
            "checkpoint:SHA256:TOKEN" or "torchvision:TOKEN:WEIGHTS".
        token: The configuration's link token.
        model: The network, in eval mode; never changed after it is made.
        lock: Held for every pass through `model`.
        label: How captions name the weights.
        random: The weights are the random initialisation.
    """

    key: str
    token: str
    model: ResNet
    lock: threading.Lock
    label: str
    random: bool


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- models ------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False, max_entries=6)
def random_network(token: str) -> Network:
    """The configuration's network with its random initialisation, shared by all sessions."""
    config = ResNetConfig.from_url_token(token)
    model = build_model(config, seed=RANDOM_SEED)
    return Network(f"random:{token}", token, model, threading.Lock(), RANDOM_LABEL, True)


@dataclass(frozen=True)
class CheckpointPlan:
    """What an uploaded checkpoint holds and which network its weights go into.

    Attributes:
        token: The configuration to load the weights into; None if they fit none.
        inferred: The configuration the checkpoint's keys and shapes describe, if any.
        notices: Sentences for the user (wrappers undone, classes taken from the checkpoint).
        mismatch: How the checkpoint differs, key by key, from the network asked for; None
            when it fits.
        error: Why the checkpoint cannot be used; None when it can.
    """

    token: str | None
    inferred: str | None = None
    notices: tuple[str, ...] = ()
    mismatch: str | None = None
    error: str | None = None


@st.cache_data(show_spinner=False, max_entries=8)
def plan_checkpoint(sha: str, requested: str, _data: bytes) -> CheckpointPlan:
    """Read a checkpoint and settle its configuration: the requested one where it fits."""
    RUNS["plan_checkpoint"] += 1
    try:
        checkpoint = read_checkpoint(_data)
    except Exception as err:  # an upload can hold anything: PyTorch's own errors included
        logger.warning("reading a checkpoint failed", exc_info=True)
        return CheckpointPlan(None, error=(str(err) or type(err).__name__).splitlines()[0])
    notices = tuple(checkpoint.notices)
    try:
        chosen, inferred, more = config_for_checkpoint(
            checkpoint.state_dict, ResNetConfig.from_url_token(requested)
        )
    except WeightsMismatchError as err:
        try:
            own = infer_config(checkpoint.state_dict)
        except ValueError:
            return CheckpointPlan(None, notices=notices, error=str(err))
        # The weights fit another network: show them in that one, with the differences.
        token = own.to_url_token()
        return CheckpointPlan(token, token, notices, mismatch=err.mismatch.describe(3))
    except ValueError as err:
        return CheckpointPlan(None, notices=notices, error=str(err))
    return CheckpointPlan(
        chosen.to_url_token(),
        None if inferred is None else inferred.to_url_token(),
        notices + tuple(more),
    )


@st.cache_resource(show_spinner=False, max_entries=4)
def checkpoint_network(sha: str, token: str, name: str, _data: bytes) -> Network:
    """A session's own network with its checkpoint loaded, all tensors or none.

    Raises:
        ValueError: When the weights do not fit (`WeightsMismatchError`); nothing is cached.
    """
    RUNS["checkpoint_network"] += 1
    model = build_model(ResNetConfig.from_url_token(token))
    load_state_dict(model, read_checkpoint(_data).state_dict, name)
    return Network(f"checkpoint:{sha}:{token}", token, model, threading.Lock(), name, False)


@st.cache_resource(show_spinner=False, max_entries=2)
def published_network(token: str, preset: str, weights: str) -> Network:
    """torchvision's published weights for a preset, from the torch hub cache only.

    Raises:
        ValueError: When the file is not in the cache (nothing is downloaded here).
    """
    (entry,) = [e for e in published_weights(preset) if e.name == weights]
    path = fetch_published_weights(entry, download=False)
    model = build_model(ResNetConfig.from_url_token(token))
    load_state_dict(model, read_checkpoint(path).state_dict, f"torchvision's {preset} {weights}")
    return Network(
        f"torchvision:{token}:{weights}",
        token,
        model,
        threading.Lock(),
        f"torchvision {weights}",
        False,
    )


# -- the photo and the input -------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=16)
def decode_photo(sha: str, _data: bytes) -> LoadedImage:
    """`load_image` of the bytes; raises its ValueError for anything it refuses."""
    return load_image(_data)


@dataclass(frozen=True)
class Preprocessing:
    """How the input is made: `images.prepare`'s arguments, hashable for the caches."""

    recipe: str
    size: int
    resize: int | None
    in_channels: int

    def key(self) -> str:
        return f"{self.recipe}-{self.size}-{self.resize}-{self.in_channels}"


@st.cache_data(show_spinner=False, max_entries=16)
def prepare_input(sha: str, how: Preprocessing, _photo: LoadedImage) -> Prepared:
    return prepare(_photo, how.recipe, how.size, how.in_channels, how.resize)


@st.cache_data(show_spinner=False, max_entries=16)
def display_photo(
    sha: str, how: Preprocessing, _photo: LoadedImage, _prepared: Prepared
) -> tuple[Image.Image, Prepared]:
    """The photo at most DISPLAY_SIDE pixels long, and the input's place on it.

    The returned `Prepared` differs from the real one only in `photo_size` and `crop_box`, so
    that `rendering.heat_overlay` draws on the smaller photo.
    """
    image = _photo.image
    scale = min(1.0, DISPLAY_SIDE / max(image.size))
    if scale < 1.0:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.LANCZOS,
        )
    sx, sy = image.width / _photo.image.width, image.height / _photo.image.height
    left, top, right, bottom = _prepared.crop_box
    placed = dataclasses.replace(
        _prepared, photo_size=image.size, crop_box=(left * sx, top * sy, right * sx, bottom * sy)
    )
    return image, placed


def with_crop_box(photo: Image.Image, prepared: Prepared) -> Image.Image:
    """The photo with the region the network sees outlined (nothing drawn if it is all)."""
    left, top, right, bottom = prepared.crop_box
    if left <= 0.5 and top <= 0.5 and right >= photo.width - 0.5 and bottom >= photo.height - 0.5:
        return photo
    framed = photo.copy()
    width = max(2, round(max(photo.size) / 200))
    ImageDraw.Draw(framed).rectangle((left, top, right, bottom), outline=(0, 255, 255), width=width)
    return framed


def enlarged(image: Image.Image, at_least: int) -> Image.Image:
    """A small picture scaled up by a whole factor with visible pixels (a 32x32 CIFAR input)."""
    factor = -(-at_least // max(image.size))
    if factor <= 1:
        return image
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


# -- what a pass gives -------------------------------------------------------------------
# Each takes the Network as `_net` (not hashed) and is keyed by `net_key`, the photo's sha256
# and the preprocessing's key together in `input_key`, and what it asks for.


@st.cache_data(show_spinner=False, max_entries=24)
def capture_layer(
    net_key: str, input_key: str, layer: str, _net: Network, _x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the layer's maps (C, H, W), the logits (classes,)) for one image."""
    RUNS["capture"] += 1
    with _net.lock:
        result = capture(_net.model, _x, [layer])
    return result.outputs[parse_layer(layer)][0], result.logits[0]


@st.cache_data(show_spinner=False, max_entries=16)
def cam_for(
    net_key: str,
    input_key: str,
    layer: str,
    class_index: int | None,
    _net: Network,
    _x: torch.Tensor,
) -> GradCam:
    RUNS["grad_cam"] += 1
    with _net.lock:
        return grad_cam(_net.model, _x, layer, class_index)


@st.cache_data(show_spinner=False, max_entries=16)
def anatomy_of(
    net_key: str, input_key: str, block: str, _net: Network, _x: torch.Tensor
) -> ResidualAnatomy:
    RUNS["anatomy"] += 1
    with _net.lock:
        return residual_anatomy(_net.model, _x, block)


@st.cache_data(show_spinner=False, max_entries=16)
def response_spread(
    net_key: str, input_key: str, _net: Network, _x: torch.Tensor
) -> list[tuple[str, float]]:
    RUNS["response_std"] += 1
    with _net.lock:
        return residual_response_std(_net.model, _x)


@st.cache_data(show_spinner=False, max_entries=16)
def field_of(
    net_key: str,
    input_key: str,
    layer: str,
    position: tuple[int, int],
    _net: Network,
    _x: torch.Tensor,
) -> EffectiveField:
    RUNS["erf"] += 1
    with _net.lock:
        return effective_receptive_field(_net.model, _x, layer, position)


@st.cache_data(show_spinner=False, max_entries=32)
def analysis_at(token: str, height: int, width: int) -> Analysis:
    """Shapes at the page's real input size (the shared analysis is at 224 or 32).

    Its warnings (maps shrunk to 1x1 by a small input) stay in `Analysis.warnings`, for the page
    to show, instead of going to the server's log.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analyze(ResNetConfig.from_url_token(token), input_size=(height, width))


# The effective field's gradient is spiky: scaled by its maximum, one pixel would be bright and
# the rest black. Colours saturate at this quantile instead, so that its extent shows.
FIELD_QUANTILE = 0.995


def field_picture(view: Image.Image, field: EffectiveField) -> Image.Image:
    """The fields on the network's view, with a margin wide enough for the whole box.

    The theoretical field of a late stage is larger than the input (the rest is padding), so
    the box is drawn on a gray margin around the picture rather than cut off at its edges.
    """
    heat = field.heat
    top = float(torch.quantile(heat.flatten().float(), FIELD_QUANTILE))
    shown = dataclasses.replace(field, heat=(heat / top).clamp(0, 1) if top > 0 else heat)
    picture = receptive_field_image(view, shown)
    box_top, box_left, box_bottom, box_right = field.box
    overshoot = max(
        0.0, -box_top, -box_left, box_bottom - (view.height - 1), box_right - (view.width - 1)
    )
    pad = int(np.ceil(overshoot)) + 2
    canvas = Image.new("RGB", (view.width + 2 * pad, view.height + 2 * pad), (225, 225, 225))
    canvas.paste(picture, (pad, pad))
    ImageDraw.Draw(canvas).rectangle(
        (box_left + pad, box_top + pad, box_right + pad, box_bottom + pad),
        outline=(0, 200, 255),
        width=2,
    )
    return canvas


def share_of_field(heat: torch.Tensor, mass: float = 0.9) -> int:
    """How many input pixels hold `mass` of the effective field's gradient."""
    values = np.sort(heat.flatten().numpy())[::-1]
    total = values.sum()
    if total <= 0:
        return 0
    return int(np.searchsorted(np.cumsum(values), mass * total) + 1)


# -- the layers of a network, as the pickers offer them ---------------------------------

STEM = "stem"


def _in_order(analysis: Analysis) -> list[LayerRecord]:
    return sorted(analysis.records, key=lambda record: record.start_order)


def stage_names(analysis: Analysis) -> list[str]:
    """["stem", "layer1", "layer2", ...]."""
    stages = [r.name for r in _in_order(analysis) if r.depth == 1 and r.part == "stage"]
    return [STEM, *stages]


def block_names(analysis: Analysis, stage: str) -> list[str]:
    """The blocks of a stage ("layer3.0", ...); the stem is one block of its own."""
    if stage == STEM:
        return [STEM]
    return [r.name for r in _in_order(analysis) if r.depth == 2 and r.name.startswith(stage + ".")]


def layer_choices(analysis: Analysis, block: str) -> list[str]:
    """The block's output, then each call of each of its leaves, in the order they run.

    A module called twice appears twice, its second call as "layer1.0.relu (2)".
    """
    records = _in_order(analysis)
    if block == STEM:
        return [
            layer_label((r.name, r.call_index)) for r in records if r.is_leaf and r.part == STEM
        ]
    leaves = [
        layer_label((r.name, r.call_index))
        for r in records
        if r.is_leaf and r.name.startswith(block + ".")
    ]
    return [block, *leaves]


def default_layer(analysis: Analysis, block: str) -> str:
    """The block's last ReLU (the block's output after the addition), else its output."""
    choices = layer_choices(analysis, block)
    if block == STEM:
        return choices[-1]
    own_relu = [c for c in choices if parse_layer(c)[0] == f"{block}.relu"]
    last_leaf = choices[-1]
    # A pre-activation block ends on its addition: its last ReLU is inside the branch.
    return last_leaf if own_relu and last_leaf == own_relu[-1] else block


def default_stage(stages: list[str]) -> str:
    """Stage 3, where ResNets' maps respond to object parts; the last one if there are fewer."""
    return "layer3" if "layer3" in stages else stages[-1]


def cam_layers(analysis: Analysis) -> list[str]:
    """Stages and blocks, in order: where Grad-CAM is usually asked for."""
    return [r.name for r in _in_order(analysis) if r.part == "stage" and r.depth in (1, 2)]
