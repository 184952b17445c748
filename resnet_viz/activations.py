"""What a network does to one image: feature maps, residual anatomy, predictions, Grad-CAM, ERF.

Layers are named as `analyze` names them: the module's qualified name ("layer3.1.conv2"), and
for the second call of a shared module (a block's ReLU runs twice) the name followed by the
call's number counted from 1, as the summary prints it: "layer3.1.relu (2)". A `LayerKey` is
the pair (name, call index from 0), as in `LayerRecord.name` and `LayerRecord.call_index`.

Every function here runs the model in eval mode on the device where its weights are, hooks only
the modules it needs, and removes its hooks when it is done, also after an error.

Limitations:
    The effective receptive field is the gradient for one image and one set of weights; Luo et
    al. (2016) average it over many inputs, which smooths it. Grad-CAM needs the layer's
    output to reach the classifier: a layer after which the class score no longer depends on
    it gives a map of zeros.
"""

from __future__ import annotations

import difflib
import logging
import re
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from resnet_viz.blocks import ResidualBlock
from resnet_viz.devices import available_memory, check_fits, out_of_memory_as_error
from resnet_viz.images import imagenet_labels

logger = logging.getLogger(__name__)

LayerKey = tuple[str, int]

_LABEL = re.compile(r"^\s*(?P<name>[\w.]+?)\s*(?:\((?P<call>\d+)\))?\s*$")


def parse_layer(layer: str | LayerKey) -> LayerKey:
    """("layer4.1.relu", 1) from "layer4.1.relu (2)"; a bare name is its first call."""
    if isinstance(layer, tuple):
        name, call_index = layer
        if not isinstance(name, str) or isinstance(call_index, bool) or call_index < 0:
            raise ValueError(f"a layer is (name, call index from 0), got {layer!r}")
        return name, int(call_index)
    match = _LABEL.match(layer) if isinstance(layer, str) else None
    if match is None:
        raise ValueError(
            f"{layer!r} is not a layer name; names look like 'layer1.0.conv1', and a second "
            "call like 'layer1.0.relu (2)'"
        )
    call = int(match["call"]) if match["call"] else 1
    if call < 1:
        raise ValueError(f"calls are counted from 1, as the summary shows them; got {layer!r}")
    return match["name"], call - 1


def layer_label(key: LayerKey) -> str:
    """The inverse of `parse_layer`: "layer4.1.relu (2)" for ("layer4.1.relu", 1)."""
    name, call_index = key
    return name if call_index == 0 else f"{name} ({call_index + 1})"


def _modules_by_name(model: nn.Module) -> dict[str, nn.Module]:
    # The same names as the analysis: `named_modules` lists a shared module once.
    return {name: module for name, module in model.named_modules() if name}


def _resolve(model: nn.Module, layers: Sequence[str | LayerKey]) -> dict[LayerKey, nn.Module]:
    modules = _modules_by_name(model)
    resolved = {}
    for layer in layers:
        key = parse_layer(layer)
        if key[0] not in modules:
            raise ValueError(_unknown_layer(key[0], list(modules)))
        resolved[key] = modules[key[0]]
    return resolved


def _unknown_layer(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.7)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return (
        f"no layer named {name!r} in this network; {hint}`resnet-viz summary MODEL` lists every "
        "layer's name (a shared module's second call is written like 'layer1.0.relu (2)')"
    )


def _device_of(model: nn.Module) -> torch.device:
    tensor = next(model.parameters(), None)
    return torch.device("cpu") if tensor is None else tensor.device


def _has_inplace_ops(model: nn.Module) -> bool:
    return any(getattr(module, "inplace", False) for module in model.modules())


@contextmanager
def _eval_with_hooks(model: nn.Module) -> Iterator[list[RemovableHandle]]:
    """Eval mode and a list for hook handles; the mode is restored and every hook removed."""
    was_training = model.training
    handles: list[RemovableHandle] = []
    model.eval()
    try:
        yield handles
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)


def _counting_hook(
    wanted: set[int], on_call: Callable[[int, Any], Any]
) -> Callable[[nn.Module, Any, Any], Any]:
    """A forward hook that numbers the module's calls and hands the wanted ones to `on_call`."""
    calls = [0]

    def hook(module: nn.Module, inputs: Any, output: Any) -> Any:
        index = calls[0]
        calls[0] += 1
        if index in wanted:
            return on_call(index, output)
        return None

    return hook


# The memory a pass needs, per model and input: (inference peak, kept for backward, output
# bytes per layer), in float32 bytes. Weak keys, so that a model's entry goes with it.
_Estimate = tuple[int, "int | None", dict[LayerKey, int]]
_ESTIMATES: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, ...], _Estimate]] = (
    weakref.WeakKeyDictionary()
)


def _estimate(model: nn.Module, shape: tuple[int, ...]) -> _Estimate | None:
    """What a pass of `shape` through `model` keeps alive, from the analysis on meta.

    LIMITATION: cached per model object and input shape; a model whose modules are replaced
    after its first pass keeps the old estimate.
    """
    from resnet_viz.analysis import MAX_BATCH, MAX_INPUT_SIDE, analyze

    if len(shape) != 4 or shape[0] > MAX_BATCH or max(shape[-2:]) > MAX_INPUT_SIDE:
        return None  # past what the analysis takes; the pass itself may still work
    cached = _ESTIMATES.setdefault(model, {})
    if shape not in cached:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # small maps are the caller's to warn about
                analysis = analyze(model, input_size=shape[-2:], batch=shape[0])
        except (RuntimeError, TypeError, NotImplementedError):
            # A module the meta trace cannot run; the real pass reports its own error.
            logger.debug("no memory estimate for %s", type(model).__name__, exc_info=True)
            return None
        outputs = {(r.name, r.call_index): r.output_bytes for r in analysis.records}
        memory = analysis.memory
        cached[shape] = (memory.inference_peak, memory.training_activations, outputs)
    return cached[shape]


@contextmanager
def _guarded_pass(
    model: nn.Module, x: Tensor, what: str, backward: bool = False, kept: Sequence[LayerKey] = ()
) -> Iterator[None]:
    """Check that a real pass fits on the model's device, then run it with out-of-memory
    errors turned into messages (see `devices.out_of_memory_as_error`).

    The estimate is the analysis's inference peak, plus what a backward pass keeps when there
    is one, plus the outputs kept (`kept`); it leaves out convolution workspaces, which the
    out-of-memory guard covers.
    """
    device = _device_of(model)
    if device.type != "meta" and available_memory(device) is not None:
        estimate = _estimate(model, tuple(x.shape))
        if estimate is not None:
            peak, training, outputs = estimate
            needed = peak + sum(outputs.get(key, 0) for key in kept)
            if backward:
                needed += training if training is not None else peak
            scale = next((p.element_size() for p in model.parameters()), 4) / 4
            check_fits(int(needed * scale), device, what)
    with out_of_memory_as_error(device, what):
        yield


def _input_on(model: nn.Module, x: Tensor) -> Tensor:
    if x.dim() != 4:
        raise ValueError(f"the input must be (N, C, H, W), got shape {tuple(x.shape)}")
    return x.to(_device_of(model))


# -- capture ---------------------------------------------------------------------------


@dataclass
class Capture:
    """Outputs of the requested layers for one input, detached, on the CPU.

    Attributes:
        outputs: One tensor per requested layer, (N, C, H, W) for maps.
        logits: The network's output, (N, classes).
    """

    outputs: dict[LayerKey, Tensor]
    logits: Tensor


def capture(model: nn.Module, x: Tensor, layers: Sequence[str | LayerKey]) -> Capture:
    """Run `x` through `model` once and keep the outputs of `layers` only.

    Args:
        model: The network; it runs in eval mode where its weights are, and its mode is
            restored afterwards.
        x: The input, (N, C, H, W); moved to the model's device.
        layers: Names as in the analysis: "layer2.0.conv1", "layer2.0.relu (2)", or
            (name, call index) pairs.

    Raises:
        ValueError: For a name the network does not have, or a call it does not make.
    """
    targets = _resolve(model, layers)
    # Our ReLUs never work in place, so a reference is enough; a model whose modules do would
    # overwrite a captured output later in the pass, and needs a copy.
    copy = _has_inplace_ops(model)
    outputs: dict[LayerKey, Tensor] = {}
    by_module: dict[nn.Module, set[int]] = {}
    for (_, call_index), module in targets.items():
        by_module.setdefault(module, set()).add(call_index)

    with (
        _guarded_pass(model, x, "capturing these layers", kept=list(targets)),
        _eval_with_hooks(model) as handles,
        torch.no_grad(),
    ):
        names = {module: key[0] for key, module in targets.items()}
        for module, wanted in by_module.items():

            def keep(index: int, output: Any, name: str = names[module]) -> None:
                if isinstance(output, Tensor):
                    outputs[(name, index)] = output.detach().clone() if copy else output.detach()

            handles.append(module.register_forward_hook(_counting_hook(wanted, keep)))
        logits = model(_input_on(model, x))

    missing = [key for key in targets if key not in outputs]
    if missing:
        name, index = missing[0]
        raise ValueError(
            f"{name!r} has no call {index + 1} in this network (or no tensor output); "
            "`resnet-viz summary MODEL` shows each call"
        )
    return Capture({key: outputs[key].cpu() for key in targets}, logits.detach().cpu())


def leaf_layers(model: nn.Module) -> list[str]:
    """Names of the modules without submodules, in definition order."""
    return [name for name, module in _modules_by_name(model).items() if not any(module.children())]


# -- feature maps and statistics -------------------------------------------------------


@dataclass(frozen=True)
class ChannelStats:
    """Statistics of one channel of a feature map (or of a whole map, channel -1)."""

    channel: int
    mean: float
    std: float
    min: float
    max: float
    zero_fraction: float

    def to_dict(self) -> dict[str, float | int]:
        return {
            "channel": self.channel,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "zero_fraction": self.zero_fraction,
        }


def _maps(fmap: Tensor) -> Tensor:
    """(C, H, W) from (1, C, H, W) or (C, H, W)."""
    if fmap.dim() == 4 and fmap.shape[0] == 1:
        fmap = fmap[0]
    if fmap.dim() != 3:
        raise ValueError(
            f"a feature map is (C, H, W) for one image, got shape {tuple(fmap.shape)}; layers "
            "after the global pool have no maps"
        )
    return fmap.detach().float().cpu()


def channel_stats(fmap: Tensor) -> list[ChannelStats]:
    """Mean, standard deviation, minimum, maximum and fraction of zeros of every channel."""
    flat = _maps(fmap).flatten(1)  # (C, H * W)
    # Population std: a 1x1 map has spread 0, not NaN.
    rows = zip(
        flat.mean(1).tolist(),
        flat.std(1, correction=0).tolist(),
        flat.amin(1).tolist(),
        flat.amax(1).tolist(),
        (flat == 0).float().mean(1).tolist(),
        strict=True,
    )
    return [ChannelStats(index, *values) for index, values in enumerate(rows)]


def tensor_stats(tensor: Tensor) -> ChannelStats:
    """The same statistics over a whole tensor (channel -1)."""
    flat = tensor.detach().float().cpu().flatten()
    return ChannelStats(
        -1,
        flat.mean().item(),
        flat.std(correction=0).item(),
        flat.min().item(),
        flat.max().item(),
        (flat == 0).float().mean().item(),
    )


def top_channels(fmap: Tensor, k: int) -> list[int]:
    """The `k` channels with the largest mean activation, largest first (ties: lower index)."""
    means = _maps(fmap).mean((1, 2))
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"top-k must be a positive whole number, got {k!r}")
    order = torch.sort(means, descending=True, stable=True).indices
    return order[:k].tolist()


def normalise_maps(
    maps: Tensor, per: str = "channel", span: tuple[float, float] | None = None
) -> Tensor:
    """Scale maps (K, H, W) into [0, 1].

    Args:
        maps: The maps to show.
        per: "channel": each map from its own minimum to its own maximum, to see its pattern;
            "layer": all by one range (`span`, or the maps' joint range), to compare strengths.
        span: (low, high) for "layer", usually the whole layer's range.

    Returns:
        Maps in [0, 1]; a flat map is all zeros, never NaN.
    """
    maps = maps.detach().float()
    if per == "channel":
        low = maps.flatten(1).amin(1)[:, None, None]
        high = maps.flatten(1).amax(1)[:, None, None]
    elif per == "layer":
        low_value, high_value = span if span is not None else (maps.min().item(), maps.max().item())
        low, high = torch.tensor(low_value), torch.tensor(high_value)
    else:
        raise ValueError(f"normalisation must be 'channel' or 'layer', got {per!r}")
    width = high - low
    scaled = torch.where(width > 0, (maps - low) / torch.where(width > 0, width, 1.0), 0.0)
    return scaled.clamp(0, 1).nan_to_num(0.0)


@dataclass(frozen=True)
class FeatureGrid:
    """The maps to draw for one layer.

    Attributes:
        channels: Channel indices, in the order shown.
        maps: (K, H, W) in [0, 1], normalised as `normalisation` says.
        stats: Statistics of the shown channels, raw values, in the same order.
        normalisation: "channel" or "layer".
    """

    channels: list[int]
    maps: Tensor
    stats: list[ChannelStats]
    normalisation: str


def feature_grid(
    fmap: Tensor,
    top_k: int = 16,
    channels: Sequence[int] | None = None,
    normalisation: str = "channel",
) -> FeatureGrid:
    """Pick channels (the `top_k` by mean activation, or `channels`) and normalise them."""
    maps = _maps(fmap)
    if channels is None:
        chosen = top_channels(maps, top_k)
    else:
        chosen = [int(c) for c in channels]
        bad = [c for c in chosen if not 0 <= c < maps.shape[0]]
        if bad or not chosen:
            raise ValueError(
                f"channels {bad or 'none'} do not exist; this layer has channels 0 to "
                f"{maps.shape[0] - 1}"
            )
    span = (maps.min().item(), maps.max().item())
    shown = normalise_maps(maps[chosen], normalisation, span)
    every = channel_stats(maps)
    return FeatureGrid(chosen, shown, [every[c] for c in chosen], normalisation)


# -- residual anatomy ------------------------------------------------------------------


@dataclass
class ResidualAnatomy:
    """The parts of one residual block's computation for one image, (C, H, W) each.

    Attributes:
        block: The block's name, "layer3.1".
        x: The block's input.
        branch: The residual branch F(x), before the addition.
        shortcut: What is added to it: x itself, or the projection of x; None in a plain block.
        total: F(x) + shortcut(x); None in a plain block.
        output: The block's output: ReLU of the sum, or the sum itself in a pre-activation
            block, which applies no ReLU after the addition.
        relu_after_sum: Whether `output` is the ReLU of `total`.
    """

    block: str
    x: Tensor
    branch: Tensor
    shortcut: Tensor | None
    total: Tensor | None
    output: Tensor
    relu_after_sum: bool

    def stats(self) -> dict[str, ChannelStats]:
        """Statistics over each whole tensor, keyed "x", "branch", "shortcut", "total", "output"."""
        parts = {
            "x": self.x,
            "branch": self.branch,
            "shortcut": self.shortcut,
            "total": self.total,
            "output": self.output,
        }
        return {name: tensor_stats(t) for name, t in parts.items() if t is not None}


def _branch_end(block: ResidualBlock) -> nn.Module:
    """The module whose output is F(x): the SE unit if there is one, else the last layer."""
    se = getattr(block, "se", None)
    return se if isinstance(se, nn.Module) else block.last_branch_layer()


def _block(model: nn.Module, name: str) -> ResidualBlock:
    modules = _modules_by_name(model)
    if name not in modules:
        raise ValueError(_unknown_layer(name, list(modules)))
    block = modules[name]
    if not isinstance(block, ResidualBlock):
        raise ValueError(
            f"{name!r} is a {type(block).__name__}, not a residual block; blocks are named "
            "like 'layer3.0' (stage 3, first block)"
        )
    return block


def residual_anatomy(model: nn.Module, x: Tensor, block: str) -> ResidualAnatomy:
    """x, F(x), shortcut(x), their sum and the output of one block, for one image."""
    module = _block(model, block)
    seen: dict[str, Tensor] = {}

    def store(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(_: nn.Module, inputs: Any, output: Any) -> None:
            seen.setdefault(name, output.detach().clone())

        return hook

    def store_input(_: nn.Module, inputs: tuple[Any, ...]) -> None:
        seen.setdefault("x", inputs[0].detach().clone())

    with (
        _guarded_pass(model, x, f"taking {block} apart"),
        _eval_with_hooks(model) as handles,
        torch.no_grad(),
    ):
        handles.append(module.register_forward_pre_hook(store_input))
        handles.append(module.register_forward_hook(store("output")))
        handles.append(_branch_end(module).register_forward_hook(store("branch")))
        downsample = getattr(module, "downsample", None)
        if isinstance(downsample, nn.Module):
            handles.append(downsample.register_forward_hook(store("shortcut")))
        model(_input_on(model, x))

    parts = {name: tensor[0].cpu() for name, tensor in seen.items()}
    residual = bool(getattr(module, "residual", True))
    shortcut = parts.get("shortcut", parts["x"]) if residual else None
    total = parts["branch"] + shortcut if shortcut is not None else None
    preact = "PreAct" in type(module).__name__
    return ResidualAnatomy(
        block=block,
        x=parts["x"],
        branch=parts["branch"],
        shortcut=shortcut,
        total=total,
        output=parts["output"],
        relu_after_sum=residual and not preact,
    )


def residual_response_std(model: nn.Module, x: Tensor) -> list[tuple[str, float]]:
    """The standard deviation of every block's residual response F(x), in depth order.

    He et al. (2015), Fig. 7, plot the spread of each layer's response after BatchNorm and
    before the non-linearity; here it is the branch's output just before the addition (after
    the SE unit where there is one), one value per block. In deep ResNets it is smaller than
    in their plain twins and falls with depth: each block changes the signal a little.
    """
    blocks = [
        (name, module)
        for name, module in _modules_by_name(model).items()
        if isinstance(module, ResidualBlock)
    ]
    spreads: dict[str, float] = {}
    with (
        _guarded_pass(model, x, "measuring the residual responses"),
        _eval_with_hooks(model) as handles,
        torch.no_grad(),
    ):
        for name, block in blocks:

            def measure(_: nn.Module, inputs: Any, output: Tensor, name: str = name) -> None:
                spreads.setdefault(name, output.float().std(correction=0).item())

            handles.append(_branch_end(block).register_forward_hook(measure))
        model(_input_on(model, x))
    return [(name, spreads[name]) for name, _ in blocks if name in spreads]


# -- predictions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float


@dataclass(frozen=True)
class Predictions:
    """The most likely classes, and whether they mean anything.

    Attributes:
        top: The k most probable classes, most probable first.
        random_weights: The network has its random initialisation: the classes are noise.
        note: A sentence to show beside them, or None.
    """

    top: list[Prediction]
    random_weights: bool
    note: str | None


def top_predictions(model: nn.Module, logits: Tensor, k: int = 5) -> Predictions:
    """The top-k classes of one image's logits, with ImageNet names for 1000 classes."""
    probabilities = torch.softmax(logits.detach().float().reshape(-1), dim=0)
    classes = probabilities.numel()
    labels = imagenet_labels() if classes == 1000 else [f"class {i}" for i in range(classes)]
    values, indices = probabilities.topk(min(k, classes))
    top = [
        Prediction(int(i), labels[int(i)], float(v))
        for v, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]
    source = getattr(model, "weights_source", None)
    random_weights = source is None
    if random_weights:
        note = "the weights are random (no checkpoint loaded), so these predictions mean nothing"
    elif classes == 1000:
        note = f"ImageNet class names; right only if {source} was trained on ImageNet-1k"
    else:
        note = None
    return Predictions(top, random_weights, note)


# -- Grad-CAM --------------------------------------------------------------------------


@dataclass
class GradCam:
    """Where the evidence for one class sits in one layer (Selvaraju et al. 2017).

    Attributes:
        layer: The layer the map comes from.
        class_index: The class explained.
        score: Its logit; probability: its softmax probability.
        cam: (h, w) at the layer's resolution, in [0, 1]; all zeros where no evidence is found
            (a flat map), never NaN.
        peak: The largest value before scaling to [0, 1], 0 for a flat map.
    """

    layer: LayerKey
    class_index: int
    score: float
    probability: float
    cam: Tensor
    peak: float


def default_cam_layer(model: nn.Module) -> str:
    """The last stage ("layer4" in a four-stage network): Grad-CAM's usual choice."""
    stages = [name for name in _modules_by_name(model) if re.fullmatch(r"layer\d+", name)]
    if not stages:
        raise ValueError("this network has no stages named layer1, layer2, ...; name a layer")
    return max(stages, key=lambda name: int(name[5:]))


def grad_cam(
    model: nn.Module,
    x: Tensor,
    layer: str | LayerKey | None = None,
    class_index: int | None = None,
) -> GradCam:
    """Grad-CAM of one image for one class at any layer with a map (a stage, a block, a conv).

    The layer's output is detached and re-entered as a fresh tensor that requires a gradient,
    and a copy of it continues the forward pass. So it works whatever the parameters'
    `requires_grad`, with in-place ReLUs after the layer (the copy is what they modify), and
    inside `torch.inference_mode()`; no module backward hook is used.

    Args:
        model: The network; eval mode is used and the mode restored.
        x: One image, (1, C, H, W).
        layer: The layer; None takes the last stage.
        class_index: The class to explain; None takes the most probable.
    """
    key = parse_layer(layer if layer is not None else default_cam_layer(model))
    module = _resolve(model, [key])[key]
    held: dict[str, Tensor] = {}
    grad_was_enabled = torch.is_grad_enabled()

    def reenter(_: int, output: Any) -> Tensor:
        if not isinstance(output, Tensor) or output.dim() != 4:
            raise ValueError(f"{layer_label(key)} has no feature map to explain")
        # Everything before the layer ran without a graph; from here on, record one.
        torch.set_grad_enabled(True)
        leaf = output.detach().requires_grad_(True)
        held["maps"] = leaf
        return leaf.clone()

    with (
        _guarded_pass(model, x, "Grad-CAM", backward=True),
        torch.inference_mode(False),
        _eval_with_hooks(model) as handles,
    ):
        handles.append(module.register_forward_hook(_counting_hook({key[1]}, reenter)))
        image = _input_on(model, x).clone()  # an inference-mode tensor cannot enter a graph
        try:
            with torch.no_grad():
                logits = model(image)
        finally:
            torch.set_grad_enabled(grad_was_enabled)
        if "maps" not in held:
            raise ValueError(f"{layer_label(key)} was not called in this network's forward pass")
        if not bool(torch.isfinite(logits).all()):
            # Every class's score, and so its gradient, is then meaningless: no map to show.
            what = "NaN" if bool(torch.isnan(logits).any()) else "infinite"
            raise ValueError(
                f"the network's outputs are not finite ({what}); the weights are broken"
            )
        chosen = int(logits[0].argmax()) if class_index is None else class_index
        if isinstance(chosen, bool) or not 0 <= chosen < logits.shape[1]:
            raise ValueError(
                f"class {class_index} does not exist; this network's classes are 0 to "
                f"{logits.shape[1] - 1}"
            )
        with torch.enable_grad():  # the caller may be inside no_grad
            score = logits[0, chosen]
        maps = held["maps"]
        if score.requires_grad:
            (grads,) = torch.autograd.grad(score, maps, allow_unused=True, materialize_grads=True)
        else:
            grads = torch.zeros_like(maps)

    with torch.no_grad():
        weights = grads.float().mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1)
        cam = torch.relu((weights * maps.detach().float()).sum(1))[0].nan_to_num(0.0)
        peak = float(cam.max()) if cam.numel() else 0.0
        if not peak > 0 or peak == float("inf"):
            # A flat map (no gradient reaches the layer, or no positive evidence) is zeros.
            peak, cam = 0.0, torch.zeros_like(cam)
        else:
            cam = cam / peak
        probability = torch.softmax(logits.detach().float()[0], 0)[chosen].item()
    return GradCam(key, chosen, float(score.detach()), probability, cam.cpu(), peak)


# -- effective receptive field ---------------------------------------------------------


class _Stop(Exception):
    """Ends a forward pass once the layer of interest has run."""


@dataclass
class EffectiveField:
    """The input pixels one output position depends on, in theory and in effect.

    Attributes:
        layer: The layer.
        position: (row, column) of the output position.
        heat: (H, W) over the input, in [0, 1]: the absolute input gradient of that position's
            activations (summed over channels), scaled by its maximum (Luo et al. 2016).
        box: The theoretical receptive field as (top, left, bottom, right) input pixels,
            inclusive; it may reach past the image, where the padding is.
        size, jump: The theoretical field's side and the layer's stride, in input pixels.
    """

    layer: LayerKey
    position: tuple[int, int]
    heat: Tensor
    box: tuple[float, float, float, float]
    size: int
    jump: int


def effective_receptive_field(
    model: nn.Module,
    x: Tensor,
    layer: str | LayerKey,
    position: tuple[int, int] | None = None,
) -> EffectiveField:
    """The effective and theoretical receptive field of one output position of a layer.

    Args:
        model: The network (eval mode is used and the mode restored).
        x: One image, (1, C, H, W).
        layer: A layer with a feature map.
        position: (row, column) in the layer's map; None takes the centre.
    """
    from resnet_viz.analysis import analyze

    key = parse_layer(layer)
    module = _resolve(model, [key])[key]
    held: dict[str, Tensor] = {}

    def stop(_: int, output: Any) -> None:
        held["out"] = output
        raise _Stop

    with (
        _guarded_pass(model, x, "the effective receptive field", backward=True),
        torch.inference_mode(False),
        torch.enable_grad(),
        _eval_with_hooks(model) as handles,
    ):
        handles.append(module.register_forward_hook(_counting_hook({key[1]}, stop)))
        image = _input_on(model, x).detach().clone().requires_grad_(True)
        try:
            model(image)
        except _Stop:
            pass
        if "out" not in held or held["out"].dim() != 4:
            raise ValueError(f"{layer_label(key)} gives no feature map for this input")
        out = held["out"]
        height, width = out.shape[-2:]
        row, col = position if position is not None else (height // 2, width // 2)
        if not (0 <= row < height and 0 <= col < width):
            raise ValueError(
                f"position ({row}, {col}) is outside {layer_label(key)}'s {height}x{width} map"
            )
        (grad,) = torch.autograd.grad(out[0, :, row, col].sum(), image)

    heat = grad[0].detach().abs().sum(0).float().cpu()
    peak = heat.max().item()
    heat = heat / peak if peak > 0 else torch.zeros_like(heat)

    with warnings.catch_warnings():
        # Only the box is wanted here; small maps are the caller's to warn about.
        warnings.simplefilter("ignore")
        record = analyze(model, input_size=tuple(x.shape[-2:])).find(*key)
    size, jump, start = record.receptive_field, record.jump, record.rf_start
    if size is None or jump is None or start is None:
        raise ValueError(f"{layer_label(key)} has no receptive field to draw")
    half = (size - 1) / 2
    centre_row, centre_col = start + row * jump, start + col * jump
    box = (centre_row - half, centre_col - half, centre_row + half, centre_col + half)
    return EffectiveField(key, (row, col), heat, box, size, jump)


__all__ = [
    "Capture",
    "ChannelStats",
    "EffectiveField",
    "FeatureGrid",
    "GradCam",
    "LayerKey",
    "Prediction",
    "Predictions",
    "ResidualAnatomy",
    "capture",
    "channel_stats",
    "default_cam_layer",
    "effective_receptive_field",
    "feature_grid",
    "grad_cam",
    "layer_label",
    "leaf_layers",
    "normalise_maps",
    "parse_layer",
    "residual_anatomy",
    "residual_response_std",
    "tensor_stats",
    "top_channels",
    "top_predictions",
]
