"""Plotly figures of the gradient lab, from plain data, for the Gradient lab page and lectures.

Each function takes lists and dicts of numbers (what the library returns, made plain) and
returns a figure; nothing here runs a network or calls Streamlit.
"""

from __future__ import annotations

import plotly.graph_objects as go

# Okabe-Ito, as in resnet_viz.gradient_chart: residual blue/sky, plain vermillion/orange.
COLOURS = {
    "residual, BN": "#0072B2",
    "plain, BN": "#D55E00",
    "residual, no norm": "#56B4E9",
    "plain, no norm": "#E69F00",
}
_FALLBACK = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00")
# The race lists deep plain, residual, shallow plain: vermillion, blue, green, so a residual
# net is blue and a deep plain one vermillion on every chart of the lab.
RACE_COLOURS = ("#D55E00", "#0072B2", "#009E73")


def _colour(name: str, index: int) -> str:
    return COLOURS.get(name, _FALLBACK[index % len(_FALLBACK)])


def _laid_out(
    fig: go.Figure, title: str, x_title: str, y_title: str, height: int, **layout: object
) -> go.Figure:
    """The lab's common look: large type for a projector, the legend under the chart."""
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        legend={"orientation": "h", "y": -0.2},
        height=height,
        margin={"t": 60, "b": 10},
        font={"size": 15},
        **layout,
    )
    return fig


def _per_layer(
    label: str, points: list[tuple[str, float]], quantity: str, mode: str, line: dict
) -> go.Scatter:
    """One network's value per layer, layers numbered from 1, each named on hover."""
    return go.Scatter(
        x=list(range(1, len(points) + 1)),
        y=[value for _, value in points],
        text=[name for name, _ in points],
        name=label,
        mode=mode,
        line=line,
        hovertemplate=f"%{{text}}<br>{quantity} = %{{y:.3g}}<extra>{label}</extra>",
    )


def gradient_norms_figure(series: dict[str, list[tuple[str, float]]], title: str) -> go.Figure:
    """Weight-gradient norm per weighted layer on a log axis, one line per network.

    Args:
        series: Network label -> [(layer name, norm), ...] in forward order.
        title: The chart's title.
    """
    fig = go.Figure()
    for index, (label, points) in enumerate(series.items()):
        dash = "dot" if "no norm" in label else "solid"
        line = {"color": _colour(label, index), "width": 3, "dash": dash}
        fig.add_trace(_per_layer(label, points, "|grad w|", "lines", line))
    return _laid_out(
        fig,
        title,
        "weighted layer (1 = first conv, input side)",
        "norm of the weight gradient",
        480,
        yaxis_type="log",
        yaxis_exponentformat="power",
    )


def loss_curves_figure(losses: dict[str, list[float]], title: str) -> go.Figure:
    """Training loss per step, one line per network."""
    fig = go.Figure()
    for index, (label, values) in enumerate(losses.items()):
        colour = RACE_COLOURS[index % len(RACE_COLOURS)]
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(values) + 1)),
                y=values,
                name=label,
                mode="lines",
                line={"color": colour, "width": 3},
            )
        )
    return _laid_out(fig, title, "step", "training loss (cross-entropy)", 420, xaxis_tickformat="d")


def response_std_figure(series: dict[str, list[tuple[str, float]]], title: str) -> go.Figure:
    """Std of each 3x3 layer's response, in depth order (He et al. 2015, Fig. 7, top)."""
    fig = go.Figure()
    for index, (label, points) in enumerate(series.items()):
        line = {"color": RACE_COLOURS[index % len(RACE_COLOURS)], "width": 2}
        fig.add_trace(_per_layer(label, points, "std", "lines+markers", line))
    return _laid_out(fig, title, "3x3 layer index (original order)", "std of the response", 420)
