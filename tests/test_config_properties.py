"""Property: any configuration either builds and analyses consistently, or is a ValueError."""

from __future__ import annotations

import dataclasses
import warnings

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from resnet_viz import ResNetConfig, build_model, count_parameters
from resnet_viz.analysis import analyze

# Plausible values: combinations of these are still often invalid (groups on a basic block,
# option A narrowing the channels, dilation of a middle stage), which is what the test is for.
PLAUSIBLE = {
    "block": st.sampled_from(["basic", "bottleneck"]),
    "groups": st.sampled_from([1, 1, 2, 4]),
    "width_per_group": st.sampled_from([64, 64, 32, 16]),
    "stem": st.sampled_from(["imagenet", "cifar", "deep", "deep_tiered"]),
    "stem_width": st.sampled_from([8, 16, 24]),
    "stride_in_1x1": st.booleans(),
    "shortcut": st.sampled_from(["A", "B", "C", "D"]),
    "preact": st.booleans(),
    "se": st.booleans(),
    "residual": st.booleans(),
    "norm": st.sampled_from(["batch", "none"]),
    "dilated_stages": st.sampled_from([(), (), (4,), (3,), (2, 3), (3, 4)]),
    "zero_init_residual": st.booleans(),
    "in_channels": st.sampled_from([1, 3, 4]),
    "num_classes": st.sampled_from([1, 10, 1000]),
}
# Values no configuration may take, one field at a time.
NONSENSE = {
    "block": st.sampled_from(["Basic", "", None, 2]),
    "blocks_per_stage": st.sampled_from([(), (0, 1), (-1,), (1.5, 2), "2,2", None]),
    "widths": st.sampled_from([(0,), (-8, 16), (True,), "64", (10**9,)]),
    "groups": st.sampled_from([0, -1, 2.0, "4", None]),
    "stem": st.sampled_from(["vgg", "", None]),
    "stem_width": st.sampled_from([0, -16, 10**9, "wide"]),
    "shortcut": st.sampled_from(["b", "E", 1]),
    "preact": st.sampled_from(["yes", 1, None]),
    "dilated_stages": st.sampled_from([(1,), (0,), (-1,), (9,), (4, 3), (4, 4), "4"]),
    "in_channels": st.sampled_from([0, 1000, 3.0]),
    "num_classes": st.sampled_from([0, -10, 10**9]),
    "width_per_group": st.sampled_from([0, -64, 64.5, "64", True, 10**9]),
    "stride_in_1x1": st.sampled_from(["no", 0, None, 2.0]),
    "se": st.sampled_from(["true", 2, [], None]),
    "residual": st.sampled_from(["false", 0.0, None]),
    "norm": st.sampled_from(["Batch", "layer", "", None, False]),
    "zero_init_residual": st.sampled_from(["0", 5, {}]),
    "junk": st.just(1),
}
# Every field of ResNetConfig is drawn with valid values (PLAUSIBLE, or the stage lists drawn
# below) and with invalid ones (NONSENSE); test_config_property_covers_every_field keeps it so.


@st.composite
def configurations(draw: st.DrawFn) -> dict:
    stages = draw(st.integers(1, 4))
    data = draw(st.fixed_dictionaries({}, optional=PLAUSIBLE))
    data["blocks_per_stage"] = tuple(
        draw(st.lists(st.integers(1, 2), min_size=stages, max_size=stages))
    )
    data["widths"] = tuple(
        draw(st.lists(st.sampled_from([8, 16, 32]), min_size=stages, max_size=stages))
    )
    if draw(st.integers(0, 3)) == 0:
        field = draw(st.sampled_from(sorted(NONSENSE)))
        data[field] = draw(NONSENSE[field])
    return data


def test_config_property_covers_every_field() -> None:
    fields = {f.name for f in dataclasses.fields(ResNetConfig)}

    assert fields == set(PLAUSIBLE) | {"blocks_per_stage", "widths"}
    assert fields == set(NONSENSE) - {"junk"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configurations(), st.sampled_from([16, 33, 64]))
def test_config_property_builds_or_says_why(data: dict, size: int) -> None:
    try:
        config = ResNetConfig.from_dict(data)
    except ValueError as err:
        assert str(err)  # a message, never a bare ValueError
        event("rejected")
        return
    event("built")
    # What a link or a saved file holds comes back as the same configuration.
    assert ResNetConfig.from_url_token(config.to_url_token()) == config
    assert ResNetConfig.from_json(config.to_json()) == config

    model = build_model(config, device="meta")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny inputs warn about 1x1 maps, as they should
        analysis = analyze(config, input_size=size, batch=2)

    assert analysis.total_params == count_parameters(model)
    assert analysis.records[-1].output_shape == (2, config.num_classes)
    for stage_index, width in enumerate(config.widths):
        stage = analysis.find(f"layer{stage_index + 1}")
        assert stage.output_shape[1] == width * config.expansion
    last = analysis.find(f"layer{config.num_stages}")
    # Every stride-2 layer here maps n to ceil(n / 2), so the sizes compose exactly.
    assert last.output_shape[-2:] == (-(-size // config.output_stride),) * 2
