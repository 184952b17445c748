"""Which devices this machine can run a model on, and clear errors for those it cannot."""

from __future__ import annotations

import ctypes
import logging

import torch

logger = logging.getLogger(__name__)


def available_devices() -> list[str]:
    """Devices present here, in the order a user would pick them: "meta" and "cpu" always."""
    devices = ["meta", "cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(device: str | torch.device) -> torch.device:
    """Parse a device and check that it is present; ValueError says what is available."""
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"{device!r} is not a device; use one of {', '.join(available_devices())}"
        ) from None

    if target.type in ("cpu", "meta") and target.index not in (None, 0):
        raise ValueError(
            f"device {str(device)!r} does not exist: {target.type} has no numbered devices; "
            f"use {target.type!r}"
        )
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {str(device)!r} is not available: this PyTorch "
                f"({torch.__version__}) sees no CUDA GPU; use one of "
                f"{', '.join(available_devices())}"
            )
        index = 0 if target.index is None else target.index
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r} is not available: there are "
                f"{torch.cuda.device_count()} CUDA device(s); use one of "
                f"{', '.join(available_devices())}"
            )
        return torch.device("cuda", index)
    if target.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device 'mps' is not available on this machine; use one of "
            f"{', '.join(available_devices())}"
        )
    if target.type not in ("cpu", "meta", "cuda", "mps"):
        raise ValueError(
            f"device type {target.type!r} is not supported here; use one of "
            f"{', '.join(available_devices())}"
        )
    return torch.device(target.type) if target.type in ("cpu", "meta") else target


def available_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on `device`, or None where this cannot be told."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as meminfo:
                for line in meminfo:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    # LIMITATION: no check on mps or where /proc/meminfo is missing (macOS, Windows); there,
    # a request that does not fit fails with PyTorch's own out-of-memory error.
    return None


def check_fits(needed: int, device: torch.device, what: str) -> None:
    """ValueError, before anything is allocated, if `needed` bytes will not fit on `device`."""
    free = available_memory(device)
    if free is not None and needed > free:
        raise ValueError(
            f"{what} needs about {needed / 2**30:.1f} GiB on {device}, but only "
            f"{free / 2**30:.1f} GiB is free; use a smaller input or batch, or device 'meta', "
            "which needs no memory for shapes and counts"
        )


# glibc's mallopt() parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed memory for reuse instead of returning it at once.

    Capturing activations keeps every output of a pass alive (about 120 MB for resnet50 at
    224x224); by default glibc maps large blocks fresh and gives them back when they are freed,
    so every capture pays again for the kernel to map and zero its pages, about 40% on top of
    the forward pass. Kept memory is reused warm. This is for a long-running process such as
    the app, which calls it once at start: the resident set then stays near its peak instead of
    shrinking between requests. It changes the whole process, so the library never calls it.

    Returns False where the C library is not glibc (macOS, Windows, musl), changing nothing.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = (
        (_M_MMAP_THRESHOLD, 512 * 2**20),
        (_M_TRIM_THRESHOLD, 2**30),
        (_M_TOP_PAD, 256 * 2**20),
    )
    done = all(mallopt(option, value) == 1 for option, value in settings)
    logger.info("allocator set to keep freed memory: %s", done)
    return done
