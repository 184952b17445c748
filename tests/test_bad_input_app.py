"""Every bad input the app can receive, through AppTest: a message in the page, never a
traceback, and the shared cached model untouched.

The files come from tests/bad_inputs.py, shared with the Python API's and the command line's
tests. Each catalogue runs in one session, file after file, as a user trying one thing after
another would; every step checks the page and the shared model again.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import streamlit as st
import torch
from bad_inputs import CHECKPOINTS, IMAGES, MARKER, NETWORK
from conftest import open_page
from streamlit.testing.v1 import AppTest
from test_images import IMAGE_MATRIX

from app_pages.activation_data import random_network
from app_pages.activations import CHECKPOINT_TYPES, IMAGE_TYPES
from resnet_viz.model import ResNet

ACTIVATIONS = "app_pages/activations.py"

# Pages that read the sidebar's model; the lead adds a new page here with one line.
PAGES = [
    "app_pages/build.py",
    "app_pages/architecture.py",
    ACTIVATIONS,
    "app_pages/compute.py",
    "app_pages/compare.py",
    "app_pages/lecture.py",
]

# One invalid value per field, as the link carries it (ResNetConfig's token keys), and tokens
# that are not tokens at all.
BAD_TOKENS = [
    "resnet20~b-basik",
    "resnet20~n-3.0.3",
    "resnet20~n-600.600",
    "resnet20~w-16.32",
    "resnet20~w-16.32.99999",
    "resnet20~g-0",
    "resnet20~gw-0",
    "resnet20~s-vgg",
    "resnet20~sw-0",
    "resnet20~v1-2",
    "resnet20~sc-E",
    "resnet20~pre-yes",
    "resnet20~se-2",
    "resnet20~res-x",
    "resnet20~dil-1",
    "resnet20~zi-3",
    "resnet20~in-0",
    "resnet20~nc-0",
    "resnet20~colour-blue",
    "resnet9000",
    "resnet20~n",
    "<script>alert(1)</script>",
    "x" * 30_000,
]

# A network whose random weights (about 400 GB) fit on no machine this runs on: the Build and
# Architecture pages work on meta, and the Activations page must say that it cannot build it.
TOO_BIG = "resnet50~n-50.50~w-8192.8192"


def _fingerprint(model: torch.nn.Module) -> tuple[float, bool, bool]:
    """(weights checksum, any hook left, training mode) of a shared model."""
    checksum = float(sum(t.double().sum() for t in model.state_dict().values()))
    hooks = any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    return checksum, hooks, model.training


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


@pytest.mark.parametrize("page", PAGES)
def test_bad_input_app_every_bad_link(page: str) -> None:
    at = open_page(page, "resnet20", timeout=120)
    # The fallback is one code path for every page (app_pages/shared.py); the other pages
    # take a few tokens, as each run there computes resnet50's pictures.
    tokens = BAD_TOKENS if page == PAGES[0] else BAD_TOKENS[::8]

    for token in tokens:
        at.query_params["model"] = token
        at.run()

        assert not at.exception, token
        warning = [w.value for w in at.warning if "could not be read" in w.value]
        # The session keeps the network it had: nothing the user built is lost to a bad link.
        assert warning and "showing resnet20" in warning[0], token
        assert len(warning[0]) < 600, token  # a 30,000-character token is not echoed whole


def test_bad_input_app_photos(tmp_path: Path) -> None:
    at = open_page(ACTIVATIONS, NETWORK, timeout=120)
    shared = random_network(NETWORK)
    before = _fingerprint(shared.model)
    at.button_group(key="act_source").set_value("upload").run()

    for case in IMAGES:
        # The uploader takes only the listed extensions (the browser enforces it); a file of
        # another format arrives renamed, and its content decides.
        name = case.name if Path(case.name).suffix[1:] in IMAGE_TYPES else case.name + ".png"
        upload = (name, case.make(tmp_path), "image/png")
        at.file_uploader(key="act_upload").set_value(upload).run()

        assert not at.exception, case.name
        message = next((e for e in _errors(at) if e.startswith(name + ":")), "")
        assert re.search(case.problem, message), (case.name, _errors(at))
        if case.remedy:
            assert re.search(case.remedy, message), message
        assert not at.tabs  # nothing is computed from a photo that was not read
        assert _fingerprint(shared.model) == before


def test_bad_input_app_checkpoints(tmp_path: Path) -> None:
    at = open_page(ACTIVATIONS, NETWORK, timeout=120)
    shared = random_network(NETWORK)
    before = _fingerprint(shared.model)
    at.radio(key="act_weights").set_value("checkpoint").run()

    for case in CHECKPOINTS:
        suffix = Path(case.name).suffix[1:]
        name = case.name if suffix in CHECKPOINT_TYPES else case.name + ".pth"
        upload = (name, case.make(tmp_path), "application/octet-stream")
        at.file_uploader(key="act_checkpoint").set_value(upload).run()

        assert not at.exception, case.name
        message = next((e for e in _errors(at) if e.startswith(name)), "")
        assert re.search(case.problem, message), (case.name, _errors(at))
        if case.remedy:
            assert re.search(case.remedy, message), message
        assert not at.success  # nothing is shown as loaded
        assert not (tmp_path / MARKER).exists()  # no code stored in the file ran
        # The page goes on with the random weights alone, and they are untouched.
        grids = [c for image in at.get("image") for c in image.captions if "layer3" in c]
        assert grids and all("random initialisation" in c for c in grids), case.name
        assert _fingerprint(shared.model) == before


def test_bad_input_app_network_too_big_for_memory() -> None:
    at = open_page(ACTIVATIONS, TOO_BIG, timeout=120)

    assert not at.exception
    message = next(e for e in _errors(at) if "GiB" in e)
    assert message.startswith("resnet50 with blocks_per_stage=(50, 50), widths=(8192, 8192) is too")
    assert "is free; choose fewer or narrower stages" in message
    assert "Build and Architecture pages show it" in message
    assert not at.tabs


def test_bad_input_app_out_of_memory_is_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    # No GPU here, so a CUDA allocation cannot really fail: the network's forward raises
    # PyTorch's own out-of-memory class (what CUDA's allocator raises) after running its stem
    # for real; the page, its caches and the library's guards around it are the real ones.
    real_forward = ResNet.forward

    def full_gpu(self: ResNet, x: torch.Tensor) -> torch.Tensor:
        if x.is_meta:
            return real_forward(self, x)  # the analysis allocates nothing, so cannot fail
        self.conv1(x)
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    st.cache_data.clear()  # results cached by other tests would skip the pass
    monkeypatch.setattr(ResNet, "forward", full_gpu)
    at = open_page(ACTIVATIONS, "resnet32", timeout=120)

    assert not at.exception
    messages = [e for e in _errors(at) if "ran out of memory" in e]
    assert messages and "cached memory has been freed" in messages[0]
    shared = random_network("resnet32")
    assert _fingerprint(shared.model)[1:] == (False, False)

    monkeypatch.undo()
    at.run()  # memory is back: the same session now shows the maps

    assert not at.exception and not _errors(at)
    assert any(c.startswith("layer3") for image in at.get("image") for c in image.captions)


def test_bad_input_app_every_image_mode_is_shown() -> None:
    # Odd but valid pictures (CMYK, 16-bit, float, palette, transparent, animated) are shown,
    # with a notice where the network sees something other than the file's own pixels.
    at = open_page(ACTIVATIONS, NETWORK, timeout=120)
    at.button_group(key="act_source").set_value("upload").run()

    for name, make, fmt, _, notice in IMAGE_MATRIX:
        at.file_uploader(key="act_upload").set_value((f"{name}.png", make(), "image/png")).run()

        assert not at.exception and not at.error, name
        assert any(c.startswith(f"{name}.png: 8x6 {fmt}") for c in _captions(at)), name
        if notice:
            assert any(notice in i.value for i in at.info), name
        assert at.tabs, name


def _captions(at: AppTest) -> list[str]:
    return [caption for image in at.get("image") for caption in image.captions]
