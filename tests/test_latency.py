"""Timing a forward pass: the generator's progress, its results, stopping, and what it refuses."""

from __future__ import annotations

import dataclasses
import statistics

import pytest
import torch

from resnet_viz import PRESETS, build_model
from resnet_viz.analysis import analyze
from resnet_viz.latency import Progress, check_latency_fits, summarize, time_forward

TINY = PRESETS["resnet20"].replace(blocks_per_stage=(1, 1, 1))


def _tiny() -> torch.nn.Module:
    return build_model(TINY, seed=0)


def test_time_forward_yields_warmup_then_requested_repeats() -> None:
    model = _tiny()

    steps = list(time_forward(model, (1, 3, 16, 16), warmup=2, repeats=5))

    assert [(s.phase, s.done) for s in steps] == [
        ("warm-up", 1),
        ("warm-up", 2),
        *[("timed", i) for i in range(1, 6)],
    ]
    assert len(steps[-1].times_ms) == 5
    assert all(t > 0 for t in steps[-1].times_ms)
    # Each timed step carries the runs so far: a prefix of the final list.
    assert steps[3].times_ms == steps[-1].times_ms[:2]


def test_time_forward_stops_when_the_caller_stops_asking() -> None:
    model = _tiny()
    calls = []
    hook = model.register_forward_hook(lambda *_: calls.append(1))
    steps = time_forward(model, (1, 3, 16, 16), warmup=1, repeats=100)

    seen: list[Progress] = []
    for step in steps:
        seen.append(step)
        if step.phase == "timed" and step.done == 3:
            break
    steps.close()
    hook.remove()

    assert len(seen[-1].times_ms) == 3
    assert len(calls) == 4  # one warm-up run and three timed ones, none after the stop
    with pytest.raises(StopIteration):
        next(steps)


def test_time_forward_leaves_the_model_as_it_was() -> None:
    model = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    list(time_forward(model, (2, 3, 16, 16), warmup=1, repeats=2))

    assert not model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_time_forward_refuses_training_mode_and_bad_counts() -> None:
    model = _tiny()

    with pytest.raises(ValueError, match="repeats must be an integer from 1"):
        next(time_forward(model, (1, 3, 16, 16), repeats=0))
    with pytest.raises(ValueError, match="warmup must be an integer"):
        next(time_forward(model, (1, 3, 16, 16), warmup=-1))
    model.train()
    with pytest.raises(ValueError, match="training mode"):
        next(time_forward(model, (1, 3, 16, 16)))


def test_summarize_gives_median_quartiles_and_extremes() -> None:
    times = (5.0, 1.0, 3.0, 2.0, 4.0)

    summary = summarize(times)

    assert summary.median_ms == statistics.median(times) == 3.0
    assert (summary.q1_ms, summary.q3_ms) == (2.0, 4.0)
    assert (summary.min_ms, summary.max_ms, summary.repeats) == (1.0, 5.0, 5)
    with pytest.raises(ValueError, match="no timed runs"):
        summarize(())


def test_check_latency_fits_refuses_what_cannot_fit() -> None:
    tiny = analyze(TINY, input_size=16)
    # The same network as if its activations took an exbibyte: no machine has that free.
    huge = dataclasses.replace(tiny, memory=dataclasses.replace(tiny.memory, inference_peak=2**60))

    check_latency_fits(tiny, "cpu", built=False)
    with pytest.raises(ValueError, match="GiB on cpu"):
        check_latency_fits(huge, "cpu", built=True)
