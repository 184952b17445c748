"""Plotly figures of where the parameters, mult-adds, memory and time go, sized for a projector.

Bars and boxes carry a short figure (25.6M); hovering shows the exact integer, so that nothing
on screen is rounded without the exact value one move away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from resnet_viz.analysis import Analysis, Memory
from resnet_viz.costs import PartTotal, TreeNode, cost_tree
from resnet_viz.latency import LatencySummary
from resnet_viz.paper_table import human

# Okabe and Ito's palette, as in the diagrams: readable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
FONT = {"size": 18}
MEASURE_NAMES = {"params": "parameters", "mult_adds": "mult-adds"}


def _layout(figure: go.Figure, height: int, **kwargs: object) -> go.Figure:
    figure.update_layout(
        font=FONT,
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        hoverlabel={"font_size": 16},
        # G for 10^9 on the axes, as the bars' labels and the papers write it (not B).
        yaxis_exponentformat="SI",
        xaxis_exponentformat="SI",
        **kwargs,
    )
    return figure


def _check_measure(measure: str) -> None:
    if measure not in MEASURE_NAMES:
        raise ValueError(f"measure must be one of {', '.join(MEASURE_NAMES)}, got {measure!r}")


def treemap_figure(analysis: Analysis, measure: str = "params", depth: int = 3) -> go.Figure:
    """Network -> stem / stages / head -> blocks -> layers, sized by `measure`.

    Boxes worth nothing (a ReLU's parameters) are left out. `depth` levels show at once; a click
    on a box opens it, down to the layers.
    """
    _check_measure(measure)
    nodes = [n for n in cost_tree(analysis) if n.value(measure) or not n.parent]
    total = max(nodes[0].value(measure), 1)
    what = MEASURE_NAMES[measure]
    figure = go.Figure(
        go.Treemap(
            ids=[n.id for n in nodes],
            parents=[n.parent for n in nodes],
            labels=[_tree_label(n, measure, total) for n in nodes],
            values=[n.value(measure) for n in nodes],
            branchvalues="total",
            maxdepth=depth,
            customdata=[
                [human(n.value(measure)), f"{n.value(measure):,}", n.value(measure) / total]
                for n in nodes
            ],
            texttemplate="<b>%{label}</b><br>%{customdata[0]}",
            hovertemplate=(
                f"<b>%{{id}}</b><br>%{{customdata[1]}} {what}<br>"
                "%{customdata[2]:.1%} of the network<extra></extra>"
            ),
            marker={"colors": [_part_colour(n.id) for n in nodes]},
            root={"color": "#f4f4f4"},
            pathbar={"textfont": {"size": 18}},
        )
    )
    return _layout(figure, 620)


def _tree_label(node: TreeNode, measure: str, total: int) -> str:
    """Parts carry their figure in the header; blocks and layers show it in the box."""
    value = node.value(measure)
    if not node.parent:
        return f"{node.label}: {human(value)} {MEASURE_NAMES[measure]}"
    if "." in node.id or node.parent != "network":
        return node.label
    return f"{node.label}: {human(value)} ({value / total:.0%})"


def _part_colour(node_id: str) -> str:
    part = node_id.split(".")[0]
    if part == "stem":
        return "#999999"
    if part == "head":
        return "#555555"
    if part.startswith("layer"):
        return PALETTE[(int(part[5:]) - 1) % len(PALETTE)]
    return "#f4f4f4"


def part_bars_figure(parts: Sequence[PartTotal], measure: str) -> go.Figure:
    """One bar per part (stem, stages, head) of one network."""
    _check_measure(measure)
    values = [getattr(p, measure) for p in parts]
    figure = go.Figure(
        go.Bar(
            x=[p.label for p in parts],
            y=values,
            text=[human(v) for v in values],
            textposition="outside",
            cliponaxis=False,
            customdata=[f"{v:,}" for v in values],
            hovertemplate=f"%{{x}}: %{{customdata}} {MEASURE_NAMES[measure]}<extra></extra>",
            marker_color=[_part_colour(p.name) for p in parts],
        )
    )
    return _layout(
        figure,
        420,
        title=f"{MEASURE_NAMES[measure].capitalize()} per stage",
        yaxis={"title": MEASURE_NAMES[measure], "rangemode": "tozero"},
        showlegend=False,
    )


def byte_text(count: int) -> str:
    """Bytes in MiB, or GiB from 1 GiB on: 97.5 MiB, 2.31 GiB."""
    if count >= 2**30:
        return f"{count / 2**30:.2f} GiB"
    return f"{count / 2**20:.1f} MiB"


def memory_parts(memory: Memory) -> dict[str, dict[str, int]]:
    """What an inference pass and a training step hold, part by part, in bytes.

    Training holds the parameters, a gradient of each (same size), the buffers and the
    activations kept for backward; optimizer state (Adam: two more copies) is not included.
    """
    parts = {
        "inference": {
            "parameters": memory.parameters,
            "buffers": memory.buffers,
            "activations": memory.inference_peak,
        }
    }
    if memory.training_activations is not None:
        parts["training"] = {
            "parameters": memory.parameters,
            "gradients": memory.parameters,
            "buffers": memory.buffers,
            "activations": memory.training_activations,
        }
    return parts


def memory_figure(memory: Memory) -> go.Figure:
    """Inference and training side by side, stacked by what the bytes hold."""
    parts = memory_parts(memory)
    colours = {"parameters": PALETTE[0], "gradients": PALETTE[4], "buffers": "#999999"}
    colours["activations"] = PALETTE[1]
    figure = go.Figure()
    for what, colour in colours.items():
        rows = [(mode, held[what]) for mode, held in parts.items() if what in held]
        figure.add_bar(
            name=what,
            y=[mode for mode, _ in rows],
            x=[count / 2**20 for _, count in rows],
            orientation="h",
            marker_color=colour,
            customdata=[[byte_text(count), f"{count:,}"] for _, count in rows],
            hovertemplate=f"{what}: %{{customdata[0]}} (%{{customdata[1]}} bytes)<extra></extra>",
        )
    return _layout(
        figure,
        300,
        barmode="stack",
        xaxis={"title": f"MiB at batch {memory.batch}, {memory.dtype}"},
        yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": 1.15},
    )


def compare_parts_figure(parts: Mapping[str, Sequence[PartTotal]], measure: str) -> go.Figure:
    """Each network's parts as grouped bars on one axis; parts missing in one are left empty."""
    _check_measure(measure)
    order: list[str] = []
    for totals in parts.values():
        for part in totals:
            if part.label not in order:
                order.append(part.label)
    # Stages in number order, with the stem first and the head last, whatever came first.
    order.sort(key=lambda label: (label == "Head", label != "Stem", _stage_number(label)))
    figure = go.Figure()
    for index, (name, totals) in enumerate(parts.items()):
        values = {p.label: getattr(p, measure) for p in totals}
        shown = [label for label in order if label in values]
        figure.add_bar(
            name=name,
            x=shown,
            y=[values[label] for label in shown],
            marker_color=PALETTE[index % len(PALETTE)],
            customdata=[f"{values[label]:,}" for label in shown],
            hovertemplate=f"{name}, %{{x}}: %{{customdata}} {MEASURE_NAMES[measure]}"
            "<extra></extra>",
        )
    return _layout(
        figure,
        420,
        barmode="group",
        title=f"{MEASURE_NAMES[measure].capitalize()} per stage",
        xaxis={"categoryorder": "array", "categoryarray": order},
        yaxis={"title": MEASURE_NAMES[measure], "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.15},
    )


def _stage_number(label: str) -> int:
    return int(label.split()[-1]) if label.startswith("Stage ") else 0


def latency_figure(results: Mapping[str, LatencySummary], device: str) -> go.Figure:
    """Median time per network, with whiskers from the first to the third quartile."""
    names = list(results)
    summaries = [results[n] for n in names]
    figure = go.Figure(
        go.Bar(
            x=names,
            y=[s.median_ms for s in summaries],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [s.q3_ms - s.median_ms for s in summaries],
                "arrayminus": [s.median_ms - s.q1_ms for s in summaries],
                "thickness": 2,
                "width": 12,
            },
            text=[f"{s.median_ms:.1f} ms" for s in summaries],
            textposition="inside",
            insidetextanchor="start",  # at the foot of the bar, clear of the whiskers
            marker_color=[PALETTE[i % len(PALETTE)] for i in range(len(names))],
            customdata=[[s.q1_ms, s.q3_ms, s.min_ms, s.max_ms, s.repeats] for s in summaries],
            hovertemplate=(
                "%{x}: median %{y:.2f} ms<br>quartiles %{customdata[0]:.2f} to "
                "%{customdata[1]:.2f} ms<br>range %{customdata[2]:.2f} to %{customdata[3]:.2f} ms"
                "<br>%{customdata[4]} timed runs<extra></extra>"
            ),
        )
    )
    return _layout(
        figure,
        380,
        title=f"Forward pass on {device}: median, quartiles as whiskers",
        yaxis={"title": "ms", "rangemode": "tozero"},
        showlegend=False,
    )
