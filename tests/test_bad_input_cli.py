"""Every bad input the command line can receive: one line on standard error and exit status 2.

The files come from tests/bad_inputs.py, shared with the Python API's and the app's tests.
"""

from __future__ import annotations

import json
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
from conftest import cli_status
from test_images import IMAGE_MATRIX

from resnet_viz import PRESETS
from resnet_viz.images import sample_images
from resnet_viz.model import ResNet

CHELSEA = str(sample_images()["chelsea"])


def _one_error_line(capsys: pytest.CaptureFixture[str], status: int) -> str:
    """The single error line, after checking the status and that nothing else was printed."""
    out, err = capsys.readouterr()
    assert status == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("resnet-viz: error: "), err
    assert "Traceback" not in err and not out
    return lines[0]


def _assert_names(line: str, case: BadFile) -> None:
    assert re.search(case.problem, line), line
    if case.remedy:
        assert re.search(case.remedy, line), line


@pytest.mark.parametrize("case", IMAGES, ids=[case.name for case in IMAGES])
@pytest.mark.parametrize("command", ["activations", "cam"])
def test_bad_input_cli_images(
    case: BadFile, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / case.name
    image.write_bytes(case.make(tmp_path))
    weights = tmp_path / "w.pth"
    torch.save(ResNet(PRESETS[NETWORK]).state_dict(), weights)
    out = str(tmp_path / "out.png")

    status = cli_status(
        [command, str(image), "--weights", str(weights), "--layer", "layer3", "-o", out]
    )

    _assert_names(_one_error_line(capsys, status), case)
    assert not Path(out).exists()


@pytest.mark.parametrize("case", CHECKPOINTS, ids=[case.name for case in CHECKPOINTS])
@pytest.mark.parametrize("command", ["activations", "cam"])
def test_bad_input_cli_checkpoints(
    case: BadFile, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / case.name
    weights.write_bytes(case.make(tmp_path))
    out = str(tmp_path / "out.png")

    status = cli_status(
        [command, CHELSEA, "--weights", str(weights), "--layer", "layer3", "-o", out]
    )

    _assert_names(_one_error_line(capsys, status), case)
    assert not (tmp_path / MARKER).exists()  # no code stored in the file ran
    assert not Path(out).exists()


def test_bad_input_cli_wrong_architecture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / WRONG_ARCHITECTURE.name
    weights.write_bytes(WRONG_ARCHITECTURE.make(tmp_path))

    status = cli_status(
        ["cam", CHELSEA, "--model", NETWORK, "--weights", str(weights), "-o", "x.png"]
    )

    _assert_names(_one_error_line(capsys, status), WRONG_ARCHITECTURE)


@pytest.mark.parametrize(
    ("field", "value", "words"), BAD_FIELDS, ids=[f"{f}={v!r}" for f, v, _ in BAD_FIELDS]
)
def test_bad_input_cli_every_config_field(
    field: str, value: Any, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = json.dumps({**PRESETS[NETWORK].to_dict(), field: value})

    status = cli_status(["summary", spec])

    assert words in _one_error_line(capsys, status)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["summary", "resnet18", "--input", "3x"], "input"),
        (["summary", "resnet18", "--input", "99999"], "4096"),
        (["summary", "resnet18", "--batch", "two"], "invalid int value"),
        (["summary", "resnet18", "--device", "tpu"], "use one of meta, cpu"),
        (["summary", "resnet18", "--device", "cuda:3"], "not available"),
        (["summary", "resnet9000"], "resnet9000"),
        (["summary", "{not json"], "not valid JSON"),
        (["summary", "missing/config.json"], "does not exist"),
        (["table", "resnet18", "nope"], "nope"),
        (["diagram", "resnet18", "--timeout", "-1"], "seconds above 0"),
        (["diagram", "resnet18", "--level", "bricks"], "invalid choice"),
        (["diagram", "resnet18", "-o", "x.gif"], "cannot tell a format"),
        (["diagram", "resnet18", "--highlight", "layer9"], "layer9"),
        (
            ["activations", CHELSEA, "--layer", "layer1.0.relu (3)", "--format", "json"],
            "has no call 3",
        ),
        (
            ["activations", CHELSEA, "--layer", "layer1", "--device", "cuda", "--format", "json"],
            "not available",
        ),
        (
            ["activations", CHELSEA, "--layer", "layer1", "--size", "2", "--format", "json"],
            "8 to 4096",
        ),
        (["activations", CHELSEA, "--layer", "layer1"], "give -o FILE.png"),
        (["activations", "nowhere.jpg", "--layer", "layer1", "--format", "json"], "does not exist"),
        (["cam", CHELSEA, "--weights", "IMAGENET1K_V9", "-o", "x.png"], "publishes no"),
        (["presets", "--family", "vgg"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
        # Covered in test_cli.py: --input 0, --batch 0, --dtype int8, --device cuda, a pass
        # too large for memory, an unknown layer, --device meta, cam without weights, --channels.
    ],
    ids=lambda value: " ".join(value)[:60] if isinstance(value, list) else "",
)
def test_bad_input_cli_options(
    argv: list[str],
    words: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if "cuda" in " ".join(argv) and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.chdir(tmp_path)  # a stray output file would land here, not in the checkout

    line = _one_error_line(capsys, cli_status(argv))

    assert re.search(words, line), line


def test_bad_input_cli_out_of_memory_is_one_line_and_frees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No GPU here, so a CUDA allocation cannot really fail: the network's forward raises
    # PyTorch's own out-of-memory class (what CUDA's allocator raises) after running its stem
    # for real, and the whole command around it (loading, hooks, the message) is the real one.
    real_forward = ResNet.forward

    def full_gpu(self: ResNet, x: torch.Tensor) -> torch.Tensor:
        if x.is_meta:
            return real_forward(self, x)  # the memory estimate allocates nothing, cannot fail
        self.conv1(x)
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    monkeypatch.setattr(ResNet, "forward", full_gpu)
    out = tmp_path / "grid.png"

    status = cli_status(["activations", CHELSEA, "--layer", "layer1", "-o", str(out)])

    line = _one_error_line(capsys, status)
    assert "ran out of memory on cpu (CUDA out of memory" in line
    assert "smaller input" in line and not out.exists()
    monkeypatch.setattr(ResNet, "forward", real_forward)
    assert cli_status(["activations", CHELSEA, "--layer", "layer1", "-o", str(out)]) == 0


@pytest.mark.parametrize(
    ("make", "notice"),
    [(case[1], case[4]) for case in IMAGE_MATRIX],
    ids=[case[0] for case in IMAGE_MATRIX],
)
def test_bad_input_cli_every_image_mode_runs_through(
    make: Any, notice: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Odd but valid pictures (CMYK, 16-bit, float, palette, transparent, animated) go through
    # the whole command; what changed on the way is a note, never an error.
    image = tmp_path / "odd.img"
    image.write_bytes(make())

    status = cli_status(
        ["activations", str(image), "--model", NETWORK, "--layer", "layer1", "--format", "json"]
    )

    out, err = capsys.readouterr()
    assert status == 0, err
    assert json.loads(out)["shape"] == [1, 16, 32, 32]
    if notice:
        assert notice in err and err.startswith("resnet-viz: note: ")
