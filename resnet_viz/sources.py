"""Reading what a user hands in (a path, an upload's bytes or an open file) with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO


def read_source(
    source: str | Path | bytes | BinaryIO, kind: str, hint: str, max_bytes: int | None = None
) -> bytes:
    """The bytes of `source`, or a ValueError that names the `kind` of file and gives a `hint`.

    Args:
        source: A path, bytes, or a binary file open for reading.
        kind: What the file should be, for messages: "image file", "checkpoint".
        hint: What to do instead, for messages: "give the path of a photo".
        max_bytes: Refuse anything larger, before reading it where the size is known.
    """
    limit = "" if max_bytes is None else f", over the limit of {max_bytes // 2**20} MB"
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise ValueError(f"{kind} {str(path)!r} {what}; {hint}")
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise ValueError(f"{kind} {str(path)!r} is {size / 2**20:.0f} MB{limit}")
        data = path.read_bytes()
    else:
        # One byte more than allowed is enough to tell that it is too large.
        data = source.read() if max_bytes is None else source.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise ValueError(f"this {kind} is larger than {max_bytes // 2**20} MB{limit}")
    if not data:
        raise ValueError(f"this {kind} is empty; {hint}")
    return data
