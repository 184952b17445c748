"""How much does capturing every leaf output of resnet50 cost, next to a plain forward pass?

    .venv/bin/python bench/capture_speed.py [--repeat 15] [--threads N]

Side by side in one run, alternating so that both see the same machine state, for one 224x224
image on the CPU:
  baseline  `model(x)` under `torch.no_grad()`;
  ours      `capture(model, x, every leaf call)`: every leaf module's output, each call of a
            shared ReLU apart (158 tensors, 122 MB), kept and returned with the logits.
The target is ours / baseline <= 1.15. Then 50 captures in a row, each result dropped before
the next: no hook may be left on the model, and neither the resident set nor the Python heap
(tracemalloc) may keep growing; the growth from capture 10 to capture 50 is printed.

What the extra time is: not the hooks (a pass with a no-op hook on every leaf costs the same as
the baseline) but the 122 MB that the kept outputs occupy. A plain pass frees each output as soon
as the next layer has read it, so the allocator hands the same warm pages out again; a capture
must keep every output, so each one lands on pages the kernel has to map and zero first, and
glibc gives them back to the system when the result is dropped. Telling glibc to keep freed
memory shows this: with
    MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=4000000000 MALLOC_TOP_PAD_=500000000
in the environment the ratio falls to about 1.13. The library does not change allocator
settings itself: they are process-wide, and the right choice depends on the deployment. The
app, a long-running process, makes the same request at start through
`resnet_viz.devices.keep_freed_memory()`; the bench measures that too, in a second process
(`--keep-freed-memory`), so that both figures come from one run.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import torch
from torch import nn

from resnet_viz import analyze, build_model
from resnet_viz.activations import capture
from resnet_viz.devices import keep_freed_memory


def resident_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def hooks_on(model: nn.Module) -> int:
    return sum(
        len(module._forward_hooks) + len(module._forward_pre_hooks) for module in model.modules()
    )


def timed(run: object) -> float:
    start = time.perf_counter()
    run()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="measure with the allocator setting the app uses (the default run does both)",
    )
    args = parser.parse_args()
    if args.keep_freed_memory:
        print("allocator: keep_freed_memory() as in the app:", keep_freed_memory())
    else:
        print("allocator: glibc's defaults")
    if args.threads:
        torch.set_num_threads(args.threads)

    model = build_model("resnet50")
    x = torch.randn(1, 3, 224, 224)
    leaves = [(r.name, r.call_index) for r in analyze(model).records if r.is_leaf]

    def plain() -> None:
        with torch.no_grad():
            model(x)

    def ours() -> None:
        capture(model, x, leaves)

    for _ in range(3):  # warm up both paths: allocator, thread pool, kernels
        plain(), ours()
    base_times, our_times = [], []
    for _ in range(args.repeat):
        base_times.append(timed(plain))
        our_times.append(timed(ours))
    base, mine = statistics.median(base_times), statistics.median(our_times)
    kept = capture(model, x, leaves).outputs
    kept_mb = sum(t.numel() * t.element_size() for t in kept.values()) / 2**20
    del kept

    resident, heap = [], []
    tracemalloc.start()
    for index in range(50):
        capture(model, x, leaves)
        gc.collect()
        if index in (9, 49):
            resident.append(resident_mb())
            heap.append(tracemalloc.get_traced_memory()[0] / 2**20)
    heap_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, resnet50, 1x3x224x224")
    print(f"baseline: no_grad forward                      median {base * 1000:7.1f} ms")
    print(
        f"ours:     capture of {len(leaves)} leaf outputs (and logits) median {mine * 1000:7.1f} ms"
    )
    print(f"ratio ours / baseline: {mine / base:.3f}  (target <= 1.15)")
    print(f"the captured outputs hold {kept_mb:.0f} MB")
    print(
        f"50 captures in a row: hooks left {hooks_on(model)}; from capture 10 to 50 the resident "
        f"set changed {resident[1] - resident[0]:+.1f} MB and the Python heap "
        f"{heap[1] - heap[0]:+.3f} MB (heap peak {heap_peak:.2f} MB)"
    )
    if not args.keep_freed_memory:
        print()
        command = [sys.executable, __file__, "--keep-freed-memory", "--repeat", str(args.repeat)]
        if args.threads:
            command += ["--threads", str(args.threads)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
