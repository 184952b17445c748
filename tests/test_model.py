"""The ResNet module: every knob of ResNetConfig does what it says, on meta and on the CPU."""

from __future__ import annotations

import logging
import platform
from pathlib import Path

import pytest
import torch

from resnet_viz import PRESETS, ResNetConfig, build_model, count_parameters
from resnet_viz.blocks import ZeroPadShortcut


def _resident_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


def _input_for(config: ResNetConfig, size: int = 64) -> torch.Tensor:
    size = 32 if config.stem == "cifar" else size
    return torch.randn(2, config.in_channels, size, size)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_model_builds_every_preset_on_meta(name: str) -> None:
    model = build_model(name, device="meta")

    out = model(torch.empty(1, 3, 224, 224, device="meta"))

    assert all(t.device.type == "meta" for t in model.state_dict().values())
    assert out.shape == (1, PRESETS[name].num_classes)
    assert not model.training


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_model_meta_build_allocates_no_weights() -> None:
    build_model("resnet18", device="meta")  # warm up imports and allocator
    before = _resident_bytes()

    model = build_model("wide_resnet101_2", device="meta")

    # 126.9 M float32 parameters would be 508 MB.
    assert count_parameters(model) == 126_886_696
    assert _resident_bytes() - before < 50 * 2**20


PAPER_AND_PREACT = [
    name for name in PRESETS if name.startswith(("plain", "preact")) or "_v1" in name
] + ["resnet20", "resnet110"]


@pytest.mark.parametrize("name", PAPER_AND_PREACT)
def test_model_runs_on_cpu(name: str) -> None:
    config = PRESETS[name]
    model = build_model(config, device="cpu")

    with torch.no_grad():
        out = model(_input_for(config))

    assert out.shape == (2, config.num_classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("shortcut", ["A", "B", "C", "D"])
@pytest.mark.parametrize(
    "base",
    [
        ResNetConfig(blocks_per_stage=(1, 2, 1), widths=(16, 32, 64), stem_width=16),
        ResNetConfig(
            block="bottleneck", blocks_per_stage=(2, 1, 1), widths=(8, 16, 32), stem_width=16
        ),
        ResNetConfig(
            block="bottleneck",
            blocks_per_stage=(1, 1, 1),
            widths=(8, 16, 32),
            stem_width=16,
            stride_in_1x1=True,
            preact=True,
        ),
    ],
    ids=["basic", "bottleneck", "preact-v1-bottleneck"],
)
def test_model_shortcuts_match_branch_at_odd_sizes(shortcut: str, base: ResNetConfig) -> None:
    # An odd size is where a subsampled shortcut and a strided conv could disagree.
    model = build_model(base.replace(shortcut=shortcut))

    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 3, 97, 97))

    # 97 -> 49 (conv1) -> 25 (max pool) -> 25 -> 13 -> 7
    assert features.shape[-2:] == (7, 7)


def test_model_shortcut_c_projects_every_block() -> None:
    model = build_model(PRESETS["resnet18"].replace(shortcut="C"), device="meta")

    assert all(block.downsample is not None for stage in model.stages() for block in stage)
    assert count_parameters(model) > PRESETS_PARAMS["resnet18"]


PRESETS_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672}


def test_model_shortcut_a_subsamples_and_pads_zeros() -> None:
    shortcut = ZeroPadShortcut(16, 32, stride=2)
    x = torch.randn(2, 16, 9, 9)

    out = shortcut(x)

    assert out.shape == (2, 32, 5, 5)
    torch.testing.assert_close(out[:, :16], x[:, :, ::2, ::2])
    assert (out[:, 16:] == 0).all()
    assert list(shortcut.parameters()) == []


def test_model_plain_twin_drops_shortcuts_only() -> None:
    residual = build_model("resnet34", device="meta")
    plain = build_model("plain34", device="meta")

    residual_keys = set(residual.state_dict())
    plain_keys = set(plain.state_dict())
    projection_params = sum(
        p.numel() for name, p in residual.named_parameters() if ".downsample." in name
    )

    assert plain_keys < residual_keys
    assert all(".downsample." in key for key in residual_keys - plain_keys)
    assert count_parameters(plain) == PRESETS_PARAMS["resnet34"] - projection_params


def test_model_plain_twin_computes_differently() -> None:
    residual = build_model("resnet18")
    plain = build_model("plain18")
    plain.load_state_dict(residual.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 64)

    with torch.no_grad():
        assert not torch.allclose(residual(x), plain(x))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("resnet18", "relu"),
        ("resnet50", "relu"),
        ("preact_resnet18", "identity"),
        ("preact_resnet50", "identity"),
        ("seresnet50", "relu"),
    ],
)
def test_model_zero_init_residual_starts_blocks_as_identity(name: str, expected: str) -> None:
    model = build_model(PRESETS[name].replace(zero_init_residual=True))
    block = model.layer1[1]  # same shape in and out, identity shortcut
    x = torch.randn(1, block.conv1.in_channels, 8, 8)

    with torch.no_grad():
        out = block(x)

    torch.testing.assert_close(out, torch.relu(x) if expected == "relu" else x)


def test_model_preact_layout() -> None:
    model = build_model("preact_resnet164", device="meta")
    block = model.layer1[0]

    # BN comes first and normalises the block's input; the branch ends on a conv.
    assert block.bn1.num_features == 16 and block.conv3.out_channels == 64
    assert model.bn1 is None  # the CIFAR stem hands its bare conv output on
    assert model.final_bn is not None and model.final_bn.num_features == 256
    assert model.config.depth == 164


def test_model_se_unit_sizes() -> None:
    model = build_model("seresnet50", device="meta")

    assert model.layer1[0].se.fc1.out_channels == 16  # 256 / 16
    assert model.layer4[0].se.fc1.out_channels == 128  # 2048 / 16


@pytest.mark.parametrize(
    ("block", "dilated", "size", "dilations"),
    [
        # A dilated stage's first block keeps the previous dilation in its first 3x3 conv, as
        # in torchvision (bottleneck) and timm (basic).
        (
            "bottleneck",
            (3, 4),
            28,
            {"layer3.0.conv2": 1, "layer3.1.conv2": 2, "layer4.0.conv2": 2, "layer4.2.conv2": 4},
        ),
        ("bottleneck", (4,), 14, {"layer4.0.conv2": 1, "layer4.1.conv2": 2, "layer4.2.conv2": 2}),
        (
            "basic",
            (3, 4),
            28,
            {"layer3.0.conv1": 1, "layer3.0.conv2": 2, "layer4.0.conv1": 2, "layer4.1.conv1": 4},
        ),
    ],
)
def test_model_dilation_replaces_stride(
    block: str, dilated: tuple[int, ...], size: int, dilations: dict[str, int]
) -> None:
    base = PRESETS["resnet50" if block == "bottleneck" else "resnet18"]
    model = build_model(base.replace(dilated_stages=dilated), device="meta")

    features = model.forward_features(torch.empty(1, 3, 224, 224, device="meta"))

    assert features.shape[-2:] == (size, size)
    for name, dilation in dilations.items():
        conv = model.get_submodule(name)
        assert conv.dilation == (dilation, dilation) and conv.padding == (dilation, dilation)
        assert conv.stride == (1, 1), name


def test_model_custom_three_stage_net() -> None:
    config = ResNetConfig(
        block="bottleneck",
        blocks_per_stage=(1, 2, 1),
        widths=(32, 64, 128),
        groups=4,
        width_per_group=16,
        in_channels=1,
        num_classes=5,
        stem="deep",
        stem_width=32,
    )
    model = build_model(config)

    with torch.no_grad():
        out = model(torch.randn(3, 1, 80, 80))

    assert out.shape == (3, 5)
    assert model.layer3[0].conv2.groups == 4
    assert model.layer3[0].conv2.out_channels == 128  # 128 * 16 / 64 * 4


def test_model_rejects_unavailable_device() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=r"device 'cuda' is not available.*use one of meta, cpu"):
        build_model("resnet18", device="cuda")


def test_model_rejects_nonsense_device() -> None:
    with pytest.raises(ValueError, match=r"'gpu0' is not a device; use one of meta, cpu"):
        build_model("resnet18", device="gpu0")


def test_model_rejects_unknown_preset() -> None:
    with pytest.raises(ValueError, match=r"unknown preset 'resnet51'; did you mean"):
        build_model("resnet51")


def test_model_logs_what_it_built(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="resnet_viz"):
        build_model("resnet50", device="meta")

    assert "built resnet50 on meta: 25,557,032 parameters" in caplog.text


@pytest.mark.skipif(
    not platform.libc_ver()[0] == "glibc", reason="keep_freed_memory tunes glibc's allocator"
)
def test_keep_freed_memory_is_accepted_by_glibc() -> None:
    from resnet_viz.devices import keep_freed_memory

    # mallopt answers 1 for every setting it takes; a value out of its range would give 0.
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # the app may call it again after a reload
