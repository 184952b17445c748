"""How long one forward pass takes on a real device: warm-up runs, then timed repeats.

`time_forward` is a generator that yields after every run, so that a caller (the app's compare
page) can show progress and stop between two runs by no longer asking for the next one. It
never changes the model: it refuses one in training mode and runs under
`torch.inference_mode`, which records nothing for autograd.

Limitations:
    Wall-clock time of `model(x)` only, measured with `time.perf_counter` after a device
    synchronisation; it includes Python's and PyTorch's dispatch overhead, which is most of the
    time for tiny CIFAR nets, and depends on whatever else the machine is doing at that moment.
    The median and the quartiles are reported for that reason, not the mean.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from resnet_viz.analysis import Analysis
from resnet_viz.devices import check_fits, resolve_device

logger = logging.getLogger(__name__)

MAX_REPEATS = 1000


@dataclass(frozen=True)
class Progress:
    """Where a measurement is: after each warm-up run and after each timed run.

    Attributes:
        phase: "warm-up" or "timed".
        done: Runs finished in this phase.
        total: Runs this phase will make.
        times_ms: Every timed run so far, in milliseconds (empty during the warm-up).
    """

    phase: str
    done: int
    total: int
    times_ms: tuple[float, ...]


@dataclass(frozen=True)
class LatencySummary:
    """Median and spread of timed runs, in milliseconds."""

    repeats: int
    median_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float
    max_ms: float


def summarize(times_ms: tuple[float, ...] | list[float]) -> LatencySummary:
    """Median, quartiles and extremes of the timed runs; ValueError for no runs."""
    if not times_ms:
        raise ValueError("no timed runs to summarise; measure at least one repeat")
    if len(times_ms) == 1:
        q1 = q3 = times_ms[0]
    else:
        q1, _, q3 = statistics.quantiles(times_ms, n=4, method="inclusive")
    return LatencySummary(
        repeats=len(times_ms),
        median_ms=statistics.median(times_ms),
        q1_ms=q1,
        q3_ms=q3,
        min_ms=min(times_ms),
        max_ms=max(times_ms),
    )


def check_latency_fits(analysis: Analysis, device: str | torch.device, built: bool) -> None:
    """ValueError if a timed pass of the analysed network will not fit on `device`.

    Args:
        analysis: The network at the batch and size to be timed (traced on meta is enough).
        device: Where it will run.
        built: The model is already on the device, so only its activations are still needed.
    """
    memory = analysis.memory
    needed = memory.inference_peak + (0 if built else memory.parameters + memory.buffers)
    check_fits(needed, resolve_device(device), "timing this network at this size")


def _synchronize(device: torch.device) -> None:
    # Kernels run asynchronously on a GPU: without this the clock stops before they finish.
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _check_args(model: nn.Module, warmup: int, repeats: int) -> None:
    if model.training:
        raise ValueError(
            "the model is in training mode; time it in eval mode (build_model returns it so), "
            "since BatchNorm would update its running statistics on every run"
        )
    for name, value, low in (("warmup", warmup, 0), ("repeats", repeats, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_REPEATS:
            raise ValueError(
                f"{name} must be an integer from {low} to {MAX_REPEATS}, got {value!r}"
            )


def time_forward(
    model: nn.Module,
    input_shape: tuple[int, int, int, int],
    warmup: int = 3,
    repeats: int = 10,
    seed: int = 0,
) -> Iterator[Progress]:
    """Time `model` on a random input of `input_shape`, yielding after every run.

    The input is made on the model's device, in its dtype. Stop early by breaking out of the
    loop (or closing the generator): the runs made so far are in the last progress yielded.

    Args:
        model: A network in eval mode; it is only read.
        input_shape: (N, C, H, W).
        warmup: Untimed runs first, for caches, lazy initialisation and cuDNN's choices.
        repeats: Timed runs.
        seed: Seed of the input's random values.

    Yields:
        Progress after each warm-up run and each timed run.
    """
    _check_args(model, warmup, repeats)
    weight = next(model.parameters(), None)
    device = weight.device if weight is not None else torch.device("cpu")
    dtype = weight.dtype if weight is not None else torch.float32
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(input_shape, generator=generator, dtype=dtype).to(device)

    times: list[float] = []
    with torch.inference_mode():
        for done in range(1, warmup + 1):
            model(x)
            _synchronize(device)
            yield Progress("warm-up", done, warmup, ())
        for done in range(1, repeats + 1):
            _synchronize(device)
            start = time.perf_counter()
            model(x)
            _synchronize(device)
            times.append((time.perf_counter() - start) * 1000)
            yield Progress("timed", done, repeats, tuple(times))
    logger.info("timed %d runs on %s: median %.2f ms", repeats, device, statistics.median(times))
