"""The description of a ResNet variant: a frozen, validated dataclass and its text forms.

A `ResNetConfig` holds every architectural choice that distinguishes the ResNets of the papers
and model zoos. It is checked when it is made, so a config that exists can always be built, and
it converts to and from JSON and a short URL-safe token for links to a view.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

BLOCK_TYPES = ("basic", "bottleneck")
STEM_TYPES = ("imagenet", "cifar", "deep", "deep_tiered")
SHORTCUT_TYPES = ("A", "B", "C", "D")
NORM_TYPES = ("batch", "none")

# Output channels of a block are `width * EXPANSION[block]`.
EXPANSION = {"basic": 1, "bottleneck": 4}

# Guards against configurations that would take minutes or gigabytes to build. resnet1202,
# the deepest network of the papers, has 600 blocks.
MAX_TOTAL_BLOCKS = 1000
MAX_WIDTH = 8192
MAX_CLASSES = 100_000
MAX_IN_CHANNELS = 64

# Short keys for the URL token; the order is the order fields appear in a token.
_TOKEN_KEYS = {
    "block": "b",
    "blocks_per_stage": "n",
    "widths": "w",
    "groups": "g",
    "width_per_group": "gw",
    "stem": "s",
    "stem_width": "sw",
    "stride_in_1x1": "v1",
    "shortcut": "sc",
    "preact": "pre",
    "se": "se",
    "residual": "res",
    "norm": "nm",
    "dilated_stages": "dil",
    "zero_init_residual": "zi",
    "in_channels": "in",
    "num_classes": "nc",
}
_TOKEN_FIELDS = {short: name for name, short in _TOKEN_KEYS.items()}
# Long enough for the largest valid configuration (1000 one-block stages of width 8192).
_MAX_TOKEN_LENGTH = 20_000


@dataclass(frozen=True)
class ResNetConfig:
    """Every choice that defines a ResNet variant.

    The defaults describe torchvision's resnet18. Stages are numbered from 1 in field values, as
    in the attribute names `layer1`, `layer2`, ... and in the paper's rows conv2_x, conv3_x, ...
    (stage 1 is conv2_x).

    Attributes:
        block: "basic" (two 3x3 convs) or "bottleneck" (1x1, 3x3, 1x1; expansion 4).
        blocks_per_stage: Number of blocks in each stage; one entry per stage.
        widths: Base width (torchvision's `planes`) of each stage; a block outputs
            `width * expansion` channels.
        groups: Groups of a bottleneck's 3x3 conv (ResNeXt's cardinality).
        width_per_group: Channels per group of that conv at base width 64; a bottleneck's inner
            width is `width * width_per_group / 64 * groups` (64 and 1 give ResNet's).
        stem: "imagenet" (7x7/2 conv and 3x3/2 max pool), "cifar" (3x3/1 conv, no pool),
            "deep" (three 3x3 convs, then max pool) or "deep_tiered" (the same, narrower first).
        stem_width: Channels the stem hands to stage 1. A deep stem's inner convs have half of
            it; a tiered one's have 3/8 and 1/2 of it.
        stride_in_1x1: Put a bottleneck's stride on its first 1x1 conv, as the 2015 paper did
            ("v1"), instead of on its 3x3 conv as torchvision does ("v1.5").
        shortcut: When a block changes shape: "A" identity with strided subsampling and zero
            channels padded on (no parameters), "B" 1x1 projection, "C" 1x1 projection on every
            block, "D" 2x2 average pool then 1x1 projection.
        preact: Pre-activation blocks (BN and ReLU before each conv), He et al. 2016.
        se: A squeeze-and-excitation unit at the end of every residual branch.
        residual: Add the shortcut; False gives the paper's "plain" twin with no shortcuts.
        norm: "batch" (BatchNorm after each conv, as in every ResNet paper) or "none" (no
            normalisation modules at all; the gradient lab's variant for showing what
            BatchNorm does to gradient flow, not a net anyone trains deep).
        dilated_stages: Stages whose stride is replaced by dilation (e.g. (4,) for output stride
            16, (3, 4) for 8); they must be the last stages.
        zero_init_residual: Initialise the last BatchNorm of each residual branch to zero, so
            that each block starts as the identity.
        in_channels: Channels of the input image.
        num_classes: Outputs of the final fully connected layer.
    """

    block: str = "basic"
    blocks_per_stage: tuple[int, ...] = (2, 2, 2, 2)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    groups: int = 1
    width_per_group: int = 64
    stem: str = "imagenet"
    stem_width: int = 64
    stride_in_1x1: bool = False
    shortcut: str = "B"
    preact: bool = False
    se: bool = False
    residual: bool = True
    norm: str = "batch"
    dilated_stages: tuple[int, ...] = field(default=())
    zero_init_residual: bool = False
    in_channels: int = 3
    num_classes: int = 1000

    def __post_init__(self) -> None:
        # Lists arrive from JSON and from users; store tuples so the config stays hashable.
        for name in ("blocks_per_stage", "widths", "dilated_stages"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        _validate(self)

    # -- derived facts -------------------------------------------------------------------

    @property
    def num_stages(self) -> int:
        return len(self.blocks_per_stage)

    @property
    def expansion(self) -> int:
        return EXPANSION[self.block]

    @property
    def stem_stride(self) -> int:
        """Downsampling factor of the stem: 4 with a max pool, 1 for the CIFAR stem."""
        return 1 if self.stem == "cifar" else 4

    @property
    def stage_strides(self) -> tuple[int, ...]:
        """Stride of each stage's first block after dilation has replaced some strides."""
        return tuple(
            1 if index == 0 or index + 1 in self.dilated_stages else 2
            for index in range(self.num_stages)
        )

    @property
    def output_stride(self) -> int:
        """Ratio of input size to the last stage's feature-map size."""
        return self.stem_stride * math.prod(self.stage_strides)

    @property
    def out_channels(self) -> int:
        """Channels of the last stage, which the classifier reads."""
        return self.widths[-1] * self.expansion

    @property
    def depth(self) -> int:
        """Weighted layers on the main path, counted as the papers count them (50 for ResNet-50)."""
        stem_convs = 3 if self.stem in ("deep", "deep_tiered") else 1
        convs_per_block = 3 if self.block == "bottleneck" else 2
        return stem_convs + convs_per_block * sum(self.blocks_per_stage) + 1

    def bottleneck_width(self, width: int) -> int:
        """Inner width of a bottleneck in a stage of base width `width`."""
        return width * self.width_per_group // 64 * self.groups

    def stage_in_channels(self) -> tuple[int, ...]:
        """Channels entering each stage."""
        channels = [self.stem_width]
        for width in self.widths[:-1]:
            channels.append(width * self.expansion)
        return tuple(channels)

    # -- text forms ----------------------------------------------------------------------

    def replace(self, **changes: Any) -> ResNetConfig:
        """A copy with some fields changed, validated like any new config."""
        _check_known_fields(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field, with tuples as lists: the JSON form."""
        out = dataclasses.asdict(self)
        for name in ("blocks_per_stage", "widths", "dilated_stages"):
            out[name] = list(out[name])
        return out

    @classmethod
    def from_dict(cls, data: Any) -> ResNetConfig:
        """Build a config from a dict; missing fields take their defaults.

        A dict with a "preset" key starts from that preset and applies the other keys to it.
        """
        if not isinstance(data, dict):
            raise ValueError(
                f"a configuration must be a JSON object of fields, got {type(data).__name__}"
            )
        data = dict(data)
        base = cls()
        if "preset" in data:
            from resnet_viz.presets import get_preset

            base = get_preset(data.pop("preset"))
        _check_known_fields(data)  # before **data, which needs text keys
        return base.replace(**data)

    def to_json(self) -> str:
        """The JSON form, one field per line and lists kept on one line, for people to edit."""
        fields = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in self.to_dict().items()]
        return "{\n" + ",\n".join(fields) + "\n}"

    @classmethod
    def from_json(cls, text: str) -> ResNetConfig:
        if not isinstance(text, str):
            raise ValueError(f"configuration JSON must be text, got {type(text).__name__}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"configuration is not valid JSON: {err}") from None
        except RecursionError:
            raise ValueError(
                "configuration JSON is nested too deeply; a configuration is one object of "
                "fields whose values are strings, numbers, true/false or lists of numbers"
            ) from None
        return cls.from_dict(data)

    def to_url_token(self) -> str:
        """A short URL-safe form: the closest preset, then the fields that differ from it.

        For example "resnet50" or "resnet50~sc-D~se-1". Every character is one that URLs carry
        without escaping.
        """
        from resnet_viz.presets import nearest_preset

        base_name, changed = nearest_preset(self)
        parts = [base_name]
        for name, short in _TOKEN_KEYS.items():
            if name in changed:
                parts.append(f"{short}-{_encode_value(getattr(self, name))}")
        return "~".join(parts)

    @classmethod
    def from_url_token(cls, token: str) -> ResNetConfig:
        """Inverse of `to_url_token`."""
        from resnet_viz.presets import get_preset

        if not isinstance(token, str) or not token:
            raise ValueError("configuration token is empty; use a preset name such as 'resnet50'")
        if len(token) > _MAX_TOKEN_LENGTH or not re.fullmatch(r"[A-Za-z0-9._~-]+", token):
            raise ValueError(
                f"configuration token {token[:60]!r} is not one this app writes: it has to be at "
                f"most {_MAX_TOKEN_LENGTH:,} characters of letters, digits and . _ ~ -"
            )
        head, *pairs = token.split("~")
        base = get_preset(head)
        changes: dict[str, Any] = {}
        for pair in pairs:
            short, sep, raw = pair.partition("-")
            if not sep or short not in _TOKEN_FIELDS:
                raise ValueError(
                    f"configuration token part {short_repr(pair)} is not KEY-VALUE with a known "
                    "key; "
                    f"known keys: {', '.join(_TOKEN_FIELDS)}"
                )
            name = _TOKEN_FIELDS[short]
            changes[name] = _decode_value(name, raw, getattr(base, name))
        return base.replace(**changes)


def changed_fields(base: ResNetConfig, other: ResNetConfig) -> list[str]:
    """Names of the fields where `other` differs from `base`, in field order."""
    return [
        f.name
        for f in dataclasses.fields(ResNetConfig)
        if getattr(base, f.name) != getattr(other, f.name)
    ]


def _encode_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        # An empty tuple needs a visible mark, or "dil-" would be ambiguous.
        return ".".join(str(v) for v in value) if value else "none"
    return str(value)


def _decode_value(name: str, raw: str, like: Any) -> Any:
    # int() would also take "1_0" and " 1"; a token holds plain digits only.
    numbers = raw.split(".")
    try:
        if isinstance(like, (tuple, int)) and not isinstance(like, bool):
            if raw != "none" and not all(re.fullmatch(r"\d{1,9}", n) for n in numbers):
                raise ValueError
        if isinstance(like, bool):
            if raw not in ("0", "1"):
                raise ValueError
            return raw == "1"
        if isinstance(like, tuple):
            return () if raw == "none" else tuple(int(v) for v in raw.split("."))
        if isinstance(like, int):
            return int(raw)
    except ValueError:
        expected = (
            "0 or 1"
            if isinstance(like, bool)
            else "whole numbers joined by dots, such as 3.4.6.3, or 'none'"
            if isinstance(like, tuple)
            else "a whole number"
        )
        raise ValueError(
            f"configuration token has {name}={short_repr(raw)}; that field takes {expected}"
        ) from None
    return raw


# -- validation --------------------------------------------------------------------------


def short_repr(value: Any) -> str:
    """repr() short enough for a one-line message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"... ({len(text):,} characters)"


def _check_known_fields(changes: dict[Any, Any]) -> None:
    known = {f.name for f in dataclasses.fields(ResNetConfig)}
    unknown = sorted((short_repr(k) for k in changes if k not in known), key=str)
    if unknown:
        raise ValueError(
            f"unknown configuration field(s) {', '.join(unknown)}; "
            f"allowed fields are: {', '.join(sorted(known))} (and 'preset' in JSON)"
        )


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    # bool is an int subclass; True as a width is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"{name} must be an integer, got {short_repr(value)} ({type(value).__name__})"
        )
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, allowed))}, got {short_repr(value)}"
        )


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {short_repr(value)}")


def _check_int_tuple(name: str, value: Any) -> None:
    if not isinstance(value, tuple) or any(
        isinstance(v, bool) or not isinstance(v, int) for v in value
    ):
        raise ValueError(f"{name} must be a list of integers, got {short_repr(value)}")


def _validate(c: ResNetConfig) -> None:
    """Raise ValueError, naming the field, the value and what is allowed, for a bad config."""
    _check_choice("block", c.block, BLOCK_TYPES)
    _check_choice("stem", c.stem, STEM_TYPES)
    _check_choice("shortcut", c.shortcut, SHORTCUT_TYPES)
    _check_choice("norm", c.norm, NORM_TYPES)
    for name in ("stride_in_1x1", "preact", "se", "residual", "zero_init_residual"):
        _check_bool(name, getattr(c, name))

    _check_int_tuple("blocks_per_stage", c.blocks_per_stage)
    if not c.blocks_per_stage:
        raise ValueError("blocks_per_stage is empty; a ResNet needs at least one stage")
    if any(n < 1 for n in c.blocks_per_stage):
        raise ValueError(
            "blocks_per_stage must be positive integers, got "
            f"{short_repr(list(c.blocks_per_stage))}; "
            "every stage needs at least one block"
        )
    if sum(c.blocks_per_stage) > MAX_TOTAL_BLOCKS:
        raise ValueError(
            f"blocks_per_stage {short_repr(list(c.blocks_per_stage))} adds up to "
            f"{sum(c.blocks_per_stage)} blocks; at most {MAX_TOTAL_BLOCKS} are allowed "
            "(resnet1202 has 600)"
        )

    _check_int_tuple("widths", c.widths)
    if len(c.widths) != len(c.blocks_per_stage):
        raise ValueError(
            f"widths has {len(c.widths)} entries {short_repr(list(c.widths))} but "
            "blocks_per_stage has "
            f"{len(c.blocks_per_stage)}; give one width per stage"
        )
    for index, width in enumerate(c.widths):
        _check_int(f"widths[{index}] (stage {index + 1})", width, 1, MAX_WIDTH)

    _check_int("groups", c.groups, 1, MAX_WIDTH)
    _check_int("width_per_group", c.width_per_group, 1, MAX_WIDTH)
    _check_int("stem_width", c.stem_width, 1, MAX_WIDTH)
    _check_int("in_channels", c.in_channels, 1, MAX_IN_CHANNELS)
    _check_int("num_classes", c.num_classes, 1, MAX_CLASSES)

    if c.zero_init_residual and not c.residual:
        raise ValueError(
            "zero_init_residual=True zeroes the last layer of each residual branch, which in a "
            "network with residual=False would zero every block's output; turn one of them off"
        )

    _validate_block_widths(c)
    _validate_stem(c)
    _validate_shortcut(c)
    _validate_dilation(c)


def _validate_block_widths(c: ResNetConfig) -> None:
    if c.block == "basic":
        if c.groups != 1 or c.width_per_group != 64:
            raise ValueError(
                f"groups={c.groups} and width_per_group={c.width_per_group} shape a bottleneck's "
                "3x3 conv; basic blocks need groups=1 and width_per_group=64 (change widths to "
                "widen a basic network, or use block='bottleneck')"
            )
        if c.stride_in_1x1:
            raise ValueError(
                "stride_in_1x1=True moves a bottleneck's stride to its first 1x1 conv; basic "
                "blocks have no 1x1 conv, so use block='bottleneck' or stride_in_1x1=False"
            )
        return
    for index, width in enumerate(c.widths):
        per_group = width * c.width_per_group / 64
        if per_group != int(per_group):
            raise ValueError(
                f"widths[{index}]={width} with width_per_group={c.width_per_group} gives "
                f"{per_group:g} channels per group, so the bottleneck width "
                f"{per_group * c.groups:g} is not divisible by groups={c.groups}; choose a width "
                "such that width * width_per_group is a multiple of 64"
            )
        if c.bottleneck_width(width) > MAX_WIDTH:
            raise ValueError(
                f"stage {index + 1}'s bottleneck width {c.bottleneck_width(width)} "
                f"(widths[{index}]={width}, groups={c.groups}, "
                f"width_per_group={c.width_per_group}) is over the limit of {MAX_WIDTH}"
            )


def _validate_stem(c: ResNetConfig) -> None:
    if c.stem == "deep" and c.stem_width % 2:
        raise ValueError(
            f"stem_width={c.stem_width}: a deep stem's inner convs have half of stem_width, "
            "so it must be even"
        )
    if c.stem == "deep_tiered" and c.stem_width % 8:
        raise ValueError(
            f"stem_width={c.stem_width}: a tiered deep stem's inner convs have 3/8 and 1/2 of "
            "stem_width, so it must be a multiple of 8"
        )


def _validate_shortcut(c: ResNetConfig) -> None:
    if c.shortcut != "A":
        return
    for index, channels_in in enumerate(c.stage_in_channels()):
        channels_out = c.widths[index] * c.expansion
        if channels_out < channels_in:
            raise ValueError(
                f"shortcut='A' pads zero channels on to grow the identity, but stage {index + 1} "
                f"goes from {channels_in} to {channels_out} channels; use shortcut='B' for a "
                "projection, or widths that never decrease"
            )


def _validate_dilation(c: ResNetConfig) -> None:
    _check_int_tuple("dilated_stages", c.dilated_stages)
    stages = c.dilated_stages
    for stage in stages:
        if not 2 <= stage <= c.num_stages:
            raise ValueError(
                f"dilated_stages names stage {stage}, but this network's stages with a stride "
                f"to replace are 2 to {c.num_stages}"
                if c.num_stages > 1
                else f"dilated_stages names stage {stage}, but a one-stage network has no "
                "stride to replace; leave dilated_stages empty"
            )
    expected = tuple(range(c.num_stages - len(stages) + 1, c.num_stages + 1))
    if tuple(stages) != expected:
        raise ValueError(
            f"dilated_stages={short_repr(list(stages))} must be the last stages in order, each "
            "once, "
            f"e.g. [{c.num_stages}] for output stride 16 or "
            f"[{c.num_stages - 1}, {c.num_stages}] for 8"
        )
