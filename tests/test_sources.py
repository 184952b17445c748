"""Reading paths, bytes and open files, with one clear message for whatever goes wrong."""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from resnet_viz.sources import read_source

HINT = "give the path of a photo"


def test_sources_reads_path_bytes_and_open_file(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")

    assert read_source(path, "file", HINT) == b"abc"
    assert read_source(b"abc", "file", HINT) == b"abc"
    assert read_source(io.BytesIO(b"abc"), "file", HINT) == b"abc"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "nope.jpg", "does not exist; give the path"),
        (lambda tmp: tmp, "is a folder; give the path"),
        (lambda tmp: tmp / "nope" / "x.jpg", "does not exist"),
    ],
    ids=["missing", "folder", "missing-folder"],
)
def test_sources_paths_that_are_not_files(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        read_source(make(tmp_path), "image file", HINT)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are a POSIX feature")
def test_sources_pipe_is_not_called_missing(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)

    with pytest.raises(ValueError, match="is not a regular file \\(a pipe or a device\\)"):
        read_source(pipe, "image file", HINT)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
        (IsADirectoryError(errno.EISDIR, "Is a directory"), "it is a folder"),
        (OSError(errno.EIO, "Input/output error"), "the disk reported an input/output error"),
    ],
)
def test_sources_read_errors_become_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, reason: str
) -> None:
    # Root reads a file whatever its mode, so the refusal is simulated rather than chmod'ed.
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"abc")

    def refuse(self: Path) -> bytes:
        raise error

    monkeypatch.setattr(Path, "read_bytes", refuse)

    with pytest.raises(ValueError, match=f"cannot read image file .*photo.jpg.: {reason}; give"):
        read_source(path, "image file", HINT)


def test_sources_open_file_read_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.raises(ValueError, match="cannot read this checkpoint: permission denied"):
        read_source(Broken(), "checkpoint", HINT)


def test_sources_limit_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(2**20 + 1))

    with pytest.raises(ValueError, match="is 1 MB, over the limit of 1 MB"):
        read_source(path, "checkpoint", HINT, max_bytes=2**20)
    with pytest.raises(ValueError, match="is empty"):
        read_source(b"", "checkpoint", HINT)
