"""Which devices this machine can run a model on, and clear errors for those it cannot."""

from __future__ import annotations

import torch


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
    return target
