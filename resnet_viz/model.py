"""The ResNet module: stem, then stages `layer1`..`layerN` of residual blocks, then the head.

One class builds every variant that a `ResNetConfig` describes. `build_model` is the entry point;
on the `meta` device it builds the full structure without allocating any weights.
"""

from __future__ import annotations

import logging
import threading
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from resnet_viz.blocks import BLOCKS, ResidualBlock, batch_norm, conv3x3, make_shortcut
from resnet_viz.config import ResNetConfig
from resnet_viz.devices import check_fits, out_of_memory_as_error, resolve_device
from resnet_viz.presets import get_preset, preset_name

logger = logging.getLogger(__name__)


class ResNet(nn.Module):
    """A ResNet built from a config; torchvision's attribute names, so its weights load."""

    def __init__(self, config: ResNetConfig, init_weights: bool = True) -> None:
        super().__init__()
        self.config = config
        self.normed = config.norm == "batch"
        # Where the weights came from (a file name, or torchvision's weights name); None while
        # they are the random initialisation, so that every view can say so.
        self.weights_source: str | None = None
        self._make_stem()

        self.inplanes = config.stem_width
        self.dilation = 1
        self.stage_names = [f"layer{index + 1}" for index in range(config.num_stages)]
        for index, name in enumerate(self.stage_names):
            self.add_module(name, self._make_layer(index))

        # A pre-activation network ends its last block on an addition; normalise and activate
        # once more before pooling, as He et al. 2016 do.
        self.final_bn = batch_norm(config.out_channels, config.preact and self.normed)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(config.out_channels, config.num_classes)

        if init_weights:
            self._init_weights()

    def _make_stem(self) -> None:
        c = self.config
        if c.stem == "imagenet":
            self.conv1: nn.Module = nn.Conv2d(
                c.in_channels, c.stem_width, kernel_size=7, stride=2, padding=3, bias=False
            )
        elif c.stem == "cifar":
            self.conv1 = conv3x3(c.in_channels, c.stem_width)
        else:
            # Three 3x3 convs see as far as one 7x7 for less compute (Bag of Tricks).
            if c.stem == "deep":
                inner = (c.stem_width // 2, c.stem_width // 2)
            else:
                inner = (c.stem_width * 3 // 8, c.stem_width // 2)

            def norm(channels: int) -> list[nn.Module]:
                return [nn.BatchNorm2d(channels)] if self.normed else []

            self.conv1 = nn.Sequential(
                conv3x3(c.in_channels, inner[0], stride=2),
                *norm(inner[0]),
                nn.ReLU(),
                conv3x3(inner[0], inner[1]),
                *norm(inner[1]),
                nn.ReLU(),
                conv3x3(inner[1], c.stem_width),
            )

        # The CIFAR pre-activation nets hand the bare conv output to the first block, which
        # normalises and activates it itself.
        self.stem_activation = not (c.preact and c.stem == "cifar")
        self.bn1 = batch_norm(c.stem_width, self.stem_activation and self.normed)
        self.relu = nn.ReLU()
        self.maxpool = (
            None if c.stem == "cifar" else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        )

    def _make_layer(self, stage_index: int) -> nn.Sequential:
        c = self.config
        block = BLOCKS[(c.block, c.preact)]
        planes = c.widths[stage_index]
        out_channels = planes * c.expansion
        stride = c.stage_strides[stage_index]
        previous_dilation = self.dilation
        if stage_index + 1 in c.dilated_stages:
            self.dilation *= 2

        extra = {}
        if c.block == "bottleneck":
            extra = {
                "groups": c.groups,
                "base_width": c.width_per_group,
                "stride_in_1x1": c.stride_in_1x1,
            }

        blocks = []
        for block_index in range(c.blocks_per_stage[stage_index]):
            # Only the first block of a stage changes the shape; the rest keep it.
            block_stride = stride if block_index == 0 else 1
            downsample = None
            if c.residual:
                downsample = make_shortcut(
                    c.shortcut,
                    self.inplanes,
                    out_channels,
                    block_stride,
                    with_norm=self.normed and not c.preact,
                )
            blocks.append(
                block(
                    self.inplanes,
                    planes,
                    block_stride,
                    downsample,
                    dilation=self.dilation,
                    first_dilation=previous_dilation if block_index == 0 else self.dilation,
                    se=c.se,
                    residual=c.residual,
                    norm=self.normed,
                    **extra,
                )
            )
            self.inplanes = out_channels
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

        # Each block then starts as the identity, which helps very deep nets train (Goyal et
        # al. 2017, arXiv:1706.02677).
        if self.config.zero_init_residual:
            for module in self.modules():
                if isinstance(module, ResidualBlock):
                    nn.init.zeros_(module.last_branch_layer().weight)

    def stages(self) -> list[nn.Sequential]:
        """The stages in order: `layer1`, `layer2`, ..."""
        return [getattr(self, name) for name in self.stage_names]

    def forward_features(self, x: Tensor) -> Tensor:
        """The feature maps of the last stage, (N, out_channels, H / output_stride, ...)."""
        x = self.conv1(x)
        if self.bn1 is not None:
            x = self.bn1(x)
        if self.stem_activation:
            x = self.relu(x)
        if self.maxpool is not None:
            x = self.maxpool(x)

        for stage in self.stages():
            x = stage(x)

        if self.final_bn is not None:
            x = self.final_bn(x)
        if self.config.preact:
            x = self.relu(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        x = self.forward_features(x)

        x = self.avgpool(x)
        x = torch.flatten(x, 1)  # (N, C, 1, 1) -> (N, C)
        return self.fc(x)


def resolve_config(config: ResNetConfig | str) -> ResNetConfig:
    """A config from a config or a preset name."""
    if isinstance(config, ResNetConfig):
        return config
    if isinstance(config, str):
        return get_preset(config)
    raise ValueError(f"expected a ResNetConfig or a preset name, got {type(config).__name__}")


def count_parameters(model: nn.Module) -> int:
    """Learnable parameters, each counted once even where a module is shared."""
    return sum(p.numel() for p in model.parameters())


_BUILDING = threading.Lock()


def build_model(
    config: ResNetConfig | str, device: str | torch.device = "cpu", seed: int | None = None
) -> ResNet:
    """Build the network that `config` (or a preset name) describes.

    Args:
        config: A `ResNetConfig` or the name of a preset, such as "resnet50".
        device: Where the weights live. "meta" builds the whole structure with no weights at
            all, which is enough for shapes, counts and diagrams.
        seed: Draw the random initialisation from this seed, the same on every run and in
            the app and the command line alike, without touching the global random state.
            None draws from the global state.

    Returns:
        The model, randomly initialised as torchvision does, in eval mode: everything in this
        project inspects networks rather than trains them. Call `.train()` to train it.
    """
    config = resolve_config(config)
    target = resolve_device(device)
    if target.type != "meta":
        # A skeleton on meta costs nothing and tells how much the real one needs.
        with torch.device("meta"):
            skeleton = ResNet(config, init_weights=False)
        needed = sum(t.numel() * t.element_size() for t in skeleton.state_dict().values())
        check_fits(
            needed,
            target,
            f"building {preset_name(config) or 'this network'}",
            "choose fewer or narrower stages, or build it on device 'meta', which needs no "
            "memory, for shapes and counts",
        )
    with (
        # One build at a time: the initialisation draws from PyTorch's global generator, so
        # two threads building at once (two sessions of the app) would take each other's
        # random numbers, and a seeded network would not be the same on every run.
        # LIMITATION: other code drawing from the global generator in another thread at the
        # same time still can; the app's threads draw only here.
        _BUILDING if target.type != "meta" else nullcontext(),
        out_of_memory_as_error(target, f"building {preset_name(config) or 'this network'}"),
        torch.random.fork_rng(devices=[], enabled=seed is not None),
        torch.device(target),
    ):
        if seed is not None:
            torch.manual_seed(seed)
        # Meta tensors hold no values, so there is nothing to initialise.
        model = ResNet(config, init_weights=target.type != "meta")
    model.eval()
    logger.info(
        "built %s on %s: %s parameters",
        preset_name(config) or "custom ResNet",
        target,
        f"{count_parameters(model):,}",
    )
    return model
