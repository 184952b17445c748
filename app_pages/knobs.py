"""The Build page's editor: one widget per field of ResNetConfig, checked as the user types.

Each field is described once in KNOBS (its label, kind of widget and help); a field of
ResNetConfig missing there still gets a widget chosen from its default's type, so a new field
is never left out. The library is the only judge of what is valid: the widgets put no bounds of
their own, and each ValueError (whose message names the field) is shown under that field.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from resnet_viz.config import BLOCK_TYPES, NORM_TYPES, SHORTCUT_TYPES, STEM_TYPES, ResNetConfig

# How a choice reads in its widget, where the value alone says too little.
OPTION_NAMES = {
    "shortcut": {
        "A": "A: zero-padded identity",
        "B": "B: projection on change",
        "C": "C: projection everywhere",
        "D": "D: avg pool + projection",
    },
}
FIELDS = [f.name for f in dataclasses.fields(ResNetConfig)]
DEFAULTS = ResNetConfig()


@dataclass(frozen=True)
class Knob:
    """How one field is edited: kind is "choice", "int", "bool", "ints" or "text"."""

    field: str
    label: str
    kind: str
    options: tuple[str, ...] = ()
    help: str = ""
    placeholder: str = ""


KNOBS = [
    Knob(
        "block", "Block", "choice", BLOCK_TYPES, "basic: two 3x3 convs; bottleneck: 1x1, 3x3, 1x1"
    ),
    Knob("blocks_per_stage", "Blocks per stage", "ints", help="e.g. 3,4,6,3 (resnet50)"),
    Knob("widths", "Widths", "ints", help="base width of each stage, e.g. 64,128,256,512"),
    Knob("groups", "Groups", "int", help="of a bottleneck's 3x3 conv (ResNeXt's cardinality)"),
    Knob("width_per_group", "Width per group", "int", help="64 with groups 1 is ResNet's"),
    Knob("stride_in_1x1", "Stride in the 1x1 (v1)", "bool", help="the 2015 paper's bottleneck"),
    Knob("stem", "Stem", "choice", STEM_TYPES, "imagenet 7x7/2 + pool; cifar 3x3/1; deep 3x 3x3"),
    Knob("stem_width", "Stem width", "int", help="channels the stem hands to stage 1"),
    Knob(
        "shortcut",
        "Shortcut",
        "choice",
        SHORTCUT_TYPES,
        "A pad, B project on change, C always, D pool",
    ),
    Knob("preact", "Pre-activation", "bool", help="BN and ReLU before each conv (2016)"),
    Knob("se", "Squeeze-and-excitation", "bool"),
    Knob("residual", "Residual (off: plain net)", "bool"),
    Knob("norm", "Normalisation", "choice", NORM_TYPES, "batch: BatchNorm after each conv; none"),
    Knob(
        "dilated_stages",
        "Dilated stages",
        "ints",
        help="stages whose stride becomes dilation: 4 for output stride 16, 3,4 for 8",
        placeholder="none",
    ),
    Knob("zero_init_residual", "Zero-init residual", "bool", help="each block starts as identity"),
    Knob("in_channels", "Input channels", "int"),
    Knob("num_classes", "Classes", "int"),
]


def _default_knob(name: str) -> Knob:
    """A widget for a field that KNOBS does not describe yet, chosen from its default's type."""
    value = getattr(DEFAULTS, name)
    kind = (
        "bool"
        if isinstance(value, bool)
        else "int"
        if isinstance(value, int)
        else "ints"
        if isinstance(value, tuple)
        else "text"
    )
    return Knob(name, name.replace("_", " ").capitalize(), kind)


def all_knobs() -> list[Knob]:
    described = {knob.field for knob in KNOBS}
    return [k for k in KNOBS if k.field in FIELDS] + [
        _default_knob(name) for name in FIELDS if name not in described
    ]


def widget_value(knob: Knob, config: ResNetConfig) -> Any:
    """What the field's widget shows for `config`."""
    value = getattr(config, knob.field)
    if knob.kind == "ints":
        return ",".join(map(str, value))
    return value


def parse_ints(name: str, text: str) -> tuple[int, ...]:
    """ "3,4,6,3" (spaces, or an empty text for none) -> (3, 4, 6, 3)."""
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    bad = [p for p in parts if not (p.isascii() and p.isdigit() and len(p) <= 9)]
    if bad:
        raise ValueError(
            f"{name}: {bad[0][:20]!r} is not a whole number; write whole numbers separated by "
            "commas, such as 3,4,6,3"
        )
    return tuple(int(p) for p in parts)


def parse_knob(knob: Knob, raw: Any) -> Any:
    """The field's value from its widget's, or ValueError naming the field."""
    if knob.kind == "ints":
        return parse_ints(knob.field, str(raw))
    if knob.kind == "int":
        if isinstance(raw, float) and not raw.is_integer():
            raise ValueError(f"{knob.field} must be a whole number, got {raw}")
        return int(raw)
    return raw


def field_of(message: str, prefer: str | None = None) -> str | None:
    """The field a validation message is about: `prefer` (the field just edited) if the message
    names it, else the first field it names."""
    found = [
        (match.start(), name)
        for name in FIELDS
        if (match := re.search(rf"(?<![\w]){re.escape(name)}(?![a-z_])", message))
    ]
    if prefer in {name for _, name in found}:
        return prefer
    return min(found)[1] if found else None


def check(
    values: dict[str, Any], edited: str | None = None
) -> tuple[ResNetConfig | None, dict[str, str]]:
    """The config the widgets' values make, or None and each message by field ("" for none)."""
    knobs = {knob.field: knob for knob in all_knobs()}
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for name, raw in values.items():
        try:
            parsed[name] = parse_knob(knobs[name], raw)
        except (ValueError, TypeError) as err:
            errors[name] = str(err)
    if errors:
        return None, errors
    try:
        return ResNetConfig(**parsed), {}
    except ValueError as err:
        return None, {field_of(str(err), edited) or "": str(err)}
