"""How fast is a layers-level diagram of resnet152, next to torchview and Graphviz?

    .venv/bin/python bench/diagram_speed.py [--repeat 5]

Side by side in one run, alternating so that both see the same machine state:
  baseline  `torchview.draw_graph` of resnet152 on meta, then Graphviz's SVG of its graph;
  ours      the layers-level DOT of resnet152 from its analysis, then Graphviz's SVG of it.
The target is ours / baseline <= 0.3. Ours is timed twice: as drawn by default (runs of
identical blocks collapsed: layer3.1 - layer3.35 drawn once) and with every block drawn. The
analysis is made once beforehand, as the app caches it; its own time is printed apart.

Then the stress case: a network of [50, 50, 50, 50] bottleneck blocks at the blocks level,
every block drawn, under the 5 s limit (it falls back to the stages level if it runs over).

The baseline traces our own resnet152 rather than torchvision's: PyPI's torchvision does not
load beside the CPU build of torch this project installs ("operator torchvision::nms does not
exist"). The tests show the two are the same network (state-dict keys and shapes, counts and
logits), and torchview's graph depends on that structure, not on whose code made it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from torchview import draw_graph

from resnet_viz import ResNetConfig, build_model
from resnet_viz.analysis import analyze
from resnet_viz.diagram import diagram, render, render_diagram


def timed(step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    analysis = analyze("resnet152")
    analysis_time = timed(lambda: analyze("resnet152"))  # the second, warm call

    def baseline() -> None:
        model = build_model("resnet152", device="meta")
        graph = draw_graph(model, input_size=(1, 3, 224, 224), device="meta")
        graph.visual_graph.pipe(format="svg")

    def collapsed() -> None:
        render(diagram(analysis, "layers"), "svg")

    def every_block() -> None:
        render(diagram(analysis, "layers", collapse=False), "svg")

    steps = {"baseline": baseline, "collapsed": collapsed, "every block": every_block}
    for step in steps.values():
        step()  # warm up every path once
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeat):
        for name, step in steps.items():
            times[name].append(timed(step))
    median = {name: statistics.median(values) for name, values in times.items()}

    print(f"resnet152, layers level, DOT + SVG, median of {args.repeat}")
    print(f"  torchview + Graphviz     {median['baseline']:.3f} s")
    for name in ("collapsed", "every block"):
        ratio = median[name] / median["baseline"]
        print(f"  ours, {name:<18} {median[name]:.3f} s   ratio {ratio:.2f} (target <= 0.30)")
    print(f"  (the analysis, made once and cached by the app: {analysis_time:.3f} s)")

    stress = analyze(ResNetConfig(block="bottleneck", blocks_per_stage=(50, 50, 50, 50)))
    started = time.perf_counter()
    rendered = render_diagram(stress, "blocks", "svg", timeout=5.0, collapse=False)
    took = time.perf_counter() - started
    outcome = "drawn in full" if rendered.level == "blocks" else "fell back to stages"
    print(f"stress [50, 50, 50, 50] bottleneck, blocks level, every block: {took:.2f} s, {outcome}")


if __name__ == "__main__":
    main()
