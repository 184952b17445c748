"""The gradient lab's default training race, run to the end for a few seeds.

    python bench/race.py [--seeds 0 1 2] [--steps 40]

Prints each net's training loss averaged over the last five steps, and the race's time, on one
thread (as a Streamlit session runs it). The README's race table is this script's output; the
race's claim holds for a seed when the deep plain net's loss is above both others'.
"""

from __future__ import annotations

import argparse
import time

import torch

from resnet_viz.race import RaceSettings, TrainingRace

TAIL = 5


def run(seed: int, steps: int) -> tuple[dict[str, float], float]:
    race = TrainingRace(RaceSettings(seed=seed, steps=steps))
    started = time.perf_counter()
    history = [step.losses for step in race.run()]
    seconds = time.perf_counter() - started
    tail = history[-TAIL:]
    return {name: sum(h[name] for h in tail) / len(tail) for name in history[0]}, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=RaceSettings().steps)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for seed in args.seeds:
        losses, seconds = run(seed, args.steps)
        deep, twin, shallow = losses.values()
        holds = deep > max(twin, shallow)
        figures = "  ".join(f"{name} {loss:.2f}" for name, loss in losses.items())
        print(f"seed {seed}: {figures}  ({seconds:.0f} s)  deep plain behind both: {holds}")


if __name__ == "__main__":
    main()
