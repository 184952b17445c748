"""The `resnet-viz` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_viz import PRESETS
from resnet_viz.cli import main


def test_cli_presets_lists_every_preset_with_its_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0

    table = capsys.readouterr().out.split("\n\n")[0]
    rows = {line.split()[0]: line for line in table.splitlines()[2:]}

    assert set(rows) == set(PRESETS)
    assert rows["resnet50"].endswith("25,557,032")
    assert rows["resnet20"].endswith("269,722")
    assert rows["resnet1202"].endswith("19,421,274")
    assert " 50 " in rows["resnet50"]  # depth column


def test_cli_presets_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets", "--format", "json", "--family", "timm"]) == 0

    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}

    assert len(rows) == 11
    assert rows["resnet50d"]["params"] == 25_576_264
    assert rows["resnet10t"]["blocks_per_stage"] == [1, 1, 1, 1]


def test_cli_unknown_family_fails_with_one_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["presets", "--family", "vgg"])

    assert exit_info.value.code == 2
    assert "invalid choice: 'vgg'" in capsys.readouterr().err


def test_cli_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "resnet-viz"

    result = subprocess.run(
        [str(script), "presets", "--family", "torchvision"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "wide_resnet101_2" in result.stdout and "126,886,696" in result.stdout
