"""analyze(): shapes, counts, receptive fields and memory, against independent references."""

from __future__ import annotations

import math
import re
import warnings
from collections import defaultdict

import pytest
import torch
from conftest import preset_of, reference, reference_index
from torch import nn

from resnet_viz import PRESETS, ResNetConfig, build_model
from resnet_viz.analysis import (
    _training_activations,
    analyze,
    parse_input_size,
    shape_arithmetic,
    torchinfo_summary,
)

REFERENCE_KEYS = sorted(reference_index())
TORCHVISION_KEYS = [key for key in REFERENCE_KEYS if "/" not in key]
_REFERENCE_LEVELS = re.compile(r"layer\d+(\.\d+)?")


def _comparable(records: list) -> list[tuple[str, list[int]]]:
    """Our records at the reference's levels: leaves, stages and blocks."""
    return [
        (r.name, list(r.output_shape))
        for r in records
        if r.is_leaf or _REFERENCE_LEVELS.fullmatch(r.name)
    ]


@pytest.mark.parametrize("size", ["224", "160x192"])
@pytest.mark.parametrize("key", TORCHVISION_KEYS)
def test_analysis_shapes_equal_torchvision_call_for_call(key: str, size: str) -> None:
    height, width = (224, 224) if size == "224" else (160, 192)

    analysis = analyze(preset_of(key), input_size=(height, width))

    expected = [(name, shape) for name, shape in reference(key)[f"output_shapes_{size}"]]
    assert _comparable(analysis.records) == expected


@pytest.mark.parametrize("size", ["224", "160x192"])
@pytest.mark.parametrize("key", [key for key in REFERENCE_KEYS if "/" in key])
def test_analysis_shapes_equal_timm_by_name(key: str, size: str) -> None:
    # timm names its activations and identity placeholders differently (act1, drop_block,
    # aa); every module both networks have must agree call for call, and every module of
    # timm's that holds weights must be here.
    height, width = (224, 224) if size == "224" else (160, 192)
    expected: dict[str, list[list[int]]] = defaultdict(list)
    for name, shape in reference(key)[f"output_shapes_{size}"]:
        expected[name].append(shape)
    weighted = {k.rsplit(".", 1)[0] for k, _ in reference(key)["state_dict"]}

    analysis = analyze(preset_of(key), input_size=(height, width))

    ours: dict[str, list[list[int]]] = defaultdict(list)
    for name, shape in _comparable(analysis.records):
        ours[name].append(shape)
    common = set(ours) & set(expected)
    assert weighted <= set(ours)
    assert len(common) > 0.6 * len(expected)
    for name in common:
        assert ours[name] == expected[name], name


@pytest.mark.parametrize("key", REFERENCE_KEYS)
def test_analysis_totals_equal_reference_and_torchinfo(key: str) -> None:
    analysis = analyze(preset_of(key))

    assert analysis.total_params == reference_index()[key]["num_params"]
    assert analysis.mult_adds == reference_index()[key]["mult_adds_224_torchinfo"]
    assert analysis.flops == 2 * analysis.mult_adds


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d", "resnet56", "preact_resnet50"])
def test_analysis_torchinfo_view_agrees(name: str) -> None:
    size = 32 if PRESETS[name].stem == "cifar" else 224

    ours = analyze(name, input_size=size)
    theirs = torchinfo_summary(name, input_size=size)

    assert theirs.total_params == ours.total_params
    assert theirs.total_mult_adds == ours.mult_adds
    assert "Conv2d" in str(theirs)


# -- receptive fields, measured by gradients ---------------------------------------------


def _measure_support(model: nn.Module, stage: str, size: int) -> tuple[int, int, int]:
    """Rows of the input that reach the centre output of `stage`: (position, first, last).

    Every weight is positive and BatchNorm is the identity, so no contributions cancel; max
    pools become average pools of the same geometry, because a max pool passes the gradient
    to one pixel of its window, not to all it could see.
    """
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.MaxPool2d):
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            setattr(
                parent,
                name.rpartition(".")[2],
                nn.AvgPool2d(module.kernel_size, module.stride, module.padding),
            )
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.fill_(1.0 / module.weight[0].numel())
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
                module.reset_running_stats()
    captured = {}
    model.get_submodule(stage).register_forward_hook(lambda m, i, o: captured.update(out=o))
    x = torch.ones(1, 3, size, size, requires_grad=True)

    model(x)
    out = captured["out"]
    position = out.shape[-2] // 2
    out[0, :, position, position].sum().backward()

    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    return position, int(rows.min()), int(rows.max())


@pytest.mark.parametrize(
    ("name", "size", "stages"),
    [
        ("resnet18", 480, ["layer1", "layer2", "layer3", "layer4"]),
        ("resnet20", 96, ["layer1", "layer2", "layer3"]),
        ("resnet50d", 256, ["layer1.0", "layer2", "layer3.0"]),
    ],
)
def test_analysis_receptive_field_matches_gradient(name: str, size: int, stages: list) -> None:
    analysis = analyze(name, input_size=size)

    for stage in stages:
        record = analysis.find(stage)
        position, first, last = _measure_support(build_model(name), stage, size)
        centre = record.rf_start + position * record.jump
        half = (record.receptive_field - 1) / 2

        assert (first, last) == (
            max(0, math.floor(centre - half)),
            min(size - 1, math.ceil(centre + half)),
        ), stage


def test_analysis_receptive_field_known_values() -> None:
    analysis = analyze("resnet18")

    assert [analysis.find(f"layer{i}").receptive_field for i in range(1, 5)] == [43, 99, 211, 435]
    assert analysis.find("layer4").jump == 32
    assert analysis.find("avgpool").receptive_field == 435 + 6 * 32  # all 7 positions


def test_analysis_se_flags_global_context() -> None:
    analysis = analyze("seresnet50")

    assert analysis.find("layer1.0.se").global_context
    assert not analysis.find("layer1.0.conv3").global_context
    # The gate adds context, not extent: the block sees what its convs see.
    assert (
        analysis.find("layer1.0").receptive_field
        == analyze("resnet50").find("layer1.0").receptive_field
    )


# -- devices and models handed in ----------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet18", "resnet20", "seresnet50", "resnet50d"])
def test_analysis_meta_and_cpu_records_are_equal(name: str) -> None:
    size = 32 if PRESETS[name].stem == "cifar" else 64

    on_meta = analyze(name, input_size=size, device="meta")
    on_cpu = analyze(name, input_size=size, device="cpu")

    assert on_cpu.records == on_meta.records
    assert on_cpu.memory == on_meta.memory
    assert (on_meta.device, on_cpu.device) == ("meta", "cpu")


def test_analysis_leaves_a_handed_in_model_untouched() -> None:
    model = build_model("resnet18").train()
    calls: list[str] = []
    model.layer1.register_forward_hook(lambda m, i, o: calls.append("hook"))
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    parameters = list(model.parameters())
    hooks_before = {n: len(m._forward_hooks) for n, m in model.named_modules()}

    for device in ("meta", "cpu"):
        analyze(model, input_size=64, device=device)

    assert model.training and all(m.training for m in model.modules())
    assert calls == []
    assert {n: len(m._forward_hooks) for n, m in model.named_modules()} == hooks_before
    assert all(len(m._forward_pre_hooks) == 0 for m in model.modules())
    assert all(a is b for a, b in zip(model.parameters(), parameters, strict=True))
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), key
    assert next(model.parameters()).device.type == "cpu"


def test_analysis_of_a_handed_in_model_keeps_its_config() -> None:
    model = build_model("resnet34", device="meta")

    analysis = analyze(model)

    assert analysis.config == PRESETS["resnet34"]
    assert analysis.total_params == 21_797_672


# -- memory ----------------------------------------------------------------------------------


def _tiny_chain() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))


def test_analysis_inference_peak_by_hand() -> None:
    # float32, 8x8: input 768 B, conv1 out 1024 B, relu out 1024 B, conv2 out 512 B. The input
    # lives throughout; during the ReLU both its input and output are alive: 768 + 2 * 1024.
    analysis = analyze(_tiny_chain(), input_size=8)

    assert analysis.memory.inference_peak == 768 + 1024 + 1024


def test_analysis_training_activations_by_hand() -> None:
    # conv1 keeps its input (768 B), the ReLU its output (1024 B), and conv2 its input, which
    # is that same ReLU output: 1792 B.
    analysis = analyze(_tiny_chain(), input_size=8)

    assert analysis.memory.training_activations == 768 + 1024
    assert analysis.memory.parameters == (4 * 3 * 9 + 4 + 2 * 4 * 9 + 2) * 4


def test_analysis_memory_in_bfloat16_is_the_same_on_meta_and_cpu() -> None:
    on_meta = analyze("resnet18", input_size=64, batch=2, dtype="bfloat16")
    on_cpu = analyze("resnet18", input_size=64, batch=2, dtype="bfloat16", device="cpu")

    assert on_cpu.memory == on_meta.memory
    # 2 bytes per running mean and variance, 8 per num_batches_tracked counter
    batchnorms = [r for r in on_meta.records if r.type == "BatchNorm2d"]
    assert on_meta.memory.buffers == sum(2 * 2 * r.output_shape[1] + 8 for r in batchnorms)


def test_analysis_memory_scales_with_batch_and_dtype() -> None:
    base = analyze("resnet50", input_size=64, batch=2)
    doubled = analyze("resnet50", input_size=64, batch=4)
    half = analyze("resnet50", input_size=64, batch=2, dtype="bfloat16")

    assert doubled.memory.inference_peak == 2 * base.memory.inference_peak
    assert half.memory.inference_peak * 2 == base.memory.inference_peak
    assert half.memory.parameters * 2 == base.memory.parameters
    assert base.memory.training_activations > 3 * base.memory.inference_peak


@pytest.mark.parametrize(
    "name",
    [
        "resnet18",
        "resnet50",
        "seresnet50",
        "resnet20",
        "resnet50d",
        "preact_resnet50",
        "resnet50_v1",
        "plain18",
    ],
)
def test_analysis_fast_training_pass_saves_what_real_ops_save(name: str) -> None:
    model = build_model(name, device="meta")
    x = torch.empty(2, 3, 64, 64, device="meta")

    fast = _training_activations(model, x, fast=True)
    real = _training_activations(model, x, fast=False)

    assert fast == real


def test_analysis_no_training_estimate_where_batchnorm_cannot_train() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = analyze("resnet18", input_size=32, batch=1)

    assert analysis.memory.training_activations is None
    assert analysis.memory.training_total is None


# -- shape arithmetic ---------------------------------------------------------------------


def test_analysis_shape_arithmetic_filled_in() -> None:
    analysis = analyze("resnet18")

    assert shape_arithmetic(analysis.find("conv1")) == [
        "floor((224 + 2*3 - 1*(7 - 1) - 1) / 2) + 1 = 112"
    ]
    assert shape_arithmetic(analysis.find("maxpool")) == [
        "floor((112 + 2*1 - 1*(3 - 1) - 1) / 2) + 1 = 56"
    ]
    chain = [analysis.find(f"layer{i}.0.conv1").output_shape[-1] for i in range(2, 5)]
    assert chain == [28, 14, 7]
    assert shape_arithmetic(analysis.find("bn1")) == []


def test_analysis_shape_arithmetic_per_axis_and_ceil() -> None:
    analysis = analyze("resnet50d", input_size=(160, 193))

    lines = shape_arithmetic(analysis.find("layer2.0.downsample.0"))

    assert lines == [
        "H: ceil((40 + 2*0 - 1*(2 - 1) - 1) / 2) + 1 = 20",
        "W: ceil((49 + 2*0 - 1*(2 - 1) - 1) / 2) + 1 = 25",
    ]


# -- bad input ------------------------------------------------------------------------------


def test_analysis_one_by_one_maps_warn() -> None:
    with pytest.warns(UserWarning, match=r"input 7x7 leaves layer2 \(stage 2\) .* 1x1 maps"):
        analysis = analyze("resnet18", input_size=7)

    assert analysis.find("layer4").output_shape == (1, 512, 1, 1)


def test_analysis_too_small_input_names_layer_and_smallest_size() -> None:
    # No padding anywhere, so every conv takes 2 pixels off: 5x5 is the smallest that works.
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))

    with pytest.raises(
        ValueError,
        match=r"input 4x4 is too small .* layer '2' .* smallest "
        r"square input that works is 5x5",
    ):
        analyze(model, input_size=4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_size": 0}, r"input size 0x0 is out of range"),
        ({"input_size": "big"}, r"input size 'big' is not a size"),
        ({"input_size": (1, 3, 224, 224)}, r"one integer or \(height, width\)"),
        ({"batch": 0}, r"batch must be an integer from 1"),
        ({"dtype": "int8"}, r"dtype 'int8' is not supported; use one of float32"),
        ({"device": "tpu"}, r"'tpu' is not a device"),
    ],
)
def test_analysis_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        analyze("resnet18", **kwargs)


def test_analysis_find_unknown_layer() -> None:
    with pytest.raises(ValueError, match=r"no layer named 'layer9' \(call 0\)"):
        analyze("resnet18").find("layer9")


def test_analysis_parse_input_size_forms() -> None:
    assert parse_input_size("160x192") == (160, 192)
    assert parse_input_size("224") == (224, 224)
    assert parse_input_size(96) == (96, 96)
    assert parse_input_size([160, 192]) == (160, 192)


def test_analysis_one_pixel_input_warns_too() -> None:
    with pytest.warns(UserWarning, match=r"input 1x1 leaves layer1 \(stage 1\)"):
        analyze("resnet50", input_size=1)


def test_analysis_global_pool_of_a_one_row_map(caplog: pytest.LogCaptureFixture) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = analyze("resnet50", input_size=(32, 256))

    head = analysis.find("avgpool")
    assert head.receptive_field == analysis.find("layer4").receptive_field
    assert head.global_context
    assert "changes the spatial size" not in caplog.text


def test_analysis_meta_model_cannot_run_on_cpu() -> None:
    model = build_model("resnet18", device="meta")

    with pytest.raises(ValueError, match=r"lives on 'meta' and has no weights"):
        analyze(model, input_size=64, device="cpu")


@pytest.mark.parametrize("device", ["cpu:1", "meta:3"])
def test_analysis_rejects_numbered_cpu(device: str) -> None:
    with pytest.raises(ValueError, match=r"has no numbered devices"):
        analyze("resnet18", device=device)


def test_analysis_rejects_unicode_digits() -> None:
    with pytest.raises(ValueError, match=r"is not a size"):
        analyze("resnet18", input_size="\u00b2")


def test_analysis_real_pass_that_cannot_fit_is_refused() -> None:
    # 4096 images of 4096 x 4096 need terabytes: refused before anything is allocated.
    with pytest.raises(ValueError, match=r"needs about \d+\.\d GiB on cpu, but only"):
        analyze("resnet18", input_size=4096, batch=4096, device="cpu")


def test_analysis_building_a_network_that_cannot_fit_is_refused() -> None:
    huge = ResNetConfig(block="bottleneck", blocks_per_stage=(997, 1, 1, 1), widths=(8192,) * 4)

    with pytest.raises(ValueError, match=r"building this network needs about \d+"):
        build_model(huge, device="cpu")
    assert build_model(huge, device="meta") is not None  # on meta it costs nothing


def test_analysis_option_a_arithmetic_reads_well() -> None:
    record = analyze("resnet20", input_size=32).find("layer2.0.downsample")

    assert shape_arithmetic(record) == ["one pixel in 2 kept: ceil(32 / 2) = 16"]
