"""Which devices this machine can run a model on, and clear errors for those it cannot."""

from __future__ import annotations

import ctypes
import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager

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


# PyTorch 2.5 made the class public as torch.OutOfMemoryError; before, the same class was only
# reachable as torch.cuda.OutOfMemoryError. It is raised by every allocator (CUDA, MPS, CPU).
OutOfMemoryError: type[RuntimeError] = getattr(
    torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError
)


class DeviceMemoryError(ValueError):
    """A request that does not fit in a device's memory, refused or stopped with a message.

    A ValueError, so that every caller that shows bad input as a message shows this one too.
    """


PASS_ADVICE = (
    "use a smaller input or batch, or device 'meta', which needs no memory for shapes and counts"
)


def check_fits(needed: int, device: torch.device, what: str, advice: str = PASS_ADVICE) -> None:
    """DeviceMemoryError, before anything is allocated, if `needed` bytes will not fit.

    Args:
        needed: Bytes the request will allocate.
        device: Where.
        what: The request, for the message: "building resnet50".
        advice: What to do instead, for the message.
    """
    free = available_memory(device)
    if free is not None and needed > free:
        raise DeviceMemoryError(
            f"{what} needs about {needed / 2**30:.1f} GiB on {device}, but only "
            f"{free / 2**30:.1f} GiB is free; {advice}"
        )


def free_device_memory(device: torch.device) -> None:
    """Give back what the allocator of `device` keeps cached, after a failed allocation."""
    gc.collect()  # tensors held only by reference cycles (a traceback's frames) go first
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device.type == "mps" and torch.backends.mps.is_available():
        torch.mps.empty_cache()


@contextmanager
def out_of_memory_as_error(device: torch.device, what: str) -> Iterator[None]:
    """Turn PyTorch's out-of-memory error inside the block into a DeviceMemoryError.

    The estimate of `check_fits` leaves out convolution workspaces and allocator rounding, and
    other processes share the device, so a pass can still run out; then the device's cached
    memory is freed and the caller gets a message saying what to do instead of a crash.
    """
    reason = None
    try:
        yield
    except OutOfMemoryError as err:
        # Kept as text only: the exception's frames hold the tensors that are to be freed.
        reason = (str(err) or type(err).__name__).splitlines()[0].split(". ")[0][:160]
    if reason is None:
        return
    free_device_memory(device)
    logger.warning("%s ran out of memory on %s: %s", what, device, reason)
    other = "" if device.type == "cpu" else ", or device 'cpu'"
    raise DeviceMemoryError(
        f"{what} ran out of memory on {device} ({reason}); its cached memory has been freed. "
        f"Use a smaller input or batch{other}"
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
