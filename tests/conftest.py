"""Shared test helpers: the reference facts in tests/data and the deterministic weight recipe."""

from __future__ import annotations

import json
import math
import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "reference"


@cache
def reference_index() -> dict[str, Any]:
    return json.loads((REFERENCE / "index.json").read_text())


@cache
def reference(key: str) -> dict[str, Any]:
    """The facts of one reference model; `key` as in index.json, e.g. "timm/resnet50d"."""
    return json.loads((REFERENCE / reference_index()[key]["file"]).read_text())


@cache
def expected_outputs() -> list[dict[str, Any]]:
    return json.loads((REFERENCE / "expected_outputs.json").read_text())


def preset_of(key: str) -> str:
    """Our preset name for a reference key: "timm/resnet50d" -> "resnet50d"."""
    return key.split("/")[-1]


def deterministic_state_dict(entries: list[list[Any]]) -> dict[str, torch.Tensor]:
    """Weights drawn by the recipe of tests/data/README.md, one seed per entry."""
    state = {}
    for index, (key, shape) in enumerate(entries):
        generator = torch.Generator().manual_seed(index)
        if key.endswith("num_batches_tracked"):
            value = torch.zeros(shape, dtype=torch.long)
        elif key.endswith("running_mean"):
            value = torch.randn(shape, generator=generator) * 0.1
        elif key.endswith("running_var"):
            value = 1 + torch.rand(shape, generator=generator) * 0.1
        elif len(shape) >= 2:
            value = torch.randn(shape, generator=generator) * math.sqrt(1 / math.prod(shape[1:]))
        elif key.endswith("bias"):
            value = torch.randn(shape, generator=generator) * 0.1
        else:
            value = 1 + torch.randn(shape, generator=generator) * 0.1
        state[key] = value
    return state


def reference_input(height: int, width: int) -> torch.Tensor:
    return torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(1234))


# Rendering tests need the Graphviz program. A developer without it sees them skipped; CI sets
# RESNET_VIZ_REQUIRE_GRAPHVIZ=1 (in .ci/run, which installs it) so that they can never be.
needs_graphviz = pytest.mark.skipif(
    shutil.which("dot") is None and not os.environ.get("RESNET_VIZ_REQUIRE_GRAPHVIZ"),
    reason="the Graphviz program `dot` is not installed (./dev system installs it)",
)


APP = str(Path(__file__).parent.parent / "app.py")


def open_page(page: str, model: str, timeout: float = 60) -> Any:
    """An AppTest of the app with `model` in the link, switched to `page` (app_pages/...)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params["model"] = model
    at.run()
    return at.switch_page(page).run()


def cli_status(argv: list[str]) -> int:
    """The command line's exit status, also for argparse's own errors (which raise SystemExit)."""
    from resnet_viz.cli import main

    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
