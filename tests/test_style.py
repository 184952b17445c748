"""The house rules that tools can check: ruff's lint and format, and mypy on the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_style_tool_passes(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_style_library_does_not_print() -> None:
    # The library logs; only the command line writes to the terminal.
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "resnet_viz").rglob("*.py")
        if path.name != "cli.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if line.lstrip().startswith("print(")
    ]

    assert offenders == []
