"""Named configurations: the ResNets of torchvision, timm and the papers.

Each preset reproduces its namesake exactly: the same state-dict keys and shapes, so published
checkpoints load, and the same parameter count. The families are described in `FAMILIES`.
"""

from __future__ import annotations

import difflib

from resnet_viz.config import ResNetConfig, changed_fields, short_repr

_BASIC_18 = (2, 2, 2, 2)
_STAGES_34 = (3, 4, 6, 3)
_STAGES_101 = (3, 4, 23, 3)
_STAGES_152 = (3, 8, 36, 3)
_CIFAR_WIDTHS = (16, 32, 64)


def _imagenet(block: str, blocks: tuple[int, ...], **kwargs: object) -> ResNetConfig:
    return ResNetConfig(block=block, blocks_per_stage=blocks, **kwargs)  # type: ignore[arg-type]


def _cifar(depth: int, residual: bool = True, **kwargs: object) -> ResNetConfig:
    # He et al. 2015, section 4.2: depth 6n + 2, three stages of n basic blocks.
    n = (depth - 2) // 6
    return ResNetConfig(
        block="basic",
        blocks_per_stage=(n, n, n),
        widths=_CIFAR_WIDTHS,
        stem="cifar",
        stem_width=16,
        shortcut="A",
        residual=residual,
        num_classes=10,
        **kwargs,  # type: ignore[arg-type]
    )


def _preact_cifar(block: str, depth: int) -> ResNetConfig:
    # He et al. 2016: 110 layers as 3 x 18 basic blocks, 164 layers as 3 x 18 bottlenecks.
    n = (depth - 2) // (9 if block == "bottleneck" else 6)
    return ResNetConfig(
        block=block,
        blocks_per_stage=(n, n, n),
        widths=_CIFAR_WIDTHS,
        stem="cifar",
        stem_width=16,
        preact=True,
        num_classes=10,
    )


TORCHVISION: dict[str, ResNetConfig] = {
    "resnet18": _imagenet("basic", _BASIC_18),
    "resnet34": _imagenet("basic", _STAGES_34),
    "resnet50": _imagenet("bottleneck", _STAGES_34),
    "resnet101": _imagenet("bottleneck", _STAGES_101),
    "resnet152": _imagenet("bottleneck", _STAGES_152),
    "resnext50_32x4d": _imagenet("bottleneck", _STAGES_34, groups=32, width_per_group=4),
    "resnext101_32x8d": _imagenet("bottleneck", _STAGES_101, groups=32, width_per_group=8),
    "resnext101_64x4d": _imagenet("bottleneck", _STAGES_101, groups=64, width_per_group=4),
    "wide_resnet50_2": _imagenet("bottleneck", _STAGES_34, width_per_group=128),
    "wide_resnet101_2": _imagenet("bottleneck", _STAGES_101, width_per_group=128),
}

# timm's tweaks (Bag of Tricks, He et al. 2019): c/d/s/t stems, d/t average-pool shortcut
TIMM: dict[str, ResNetConfig] = {
    "resnet10t": _imagenet("basic", (1, 1, 1, 1), stem="deep_tiered", shortcut="D"),
    "resnet18d": _imagenet("basic", _BASIC_18, stem="deep", shortcut="D"),
    "resnet26d": _imagenet("bottleneck", _BASIC_18, stem="deep", shortcut="D"),
    "resnet34d": _imagenet("basic", _STAGES_34, stem="deep", shortcut="D"),
    "resnet50c": _imagenet("bottleneck", _STAGES_34, stem="deep"),
    "resnet50d": _imagenet("bottleneck", _STAGES_34, stem="deep", shortcut="D"),
    "resnet50s": _imagenet("bottleneck", _STAGES_34, stem="deep", stem_width=128),
    "resnet50t": _imagenet("bottleneck", _STAGES_34, stem="deep_tiered", shortcut="D"),
    "resnet101d": _imagenet("bottleneck", _STAGES_101, stem="deep", shortcut="D"),
    "seresnet50": _imagenet("bottleneck", _STAGES_34, se=True),
    "seresnext50_32x4d": _imagenet("bottleneck", _STAGES_34, groups=32, width_per_group=4, se=True),
}

# He et al. 2015: stride on the first 1x1 of a bottleneck, plain twins, CIFAR nets
PAPER_2015: dict[str, ResNetConfig] = {
    "resnet50_v1": _imagenet("bottleneck", _STAGES_34, stride_in_1x1=True),
    "resnet101_v1": _imagenet("bottleneck", _STAGES_101, stride_in_1x1=True),
    "resnet152_v1": _imagenet("bottleneck", _STAGES_152, stride_in_1x1=True),
    "plain18": _imagenet("basic", _BASIC_18, residual=False),
    "plain34": _imagenet("basic", _STAGES_34, residual=False),
    **{f"resnet{depth}": _cifar(depth) for depth in (20, 32, 44, 56, 110, 1202)},
    **{f"plain{depth}": _cifar(depth, residual=False) for depth in (20, 32, 44, 56, 110)},
}

# He et al. 2016, pre-activation: ImageNet-sized 18 and 50, CIFAR 110 and 164
PREACT_2016: dict[str, ResNetConfig] = {
    "preact_resnet18": _imagenet("basic", _BASIC_18, preact=True),
    "preact_resnet50": _imagenet("bottleneck", _STAGES_34, preact=True),
    "preact_resnet110": _preact_cifar("basic", 110),
    "preact_resnet164": _preact_cifar("bottleneck", 164),
}

FAMILIES: dict[str, tuple[str, ...]] = {
    "torchvision": tuple(TORCHVISION),
    "timm": tuple(TIMM),
    "paper 2015": tuple(PAPER_2015),
    "pre-activation 2016": tuple(PREACT_2016),
}
PRESETS: dict[str, ResNetConfig] = {**TORCHVISION, **TIMM, **PAPER_2015, **PREACT_2016}


def get_preset(name: str) -> ResNetConfig:
    """The config of a preset, or a ValueError that lists the closest names."""
    if not isinstance(name, str):
        raise ValueError(f"a preset name must be a string, got {short_repr(name)}")
    key = name.strip().lower().replace("-", "_")
    if key in PRESETS:
        return PRESETS[key]
    close = difflib.get_close_matches(key, PRESETS, n=4, cutoff=0.6)
    hint = (
        f"did you mean {', '.join(close)}?"
        if close
        else "the presets are listed by `resnet-viz presets` and in the app's preset menu"
    )
    raise ValueError(f"unknown preset {short_repr(name)}; {hint}")


def nearest_preset(config: ResNetConfig) -> tuple[str, list[str]]:
    """The preset that differs from `config` in the fewest fields, and those fields.

    On a tie the preset listed first wins, so the torchvision names come before the others.
    """
    diffs = [(name, changed_fields(base, config)) for name, base in PRESETS.items()]
    return min(diffs, key=lambda item: len(item[1]))


def describe(config: ResNetConfig) -> str:
    """A short human name: "resnet50", or "resnet50 with se=True, shortcut='D'"."""
    base, changed = nearest_preset(config)
    if not changed:
        return base
    changes = ", ".join(f"{name}={_short(getattr(config, name))}" for name in changed)
    return f"{base} with {changes}"


def _short(value: object) -> str:
    """A value for a name: a long tuple (a thousand stages) as its start and its length."""
    if isinstance(value, tuple) and len(value) > 8:
        head = ", ".join(map(repr, value[:4]))
        return f"({head}, ... {len(value)} in all)"
    return repr(value)


def preset_name(config: ResNetConfig) -> str | None:
    """The name of the preset equal to `config`, if there is one."""
    for name, preset in PRESETS.items():
        if preset == config:
            return name
    return None


def family_of(name: str) -> str:
    for family, names in FAMILIES.items():
        if name in names:
            return family
    raise ValueError(f"unknown preset {name!r}")


def parse_model_spec(spec: str) -> ResNetConfig:
    """A config from what a user types: a preset name, a URL token, inline JSON or a JSON file."""
    from pathlib import Path

    text = spec.strip()
    if text.startswith(("{", "[")):
        return ResNetConfig.from_json(text)
    if text.endswith(".json") or "/" in text or "\\" in text:
        path = Path(text)
        if path.is_dir():
            raise ValueError(f"{short_repr(text)} is a folder; give a configuration JSON file")
        if not path.is_file():
            raise ValueError(f"configuration file {short_repr(text)} does not exist")
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"configuration file {text!r} cannot be read: {err}") from None
        return ResNetConfig.from_json(content)
    if "~" in text:
        return ResNetConfig.from_url_token(text)
    return get_preset(text)
