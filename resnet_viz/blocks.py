"""Residual blocks and shortcuts: the building units that `model.py` stacks into stages.

Attribute names follow torchvision (`conv1`, `bn1`, `relu`, `downsample`, ...) so that
state dicts of torchvision and timm ResNets load unchanged; timm's SE unit is `se.fc1`/`se.fc2`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def conv3x3(
    in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1
) -> nn.Conv2d:
    """3x3 convolution whose padding keeps the size at stride 1, whatever the dilation."""
    return nn.Conv2d(
        in_planes,
        out_planes,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        groups=groups,
        bias=False,
        dilation=dilation,
    )


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def batch_norm(channels: int, enabled: bool = True) -> nn.BatchNorm2d | None:
    """A BatchNorm layer, or None for a network built with `norm="none"`.

    None rather than nn.Identity, so that a network without normalisation has no norm modules
    at all: its diagram, parameter counts and paper table show what it really contains.
    """
    return nn.BatchNorm2d(channels) if enabled else None


def _normed(norm: nn.Module | None, x: Tensor) -> Tensor:
    return x if norm is None else norm(x)


class ZeroPadShortcut(nn.Module):
    """Option A of He et al. 2015: subsample the identity and pad zero channels on.

    It holds no parameters, which is why the paper's CIFAR ResNets have exactly as many
    parameters as their plain twins.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        # Taking every stride-th pixel gives ceil(H / stride) rows, as the strided 3x3 conv does.
        x = x[:, :, :: self.stride, :: self.stride]

        # NOTE: the new channels go after the old ones. Some CIFAR code splits them before and
        # after; shapes and parameter counts are the same either way.
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class SqueezeExcitation(nn.Module):
    """Rescale each channel by a gate computed from the global average of all channels.

    Hu et al. 2018, with timm's sizing: the bottleneck of the gate has channels / 16 units,
    rounded to a multiple of 8 and never fewer than 8.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        reduced = max(8, int(channels / 16 + 4) // 8 * 8)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, reduced, kernel_size=1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(reduced, channels, kernel_size=1)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        # (N, C, H, W) -> (N, C, 1, 1): one weight in (0, 1) per channel
        scale = self.gate(self.fc2(self.relu(self.fc1(self.avgpool(x)))))
        return x * scale


def make_shortcut(
    kind: str, in_channels: int, out_channels: int, stride: int, with_norm: bool = True
) -> nn.Module | None:
    """The shortcut branch of one block, or None for a plain identity.

    Args:
        kind: "A", "B", "C" or "D", as in `ResNetConfig.shortcut`.
        in_channels: Channels entering the block.
        out_channels: Channels the block outputs.
        stride: Stride of the block.
        with_norm: Follow a projection by BatchNorm. Pre-activation blocks project an input
            that is already normalised, so they leave it out.
    """
    same_shape = stride == 1 and in_channels == out_channels
    if kind == "A":
        return None if same_shape else ZeroPadShortcut(in_channels, out_channels, stride)
    if same_shape and kind != "C":
        return None

    norm: list[nn.Module] = [nn.BatchNorm2d(out_channels)] if with_norm else []
    if kind == "D":
        # Average first so the 1x1 conv sees every pixel instead of one in four (Bag of Tricks,
        # He et al. 2019). Index 0 stays even when there is no stride, so keys are always
        # downsample.1 and downsample.2, as in timm.
        pool: nn.Module = (
            nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
            if stride > 1
            else nn.Identity()
        )
        return nn.Sequential(pool, conv1x1(in_channels, out_channels), *norm)
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), *norm)


class ResidualBlock(nn.Module):
    """What the model needs of every block: its expansion and the end of its branch."""

    expansion = 1

    def last_branch_layer(self) -> nn.Conv2d | nn.BatchNorm2d:
        """The layer that `zero_init_residual` zeroes, so that the block starts as identity.

        Without normalisation that is the branch's last conv.
        """
        raise NotImplementedError(f"{type(self).__name__} must say where its branch ends")


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions and a shortcut: the block of ResNet-18 and ResNet-34."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        dilation: int = 1,
        first_dilation: int | None = None,
        se: bool = False,
        residual: bool = True,
        norm: bool = True,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride, dilation=first_dilation or dilation)
        self.bn1 = batch_norm(planes, norm)
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.bn2 = batch_norm(planes, norm)
        self.se = SqueezeExcitation(planes) if se else None
        # NOTE: torchvision's ReLU works in place. Ours does not, so that a captured output of
        # a BatchNorm is not overwritten by the ReLU that follows it; the numbers are the same.
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.residual = residual
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(_normed(self.bn1, self.conv1(x)))
        out = _normed(self.bn2, self.conv2(out))
        if self.se is not None:
            out = self.se(out)

        if not self.residual:
            return self.relu(out)

        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)

    def last_branch_layer(self) -> nn.Conv2d | nn.BatchNorm2d:
        return self.conv2 if self.bn2 is None else self.bn2


class Bottleneck(ResidualBlock):
    """1x1 reduce, 3x3, 1x1 expand (x4), and a shortcut: the block of ResNet-50 and deeper.

    NOTE: by default the stride sits on the 3x3 conv, as in torchvision ("ResNet v1.5"); the
    2015 paper put it on the first 1x1 (`stride_in_1x1=True`, "v1"). v1.5 is slightly more
    accurate and costs slightly more, since the 1x1 then runs at full resolution.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        first_dilation: int | None = None,
        stride_in_1x1: bool = False,
        se: bool = False,
        residual: bool = True,
        norm: bool = True,
    ) -> None:
        super().__init__()
        width = planes * base_width // 64 * groups
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(inplanes, width, stride_1x1)
        self.bn1 = batch_norm(width, norm)
        self.conv2 = conv3x3(width, width, stride_3x3, groups, first_dilation or dilation)
        self.bn2 = batch_norm(width, norm)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = batch_norm(planes * self.expansion, norm)
        self.se = SqueezeExcitation(planes * self.expansion) if se else None
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.residual = residual
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(_normed(self.bn1, self.conv1(x)))
        out = self.relu(_normed(self.bn2, self.conv2(out)))
        out = _normed(self.bn3, self.conv3(out))
        if self.se is not None:
            out = self.se(out)

        if not self.residual:
            return self.relu(out)

        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)

    def last_branch_layer(self) -> nn.Conv2d | nn.BatchNorm2d:
        return self.conv3 if self.bn3 is None else self.bn3


class PreActBasicBlock(ResidualBlock):
    """BN, ReLU, 3x3 conv, twice, and a clean identity path (He et al. 2016).

    Nothing follows the addition, so the identity runs unchanged from block to block. A
    projection shortcut reads the normalised input, as in the paper's code.
    """

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        dilation: int = 1,
        first_dilation: int | None = None,
        se: bool = False,
        residual: bool = True,
        norm: bool = True,
    ) -> None:
        super().__init__()
        self.bn1 = batch_norm(inplanes, norm)
        self.conv1 = conv3x3(inplanes, planes, stride, dilation=first_dilation or dilation)
        self.bn2 = batch_norm(planes, norm)
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.se = SqueezeExcitation(planes) if se else None
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.residual = residual
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        activated = self.relu(_normed(self.bn1, x))
        out = self.conv1(activated)
        out = self.conv2(self.relu(_normed(self.bn2, out)))
        if self.se is not None:
            out = self.se(out)

        if not self.residual:
            return out

        identity = x if self.downsample is None else self.downsample(activated)
        return out + identity

    def last_branch_layer(self) -> nn.Conv2d | nn.BatchNorm2d:
        # There is no BatchNorm at the end of a pre-activation branch; the last conv is zeroed.
        return self.conv2


class PreActBottleneck(ResidualBlock):
    """BN, ReLU, conv for each of 1x1, 3x3, 1x1 (x4), and a clean identity path."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        first_dilation: int | None = None,
        stride_in_1x1: bool = False,
        se: bool = False,
        residual: bool = True,
        norm: bool = True,
    ) -> None:
        super().__init__()
        width = planes * base_width // 64 * groups
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.bn1 = batch_norm(inplanes, norm)
        self.conv1 = conv1x1(inplanes, width, stride_1x1)
        self.bn2 = batch_norm(width, norm)
        self.conv2 = conv3x3(width, width, stride_3x3, groups, first_dilation or dilation)
        self.bn3 = batch_norm(width, norm)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.se = SqueezeExcitation(planes * self.expansion) if se else None
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.residual = residual
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        activated = self.relu(_normed(self.bn1, x))
        out = self.conv1(activated)
        out = self.conv2(self.relu(_normed(self.bn2, out)))
        out = self.conv3(self.relu(_normed(self.bn3, out)))
        if self.se is not None:
            out = self.se(out)

        if not self.residual:
            return out

        identity = x if self.downsample is None else self.downsample(activated)
        return out + identity

    def last_branch_layer(self) -> nn.Conv2d | nn.BatchNorm2d:
        return self.conv3


BLOCKS: dict[tuple[str, bool], type[ResidualBlock]] = {
    ("basic", False): BasicBlock,
    ("bottleneck", False): Bottleneck,
    ("basic", True): PreActBasicBlock,
    ("bottleneck", True): PreActBottleneck,
}
