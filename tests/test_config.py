"""ResNetConfig: validation messages, derived facts and the JSON and URL forms."""

from __future__ import annotations

import dataclasses

import pytest

from resnet_viz import PRESETS, ResNetConfig


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"block": "triple"}, r"block must be one of 'basic', 'bottleneck', got 'triple'"),
        ({"blocks_per_stage": (2, 0, 2, 2)}, r"blocks_per_stage .* got \[2, 0, 2, 2\]"),
        ({"blocks_per_stage": ()}, r"blocks_per_stage is empty"),
        ({"blocks_per_stage": (2.0, 2, 2, 2)}, r"blocks_per_stage must be a list of integers"),
        ({"blocks_per_stage": (400, 400, 400, 400)}, r"1600 blocks; at most 1000"),
        ({"widths": (64, -128, 256, 512)}, r"widths\[1\] \(stage 2\) must be between 1 and"),
        ({"widths": (64, 128, 256)}, r"widths has 3 entries .* blocks_per_stage has 4"),
        ({"widths": (64, 128, True, 512)}, r"widths must be a list of integers"),
        ({"groups": 0}, r"groups must be between 1 and \d+, got 0"),
        ({"stem": "huge"}, r"stem must be one of 'imagenet', 'cifar', 'deep', 'deep_tiered'"),
        ({"stem_width": 63, "stem": "deep"}, r"stem_width=63: .* must be even"),
        ({"stem_width": 60, "stem": "deep_tiered"}, r"stem_width=60: .* multiple of 8"),
        ({"shortcut": "E"}, r"shortcut must be one of 'A', 'B', 'C', 'D', got 'E'"),
        ({"preact": "yes"}, r"preact must be true or false, got 'yes'"),
        ({"in_channels": 0}, r"in_channels must be between 1 and 64, got 0"),
        ({"num_classes": -3}, r"num_classes must be between 1 and \d+, got -3"),
        ({"num_classes": 10.5}, r"num_classes must be an integer, got 10.5 \(float\)"),
        ({"groups": 32}, r"basic blocks need groups=1 and width_per_group=64"),
        ({"stride_in_1x1": True}, r"basic blocks have no 1x1 conv"),
        ({"dilated_stages": (1,)}, r"names stage 1, .* stages with a stride to replace are 2 to 4"),
        ({"dilated_stages": (7,)}, r"names stage 7"),
        ({"dilated_stages": (3,)}, r"must be the last stages in order"),
        ({"dilated_stages": (4, 3)}, r"must be the last stages in order"),
        ({"residual": False, "zero_init_residual": True}, r"zero every block's output"),
    ],
)
def test_config_rejects_bad_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ResNetConfig(**changes)  # type: ignore[arg-type]


def test_config_rejects_width_not_divisible_by_groups() -> None:
    with pytest.raises(ValueError, match=r"widths\[0\]=40 .* not divisible by groups=32"):
        ResNetConfig(block="bottleneck", widths=(40, 128, 256, 512), groups=32, width_per_group=4)


def test_config_rejects_option_a_with_channel_decrease() -> None:
    with pytest.raises(ValueError, match=r"stage 3 goes from 128 to 64 channels; use shortcut='B'"):
        ResNetConfig(shortcut="A", widths=(64, 128, 64, 512))


def test_config_rejects_option_a_narrower_than_stem() -> None:
    with pytest.raises(ValueError, match=r"stage 1 goes from 64 to 32 channels"):
        ResNetConfig(shortcut="A", widths=(32, 64, 128, 256))


def test_config_lists_become_tuples_and_hash() -> None:
    config = ResNetConfig(blocks_per_stage=[1, 1], widths=[8, 16])  # type: ignore[arg-type]

    assert config.blocks_per_stage == (1, 1)
    assert hash(config) == hash(ResNetConfig(blocks_per_stage=(1, 1), widths=(8, 16)))


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["resnet50"].block = "basic"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "depth", "output_stride"),
    [
        ("resnet18", 18, 32),
        ("resnet50", 50, 32),
        ("resnet152", 152, 32),
        ("resnet56", 56, 4),
        ("resnet1202", 1202, 4),
        ("preact_resnet164", 164, 4),
        ("resnet50d", 52, 32),
    ],
)
def test_config_depth_and_output_stride(name: str, depth: int, output_stride: int) -> None:
    config = PRESETS[name]

    assert config.depth == depth
    assert config.output_stride == output_stride


def test_config_dilation_lowers_output_stride() -> None:
    assert PRESETS["resnet50"].replace(dilated_stages=(4,)).output_stride == 16
    assert PRESETS["resnet50"].replace(dilated_stages=(3, 4)).output_stride == 8


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_config_json_round_trip_for_every_preset(name: str) -> None:
    config = PRESETS[name]

    assert ResNetConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_config_url_token_of_preset_is_its_name(name: str) -> None:
    assert PRESETS[name].to_url_token() == name
    assert ResNetConfig.from_url_token(name) == PRESETS[name]


@pytest.mark.parametrize(
    "config",
    [
        PRESETS["resnet50"].replace(shortcut="D", se=True),
        PRESETS["resnet18"].replace(dilated_stages=(3, 4), num_classes=7, in_channels=1),
        ResNetConfig(block="bottleneck", blocks_per_stage=(1, 2, 3), widths=(8, 16, 32)),
        PRESETS["resnet50d"].replace(dilated_stages=()),
        PRESETS["resnet56"].replace(
            residual=True, preact=True, shortcut="B", stem_width=32, widths=(32, 64, 128)
        ),
    ],
)
def test_config_url_token_round_trip(config: ResNetConfig) -> None:
    token = config.to_url_token()

    assert ResNetConfig.from_url_token(token) == config
    assert all(ch.isalnum() or ch in "._~-" for ch in token)
    assert len(token) < 60


def test_config_url_token_names_closest_preset() -> None:
    token = PRESETS["resnet50"].replace(se=True, shortcut="D").to_url_token()

    assert token.startswith("resnet50~") or token.startswith("seresnet50~")
    assert token.count("~") == 1


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", r"token is empty"),
        ("resnet50~zz-1", r"part 'zz-1' is not KEY-VALUE with a known key"),
        ("resnet50~se-maybe", r"se='maybe'; that field takes 0 or 1"),
        ("resnet50~n-3.x.6.3", r"blocks_per_stage='3.x.6.3'"),
        ("resnet50~n-3.0.6.3", r"blocks_per_stage must be positive integers"),
        ("resnet5O", r"unknown preset 'resnet5O'; did you mean .*resnet50\b"),
        ("resnet50 <script>", r"not one this app writes"),
        ("x" * 30_000, r"not one this app writes"),
        ("x" * 2000, r"unknown preset 'x{40}"),
    ],
)
def test_config_url_token_rejects_garbage(token: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ResNetConfig.from_url_token(token)


def test_config_defaults_are_resnet18() -> None:
    # The URL token and `describe` rely on every config having a preset to start from.
    assert ResNetConfig() == PRESETS["resnet18"]


def test_config_describe_names_the_changes() -> None:
    from resnet_viz.presets import describe

    config = PRESETS["resnet50"].replace(shortcut="D", dilated_stages=(4,))

    assert describe(PRESETS["resnet56"]) == "resnet56"
    assert describe(config) == "resnet50 with shortcut='D', dilated_stages=(4,)"


def test_config_from_dict_with_preset_base() -> None:
    config = ResNetConfig.from_dict({"preset": "resnet50", "num_classes": 10})

    assert config == PRESETS["resnet50"].replace(num_classes=10)


def test_config_from_dict_rejects_unknown_field() -> None:
    with pytest.raises(ValueError, match=r"unknown configuration field\(s\) 'depth'; allowed"):
        ResNetConfig.from_dict({"depth": 50})


def test_config_from_json_rejects_bad_json() -> None:
    with pytest.raises(ValueError, match=r"not valid JSON"):
        ResNetConfig.from_json("{block: basic")
    with pytest.raises(ValueError, match=r"must be a JSON object of fields, got list"):
        ResNetConfig.from_json("[1, 2]")


def test_config_from_json_survives_deep_nesting() -> None:
    with pytest.raises(ValueError, match=r"nested too deeply"):
        ResNetConfig.from_json('{"se": ' + "[" * 100_000 + "]" * 100_000 + "}")


@pytest.mark.parametrize("value", [None, 123, b"{}"])
def test_config_from_json_needs_text(value: object) -> None:
    with pytest.raises(ValueError, match=r"configuration JSON must be text"):
        ResNetConfig.from_json(value)  # type: ignore[arg-type]


def test_config_replace_rejects_unknown_field() -> None:
    with pytest.raises(ValueError, match=r"unknown configuration field\(s\) 'foo'"):
        ResNetConfig().replace(foo=1)


def test_config_from_dict_rejects_non_text_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown configuration field\(s\) 'a', 1"):
        ResNetConfig.from_dict({1: 2, "a": 3})


def test_config_url_token_round_trip_for_many_stages() -> None:
    config = ResNetConfig(blocks_per_stage=(1,) * 300, widths=(64,) * 300)

    assert ResNetConfig.from_url_token(config.to_url_token()) == config


@pytest.mark.parametrize("token", ["resnet50~nc-1_0", "resnet50~nc- 10", "resnet50~n-3.4.+6.3"])
def test_config_url_token_takes_plain_digits_only(token: str) -> None:
    with pytest.raises(ValueError):
        ResNetConfig.from_url_token(token)


def test_config_messages_stay_short_for_huge_values() -> None:
    with pytest.raises(ValueError) as info:
        ResNetConfig(widths=tuple(range(1, 2_000_000)))

    assert len(str(info.value)) < 400
    assert "characters)" in str(info.value)
