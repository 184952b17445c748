"""The catalogue of bad input, shared by the three entry points' tests.

Every entry writes a real file (a truncated PNG, a malicious pickle, a whole pickled model...)
and gives the words the message must contain: what was wrong, and what to do. The tests of the
Python API (test_bad_input_api.py), the command line (test_bad_input_cli.py) and the app
(test_bad_input_app.py) feed the same files through their own door, so a new kind of bad file
is added here once and checked everywhere. Nothing here is a test itself.
"""

from __future__ import annotations

import io
import pathlib
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save as save_safetensors

from resnet_viz import build_model

# The network every checkpoint below is for (or pretends to be): small, so that loading is fast.
NETWORK = "resnet20"


@dataclass(frozen=True)
class BadFile:
    """A file a user may hand in, and what the message about it must say.

    Attributes:
        name: The test id, and the file's name (with a plausible extension).
        make: Writes the file's bytes; given a folder for side effects to land in (a
            malicious pickle's marker file).
        problem: A regular expression for the part of the message that names the problem.
        remedy: One for the part that says what to do; None where the problem says it all.
    """

    name: str
    make: Callable[[Path], bytes]
    problem: str
    remedy: str | None = None


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` pixels in its header and holds one row of data.

    A decompression bomb costs nothing to make this way; only the header is ever read.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(b"\x00" * (1 + 3 * min(width, 64)))
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + data))
    idat = struct.pack(">I", len(data)) + b"IDAT" + data + crc
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat + iend


def _truncated_png(_: Path) -> bytes:
    data = _encode(Image.effect_noise((64, 64), 40).convert("RGB"), "PNG")
    return data[: len(data) // 2]


def _truncated_jpeg(_: Path) -> bytes:
    data = _encode(Image.effect_noise((64, 64), 40).convert("RGB"), "JPEG", quality=95)
    return data[:200]


PHOTO = "a photo saved as JPEG, PNG, WebP, BMP, TIFF or GIF|choose a photo"

IMAGES: list[BadFile] = [
    BadFile("empty.jpg", lambda _: b"", "this image file is empty", PHOTO),
    BadFile("notes.jpg", lambda _: b"just some notes\n", "text \\(or a document\\)", PHOTO),
    BadFile("page.png", lambda _: b"<!doctype html><html></html>", "text", PHOTO),
    BadFile("paper.jpg", lambda _: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "text", PHOTO),
    BadFile(
        "random.png",
        lambda _: bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
        "not an image in a format this program reads",
        PHOTO,
    ),
    BadFile("truncated.png", _truncated_png, "damaged or truncated", "export it again"),
    # Cut inside its header: Pillow cannot even open it.
    BadFile("truncated.jpg", _truncated_jpeg, "cannot be read as an image", "save it again"),
    # Over this program's limit, under Pillow's own: refused by the header check.
    BadFile(
        "60mp.png",
        lambda _: _png_header(8_000, 7_500),
        "8000 x 7500 = 60,000,000 pixels, over the limit of 50,000,000",
        "scale it down",
    ),
    # Over Pillow's limit too, which refuses it on opening.
    BadFile(
        "bomb.png",
        lambda _: _png_header(20_000, 20_000),
        "too many pixels to decode safely \\(over 50,000,000\\)",
        "scale it down",
    ),
    BadFile(
        "icon.ico",
        lambda _: _encode(Image.new("RGB", (16, 16), (1, 2, 3)), "ICO"),
        "ICO images are not supported",
        "use JPEG, PNG",
    ),
]


# -- checkpoints ------------------------------------------------------------------------


class MarkerPayload:
    """Unpickling this creates a file: the proof that a loader ran code stored in a pickle."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


MARKER = "pwned"


def torch_bytes(obj: Any, legacy: bool = False) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def weights_of(preset: str = NETWORK, seed: int = 7) -> dict[str, torch.Tensor]:
    return build_model(preset, seed=seed).state_dict()


def _torchscript(_: Path) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buffer)
    return buffer.getvalue()


def _zip_bomb(_: Path) -> bytes:
    """A zip shaped like torch.save's whose one entry inflates 60 MB from about 60 KB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("archive/data/0", "w", force_zip64=True) as entry:
            for _ in range(60):
                entry.write(bytes(2**20))
    return buffer.getvalue()


def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


SAVE_STATE_DICT = "torch.save\\(model.state_dict\\(\\), path\\)"
SAVE_AGAIN = "save it again|export it again|Save the weights again"

# Every entry is refused whatever network is asked for.
CHECKPOINTS: list[BadFile] = [
    BadFile("empty.pth", lambda _: b"", "this checkpoint is empty", "give the path"),
    BadFile("notes.pth", lambda _: b"just some text", "neither a PyTorch file", "safetensors"),
    BadFile(
        "plain.pkl",
        lambda _: pickle.dumps({"conv1.weight": [1.0, 2.0]}),
        "plain Python pickle, not a PyTorch checkpoint.*unpickling can run any code",
        SAVE_STATE_DICT,
    ),
    BadFile(
        "malicious-zip.pth",
        lambda folder: torch_bytes({"x": MarkerPayload(folder / MARKER)}),
        "Python objects besides tensors.*not loaded, because unpickling",
        SAVE_STATE_DICT,
    ),
    BadFile(
        "malicious-legacy.pth",
        lambda folder: torch_bytes({"x": MarkerPayload(folder / MARKER)}, legacy=True),
        "Python objects besides tensors.*not loaded, because unpickling",
        SAVE_STATE_DICT,
    ),
    BadFile(
        "malicious-wrapped.pth",
        lambda folder: torch_bytes(
            {"state_dict": {**weights_of(), "fc.weight": MarkerPayload(folder / MARKER)}}
        ),
        "Python objects besides tensors.*not loaded, because unpickling",
        SAVE_STATE_DICT,
    ),
    BadFile(
        "malicious-plain.pkl",
        lambda folder: pickle.dumps({"x": MarkerPayload(folder / MARKER)}),
        "plain Python pickle.*not opened",
        SAVE_STATE_DICT,
    ),
    BadFile(
        "whole-model.pt",
        lambda _: torch_bytes(build_model(NETWORK)),
        "whole pickled model \\(resnet_viz.model.ResNet\\)",
        SAVE_STATE_DICT,
    ),
    BadFile(
        "whole-model-legacy.pt",
        lambda _: torch_bytes(build_model(NETWORK), legacy=True),
        "whole pickled model",
        SAVE_STATE_DICT,
    ),
    BadFile("torchscript.pt", _torchscript, "TorchScript archive", SAVE_STATE_DICT),
    BadFile(
        "truncated-zip.pth",
        lambda _: _cut(torch_bytes(weights_of())),
        "damaged or not a checkpoint",
        SAVE_AGAIN,
    ),
    BadFile(
        "truncated-legacy.pth",
        lambda _: _cut(torch_bytes(weights_of(), legacy=True)),
        "damaged or not a checkpoint",
        SAVE_AGAIN,
    ),
    BadFile(
        "truncated.safetensors",
        lambda _: _cut(save_safetensors(weights_of())),
        "safetensors file is damaged",
        SAVE_AGAIN,
    ),
    BadFile("bomb.pth", _zip_bomb, "unpacks to 60 MB .* more than 100:1", SAVE_AGAIN),
    BadFile(
        "list.pth",
        lambda _: torch_bytes([torch.zeros(2)]),
        "holds a list, not a dict of named tensors",
        SAVE_STATE_DICT,
    ),
    BadFile(
        "no-tensors.pth",
        lambda _: torch_bytes({"epoch": 3, "arch": NETWORK}),
        "no tensors at its top level",
    ),
    BadFile(
        "meta.pth",
        lambda _: torch_bytes(build_model(NETWORK, device="meta").state_dict()),
        "holds no values \\(meta tensors",
        "save the weights of a network built on a real device",
    ),
    BadFile(
        "sparse.pth",
        lambda _: torch_bytes({**weights_of(), "fc.weight": weights_of()["fc.weight"].to_sparse()}),
        "sparse tensors",
        "to_dense",
    ),
    BadFile(
        "not-a-resnet.pth",
        lambda _: torch_bytes(torch.nn.Linear(3, 2).state_dict()),
        # Asked for resnet20, the message lists the keys that differ instead.
        "not those of a ResNet this program builds|does not fit resnet20: 97 missing",
    ),
]

# The right kind of file for the wrong network: refused when NETWORK is asked for.
WRONG_ARCHITECTURE = BadFile(
    "resnet32.pth",
    lambda _: torch_bytes(weights_of("resnet32")),
    "the checkpoint holds resnet32 .*not resnet20",
    "leave out the model to use the checkpoint's own",
)


# -- configurations ---------------------------------------------------------------------

# One invalid value per field of ResNetConfig, with the words the message must contain (it
# names the field). Applied to NETWORK's configuration.
BAD_FIELDS: list[tuple[str, Any, str]] = [
    ("block", "basik", "block"),
    ("blocks_per_stage", [], "blocks_per_stage is empty"),
    ("blocks_per_stage", [3, 0, 3], "blocks_per_stage"),
    ("blocks_per_stage", [600, 600], "blocks"),
    ("widths", [16, -32, 64], "widths"),
    ("widths", [16, 32], "widths"),
    ("widths", [16, 32, 100_000], "widths"),
    ("groups", 0, "groups"),
    ("width_per_group", -4, "width_per_group"),
    ("stem", "vgg", "stem"),
    ("stem_width", 0, "stem_width"),
    ("stride_in_1x1", "maybe", "stride_in_1x1"),
    ("shortcut", "E", "shortcut"),
    ("preact", 2, "preact"),
    ("se", "yes", "se"),
    ("residual", None, "residual"),
    ("dilated_stages", [1], "dilated_stages"),
    ("zero_init_residual", "no", "zero_init_residual"),
    ("in_channels", 0, "in_channels"),
    ("num_classes", 0, "num_classes"),
    ("colour", "blue", "colour"),
]
