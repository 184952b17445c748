"""Gradient flow at initialisation, and the spread of layer responses (He et al. 2015, Fig. 7).

"Skip connections fix vanishing gradients" is half the story. With BatchNorm the gradients of a
deep plain network do not vanish (He et al. 2015, section 4.1): they grow toward the input, by
orders of magnitude at 110 layers, while the residual twin's stay within a small factor. Without
normalisation and with Kaiming's initialisation neither explodes (README, "Gradient lab", has
the measured table). `gradient_flow` measures this for any network: one forward and backward
pass in training mode on a fixed batch.

Limitations: everything here is measured at one batch and one random initialisation; the
numbers change with the seed (the direction of the effect does not, see tests/test_gradients.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from resnet_viz.blocks import ResidualBlock
from resnet_viz.config import ResNetConfig
from resnet_viz.model import build_model
from resnet_viz.presets import describe
from resnet_viz.shapes_data import make_shapes

logger = logging.getLogger(__name__)

# The biggest batch the lab accepts: four times the paper's CIFAR batch of 64.
MAX_BATCH = 256


@dataclass(frozen=True)
class LayerGradient:
    """Gradient norms of one weighted layer.

    Attributes:
        name: The module's name in the network, e.g. "layer2.0.conv1".
        kind: "conv" or "fc".
        main_path: False for a projection shortcut's conv or a squeeze-and-excitation unit's,
            which are not layers of the paper's depth count.
        weight_grad_norm: L2 norm of d(loss)/d(weight) over the whole weight tensor.
        output_grad_norm: L2 norm of d(loss)/d(output) over the whole batch.
    """

    name: str
    kind: str
    main_path: bool
    weight_grad_norm: float
    output_grad_norm: float


@dataclass(frozen=True)
class GradientFlow:
    """The gradient norms of every weighted layer of one network, in forward order."""

    model: str
    config: ResNetConfig | None  # None for a network that is not a resnet_viz ResNet
    layers: list[LayerGradient]
    loss: float

    @property
    def first_last_ratio(self) -> float:
        """First conv's weight-gradient norm over the last conv's (main path only).

        Far above 1: gradients grow toward the input; far below 1: they vanish toward it.
        """
        convs = [layer for layer in self.layers if layer.kind == "conv" and layer.main_path]
        first, last = convs[0].weight_grad_norm, convs[-1].weight_grad_norm
        if last == 0.0:
            # The signal died on the way forward (PyTorch's default init does this to a plain
            # 110-layer net without normalisation): no gradient reaches the last conv's weights.
            return math.inf if first > 0.0 else math.nan
        return first / last

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "loss": self.loss,
            # JSON has no infinity: a ratio with nothing below it is null there.
            "first_last_ratio": ratio if math.isfinite(ratio := self.first_last_ratio) else None,
            "layers": [dataclasses.asdict(layer) for layer in self.layers],
        }


def _weighted_layers(model: nn.Module) -> dict[nn.Module, str]:
    return {
        module: name
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear))
    }


@contextlib.contextmanager
def _training_without_side_effects(model: nn.Module) -> Iterator[None]:
    """Train mode for one pass, then the model exactly as it was: mode and BatchNorm statistics.

    Training mode updates BatchNorm's running statistics; a model handed in (perhaps a cached
    one that other views share) must not change, so its buffers are copied and put back.
    """
    modes = {module: module.training for module in model.modules()}
    buffers = {name: tensor.clone() for name, tensor in model.named_buffers()}
    try:
        model.train()
        yield
    finally:
        for module, mode in modes.items():
            module.train(mode)
        with torch.no_grad():
            for name, tensor in model.named_buffers():
                tensor.copy_(buffers[name])


def gradient_flow(model: nn.Module, x: Tensor, labels: Tensor, name: str = "") -> GradientFlow:
    """Per-layer gradient norms of the cross-entropy loss for one batch, in training mode.

    The gradients are computed with `torch.autograd.grad`, so no parameter's `.grad` is
    touched; hooks are removed and the mode and BatchNorm statistics restored afterwards.

    Args:
        model: A network whose weighted layers are `nn.Conv2d` and `nn.Linear` modules.
        x: Images (N, C, H, W) on the model's device.
        labels: Class indices (N,).
        name: What to call the network in the result.

    Returns:
        One entry per weighted layer in the order the forward pass runs them.
    """
    layers = _weighted_layers(model)
    outputs: list[tuple[nn.Module, Tensor]] = []

    def record(module: nn.Module, inputs: object, output: Tensor) -> None:
        outputs.append((module, output))

    handles = [module.register_forward_hook(record) for module in layers]
    try:
        with _training_without_side_effects(model), torch.enable_grad():
            loss = F.cross_entropy(model(x), labels)
            # Conv2d and Linear weights are always tensors (parameters).
            weights: list[Tensor] = [module.weight for module, _ in outputs]  # type: ignore[misc]
            grads = torch.autograd.grad(loss, weights + [out for _, out in outputs])
    finally:
        for handle in handles:
            handle.remove()

    weight_grads, output_grads = grads[: len(outputs)], grads[len(outputs) :]
    result = []
    for (module, _), weight_grad, output_grad in zip(
        outputs, weight_grads, output_grads, strict=True
    ):
        layer_name = layers[module]
        result.append(
            LayerGradient(
                name=layer_name,
                kind="fc" if isinstance(module, nn.Linear) else "conv",
                main_path=".downsample" not in layer_name and ".se." not in layer_name,
                weight_grad_norm=weight_grad.norm().item(),
                output_grad_norm=output_grad.norm().item(),
            )
        )
    config = getattr(model, "config", None)
    config = config if isinstance(config, ResNetConfig) else None
    return GradientFlow(name, config, result, loss.item())


def default_batch(config: ResNetConfig) -> int:
    """64 images for CIFAR nets (the paper's batch); 8 at 224 pixels keeps ImageNet nets quick."""
    return 64 if config.stem == "cifar" else 8


def image_size(config: ResNetConfig) -> int:
    return 32 if config.stem == "cifar" else 224


def lab_batch(config: ResNetConfig, batch: int, seed: int) -> tuple[Tensor, Tensor]:
    """The fixed batch the lab measures with: generated shapes at the network's input size."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a whole number from 0 to 2**63 - 1, got {seed!r}")
    if not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"batch must be between 1 and {MAX_BATCH}, got {batch}")
    if config.in_channels != 3:
        raise ValueError(
            f"the gradient lab feeds colour images (3 channels); this network takes "
            f"{config.in_channels}; use in_channels=3"
        )
    images, labels = make_shapes(batch, seed=seed, size=image_size(config))
    return images, labels % config.num_classes


def measure(config: ResNetConfig, batch: int | None = None, seed: int = 0) -> GradientFlow:
    """Build `config` from `seed` and measure its gradient flow on the lab batch."""
    batch = batch or default_batch(config)
    x, labels = lab_batch(config, batch, seed)
    model = build_model(config, seed=seed)
    flow = gradient_flow(model, x, labels, name=describe(config))
    logger.info("%s: first/last gradient ratio %.3g", flow.model, flow.first_last_ratio)
    return flow


def variants(config: ResNetConfig) -> dict[str, ResNetConfig]:
    """The network, its plain (or residual) twin, and both without normalisation.

    Keys: "residual, BN", "plain, BN", "residual, no norm", "plain, no norm". zero_init_residual
    is switched off, as a plain net cannot have it and the comparison should differ in one
    thing only.

    NOTE: the no-norm nets keep the Kaiming initialisation (fan_out, ReLU gain). The usual
    safe start for unnormalised residual nets, zeroing the last layer of each branch (Fixup,
    SkipInit), would make every branch layer before it receive exactly zero gradient at
    initialisation, which is what this lab is meant to show, and has no plain counterpart.
    """
    base = config.replace(zero_init_residual=False)
    return {
        "residual, BN": base.replace(residual=True, norm="batch"),
        "plain, BN": base.replace(residual=False, norm="batch"),
        "residual, no norm": base.replace(residual=True, norm="none"),
        "plain, no norm": base.replace(residual=False, norm="none"),
    }


# -- Fig. 7: spread of layer responses -------------------------------------------------


def _response_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The module whose output is each 3x3 conv's response after BN, before ReLU or addition."""
    found = []
    for block_name, block in model.named_modules():
        if not isinstance(block, ResidualBlock):
            continue
        for index in (1, 2, 3):
            conv = getattr(block, f"conv{index}", None)
            if not isinstance(conv, nn.Conv2d) or conv.kernel_size != (3, 3):
                continue
            norm = getattr(block, f"bn{index}", None)
            # A pre-activation block normalises a conv's output in the *next* layer's BN, so
            # the conv output itself is its response there.
            preact = "PreAct" in type(block).__name__
            module = norm if isinstance(norm, nn.Module) and not preact else conv
            found.append((f"{block_name}.conv{index}", module))
    return found


def response_std(model: nn.Module, x: Tensor) -> list[tuple[str, float]]:
    """Standard deviation of every 3x3 layer's response, in depth order (He et al. 2015, Fig. 7).

    The response is the layer's output after BatchNorm and before the ReLU or the addition,
    as in the paper, measured in eval mode on `x`. The paper measured trained networks; at
    initialisation BatchNorm's running statistics are still 0 and 1, so measure after training
    (the lab uses the networks of its training race). The model's mode is restored afterwards.
    """
    spreads: dict[str, float] = {}
    handles = []
    mode = model.training
    try:
        for name, module in _response_layers(model):

            def hook(_: nn.Module, inputs: object, output: Tensor, name: str = name) -> None:
                spreads[name] = output.float().std(correction=0).item()

            handles.append(module.register_forward_hook(hook))
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(mode)
    return [(name, spreads[name]) for name, _ in _response_layers(model) if name in spreads]
