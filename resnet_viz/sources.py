"""Reading what a user hands in (a path, an upload's bytes or an open file) with clear errors."""

from __future__ import annotations

import errno
import stat
from pathlib import Path
from typing import BinaryIO

# What the operating system's refusals mean to a user, in the words of the messages.
_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "it is a folder",
    errno.ENOENT: "it does not exist",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.ELOOP: "it is a loop of symbolic links",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EIO: "the disk reported an input/output error",
}


def read_source(
    source: str | Path | bytes | BinaryIO, kind: str, hint: str, max_bytes: int | None = None
) -> bytes:
    """The bytes of `source`, or a ValueError that names the `kind` of file and gives a `hint`.

    Args:
        source: A path, bytes, or a binary file open for reading.
        kind: What the file should be, for messages: "image file", "checkpoint".
        hint: What to do instead, for messages: "give the path of a photo".
        max_bytes: Refuse anything larger, before reading it where the size is known.

    Raises:
        ValueError: For a path that is missing, a folder, not a regular file (a pipe or a
            device such as /dev/stdin, whose size cannot be known beforehand), or unreadable;
            for a file that is empty or over `max_bytes`.
    """
    limit = "" if max_bytes is None else f", over the limit of {max_bytes // 2**20} MB"
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        data = _read_path(Path(source), kind, hint, max_bytes, limit)
    else:
        try:
            # One byte more than allowed is enough to tell that it is too large.
            data = source.read() if max_bytes is None else source.read(max_bytes + 1)
        except OSError as err:
            raise ValueError(f"cannot read this {kind}: {_reason(err)}; {hint}") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise ValueError(f"this {kind} is larger than {max_bytes // 2**20} MB{limit}")
    if not data:
        raise ValueError(f"this {kind} is empty; {hint}")
    return data


def _read_path(path: Path, kind: str, hint: str, max_bytes: int | None, limit: str) -> bytes:
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ValueError(f"{kind} {str(path)!r} is a folder; {hint}")
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(
                f"{kind} {str(path)!r} is not a regular file (a pipe or a device); save it to "
                f"a file first and give that path"
            )
        if max_bytes is not None and info.st_size > max_bytes:
            raise ValueError(f"{kind} {str(path)!r} is {info.st_size / 2**20:.0f} MB{limit}")
        return path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{kind} {str(path)!r} does not exist; {hint}") from None
    except OSError as err:
        raise ValueError(f"cannot read {kind} {str(path)!r}: {_reason(err)}; {hint}") from None


def _reason(err: OSError) -> str:
    return _REASONS.get(err.errno or 0) or (err.strerror or type(err).__name__).lower()
