"""How fast is a full analysis of resnet152, next to building the model and running torchinfo?

    .venv/bin/python bench/analysis_speed.py [--repeat 5]

Side by side in one run, alternating so that both see the same machine state:
  baseline  build resnet152 on the CPU (random init) and run `torchinfo.summary` on it;
  ours      `analyze(PRESETS["resnet152"])`: from the config to every record, the totals and the
            inference and training memory estimates, on meta.
The target is ours / baseline <= 0.25. Memory of ours is measured apart, in a fresh process
after a warm-up: the growth of the peak resident set, the resident set left after it, and the
peak of the Python heap during it (tracemalloc); the target is under 50 MB.

The baseline builds our own resnet152 rather than torchvision's: PyPI's torchvision does not
load beside the CPU build of torch this project installs ("operator torchvision::nms does not
exist"). The tests show the two are the same network: identical state-dict keys and shapes,
parameter count, and logits under the same weights. Build and torchinfo cost depend on that
structure, not on whose code made it.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

import torchinfo

from resnet_viz import PRESETS, build_model
from resnet_viz.analysis import analyze

MEMORY_PROBE = """
import resource, tracemalloc
from pathlib import Path
from resnet_viz import PRESETS
from resnet_viz.analysis import analyze

def resident_mb():
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20

analyze(PRESETS["resnet18"])  # warm up imports and caches
peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
resident_before = resident_mb()
tracemalloc.start()
analysis = analyze(PRESETS["resnet152"])
heap_peak = tracemalloc.get_traced_memory()[1] / 2**20
tracemalloc.stop()
peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(peak_after - peak_before, resident_mb() - resident_before, heap_peak)
"""


def baseline() -> float:
    start = time.perf_counter()
    model = build_model("resnet152", device="cpu")
    torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0)
    return time.perf_counter() - start


def ours() -> float:
    start = time.perf_counter()
    analyze(PRESETS["resnet152"])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    baseline(), ours()  # warm up both paths once
    base_times, our_times = [], []
    for _ in range(args.repeat):
        base_times.append(baseline())
        our_times.append(ours())
    base, mine = statistics.median(base_times), statistics.median(our_times)

    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, check=True
    )
    peak_growth, resident_growth, heap_peak = map(float, probe.stdout.split())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"baseline: build resnet152 on CPU + torchinfo.summary  median {base:.3f} s")
    print(f"ours:     analyze(resnet152) on meta                  median {mine:.3f} s")
    print(f"ratio ours / baseline: {mine / base:.2f}  (target <= 0.25)")
    print(
        f"memory of analyze(resnet152), fresh process: peak resident set grew {peak_growth:.1f} "
        f"MB, resident set after it {resident_growth:+.1f} MB, Python heap peak "
        f"{heap_peak:.1f} MB  (target < 50 MB)"
    )
    print(f"(this process, with the CPU models, peaked at {peak:.0f} MB)")


if __name__ == "__main__":
    main()
