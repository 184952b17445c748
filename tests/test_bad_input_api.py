"""Every bad input the Python API can receive: a ValueError with a clear message, state intact.

The files come from tests/bad_inputs.py, shared with the command line's and the app's tests.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from bad_inputs import (
    BAD_FIELDS,
    CHECKPOINTS,
    IMAGES,
    MARKER,
    NETWORK,
    WRONG_ARCHITECTURE,
    BadFile,
)
from torch import nn

from resnet_viz import PRESETS, ResNetConfig, build_model
from resnet_viz.activations import (
    capture,
    effective_receptive_field,
    grad_cam,
    residual_anatomy,
    residual_response_std,
)
from resnet_viz.analysis import analyze
from resnet_viz.devices import DeviceMemoryError, available_memory, resolve_device
from resnet_viz.images import MAX_FILE_BYTES, load_image
from resnet_viz.weights import MAX_CHECKPOINT_BYTES, load_checkpoint


def _assert_clear(message: str, case: BadFile) -> None:
    """One line that names the problem and, where the entry has one, what to do."""
    assert "\n" not in message and "Traceback" not in message
    assert re.search(case.problem, message), message
    if case.remedy:
        assert re.search(case.remedy, message), message


def _checksum(model: nn.Module) -> float:
    return float(sum(t.double().sum() for t in model.state_dict().values()))


@pytest.mark.parametrize("case", IMAGES, ids=[case.name for case in IMAGES])
@pytest.mark.parametrize("form", ["path", "bytes"])
def test_bad_input_api_images(case: BadFile, form: str, tmp_path: Path) -> None:
    data = case.make(tmp_path)
    path = tmp_path / case.name
    path.write_bytes(data)

    with pytest.raises(ValueError) as error:
        load_image(path if form == "path" else data)

    _assert_clear(str(error.value), case)


@pytest.mark.parametrize("case", CHECKPOINTS, ids=[case.name for case in CHECKPOINTS])
def test_bad_input_api_checkpoints(case: BadFile, tmp_path: Path) -> None:
    # With the network named; the command line's tests take the checkpoint's own.
    path = tmp_path / case.name
    path.write_bytes(case.make(tmp_path))

    with pytest.raises(ValueError) as error:
        load_checkpoint(path, config=NETWORK)

    _assert_clear(str(error.value), case)
    assert not (tmp_path / MARKER).exists()  # no code stored in the file ran


def test_bad_input_api_wrong_architecture(tmp_path: Path) -> None:
    path = tmp_path / WRONG_ARCHITECTURE.name
    path.write_bytes(WRONG_ARCHITECTURE.make(tmp_path))

    with pytest.raises(ValueError) as error:
        load_checkpoint(path, config=NETWORK)

    _assert_clear(str(error.value), WRONG_ARCHITECTURE)


@pytest.mark.parametrize(
    ("kind", "limit"), [("image", MAX_FILE_BYTES), ("checkpoint", MAX_CHECKPOINT_BYTES)]
)
def test_bad_input_api_oversized_files_are_refused_unread(
    kind: str, limit: int, tmp_path: Path
) -> None:
    path = tmp_path / "huge.bin"
    with path.open("wb") as stream:
        stream.truncate(limit + 1)  # sparse: nothing is written to disk

    with pytest.raises(ValueError, match=f"over the limit of {limit // 2**20} MB"):
        (load_image if kind == "image" else load_checkpoint)(path)


@pytest.mark.parametrize(
    ("field", "value", "words"), BAD_FIELDS, ids=[f"{f}={v!r}" for f, v, _ in BAD_FIELDS]
)
def test_bad_input_api_every_config_field(field: str, value: Any, words: str) -> None:
    data = {**PRESETS[NETWORK].to_dict(), field: value}

    with pytest.raises(ValueError) as error:
        ResNetConfig.from_dict(data)

    assert words in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"input_size": 0}, "input"),
        ({"input_size": -5}, "input"),
        ({"input_size": "big"}, "input"),
        ({"input_size": (1, 2, 3)}, "input"),
        ({"input_size": 10_000}, "4096"),
        ({"batch": 0}, "batch must be an integer"),
        ({"batch": 2.5}, "batch must be an integer"),
        ({"dtype": "int8"}, "dtype|float32"),
        ({"device": "tpu"}, "use one of meta, cpu"),
        ({"device": "cuda:7"}, "not available"),
        ({"device": "cpu:1"}, "no numbered devices"),
    ],
)
def test_bad_input_api_analysis_options(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        analyze("resnet18", **kwargs)


@pytest.mark.parametrize("device", ["cuda", "tpu", "mps:3"])
def test_bad_input_api_unavailable_devices_when_building(device: str) -> None:
    if device in ("cuda",) and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")

    with pytest.raises(ValueError, match="use one of meta, cpu"):
        build_model(NETWORK, device=device)


@pytest.fixture(scope="module")
def network() -> nn.Module:
    return build_model(NETWORK, seed=0)


@pytest.mark.parametrize(
    ("run", "words"),
    [
        (lambda m, x: capture(m, x, ["layer9"]), "no layer named 'layer9'"),
        (lambda m, x: capture(m, x, ["layer1.0.conv3"]), "no layer named .*did you mean"),
        (lambda m, x: capture(m, x, ["layer1.0.relu (3)"]), "has no call 3"),
        (lambda m, x: capture(m, x, ["layer1 ("]), "not a layer name"),
        (lambda m, x: capture(m, x, ["layer1.0.relu (0)"]), "counted from 1"),
        (lambda m, x: capture(m, x[0], ["layer1"]), "must be \\(N, C, H, W\\)"),
        (lambda m, x: grad_cam(m, x, "layer7"), "no layer named 'layer7'"),
        (lambda m, x: grad_cam(m, x, "layer3", 10), "class 10 does not exist"),
        (lambda m, x: grad_cam(m, x, "layer3", -1), "class -1 does not exist"),
        (lambda m, x: grad_cam(m, x, "fc"), "no feature map"),
        (lambda m, x: residual_anatomy(m, x, "layer1.0.conv1"), "not a residual block"),
        (lambda m, x: residual_anatomy(m, x, "layer5.0"), "no layer named"),
        (lambda m, x: effective_receptive_field(m, x, "layer3", (99, 0)), "outside"),
        (lambda m, x: effective_receptive_field(m, x, "nowhere"), "no layer named"),
    ],
    ids=lambda value: "" if callable(value) else value,
)
def test_bad_input_api_layers_and_options(network: nn.Module, run: Any, words: str) -> None:
    before = _checksum(network)

    with pytest.raises(ValueError, match=words):
        run(network, torch.randn(1, 3, 32, 32))

    # Intact: same weights, eval mode, no hooks left behind after the error.
    assert _checksum(network) == before and not network.training
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in network.modules())


# -- memory guards ----------------------------------------------------------------------


def _huge_input() -> torch.Tensor:
    # A view: the batch of 4096 pictures of 2048 x 2048 costs 48 KB, not 200 GB, so the test
    # itself allocates nothing; the pass it asks for would need far more than any machine has.
    return torch.zeros(1, 3, 2048, 2048).expand(4096, 3, 2048, 2048)


@pytest.mark.parametrize(
    "run",
    [
        lambda m, x: capture(m, x, ["layer1"]),
        lambda m, x: grad_cam(m, x, "layer3"),
        lambda m, x: residual_anatomy(m, x, "layer1.0"),
        lambda m, x: residual_response_std(m, x),
        lambda m, x: effective_receptive_field(m, x, "layer2"),
    ],
    ids=["capture", "grad_cam", "anatomy", "response_std", "erf"],
)
def test_bad_input_api_pass_that_cannot_fit_is_refused_before_it_runs(
    network: nn.Module, run: Any
) -> None:
    assert available_memory(torch.device("cpu")) is not None  # Linux: /proc/meminfo

    with pytest.raises(DeviceMemoryError, match="GiB on cpu, but only .* GiB is free"):
        run(network, _huge_input())

    assert not any(m._forward_hooks or m._forward_pre_hooks for m in network.modules())


def test_bad_input_api_real_analysis_that_cannot_fit_is_refused() -> None:
    with pytest.raises(DeviceMemoryError, match="a real pass of this network"):
        analyze("resnet18", input_size=4096, batch=4096, device="cpu")


class _OutOfMemoryOnForward(nn.Module):
    """A real module whose forward fails as a full GPU does.

    This machine has no GPU, so a CUDA allocation cannot really fail here; the exception is
    PyTorch's own class (torch.OutOfMemoryError, which CUDA's allocator raises), raised from
    inside a real forward pass with real hooks attached, so everything around it (the hook
    removal, the mode restore, the message) runs as it would on a full GPU.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if x.is_meta:
            return out  # the memory estimate's pass on meta allocates nothing, so cannot fail
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


@pytest.mark.parametrize(
    "run",
    [
        lambda m, x: capture(m, x, ["conv"]),
        lambda m, x: grad_cam(m, x, "conv"),
    ],
    ids=["capture", "grad_cam"],
)
def test_bad_input_api_out_of_memory_during_a_pass_is_a_message(run: Any) -> None:
    model = _OutOfMemoryOnForward().train()

    with pytest.raises(DeviceMemoryError) as error:
        run(model, torch.randn(1, 3, 16, 16))

    message = str(error.value)
    assert "ran out of memory on cpu (CUDA out of memory" in message
    assert "cached memory has been freed" in message and "smaller input" in message
    assert model.training  # the mode is restored
    assert not model.conv._forward_hooks


def test_bad_input_api_resolve_device_names_what_is_there() -> None:
    with pytest.raises(ValueError, match="'gpu' is not a device; use one of meta, cpu"):
        resolve_device("gpu")
