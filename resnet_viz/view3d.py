"""The layered 3D picture of a network: each output a box whose sides follow C, H and W.

This is the drawing people otherwise make by hand for slides. Sides are log-scaled, so that
3 x 224 x 224 and 2048 x 7 x 7 both read, and boxes are coloured by stage. At the blocks level
each residual block (or collapsed run of identical blocks) gets an arc from its input to its
output, dashed where the shortcut goes through a layer; the layers level draws no arcs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import plotly.graph_objects as go

from resnet_viz.analysis import Analysis, LayerRecord
from resnet_viz.diagram import (
    OKABE_ITO,
    THEMES,
    _Block,
    _blocks,
    _is_residual,
    _ordered,
    _runs,
    _shape_text,
)

_STAGE_COLOURS = (
    OKABE_ITO["blue"],
    OKABE_ITO["green"],
    OKABE_ITO["orange"],
    OKABE_ITO["purple"],
    OKABE_ITO["sky"],
    OKABE_ITO["yellow"],
)
_STEM_COLOUR = "#8C8C8C"
_HEAD_COLOUR = OKABE_ITO["vermillion"]
_GAP = 0.8
# Above this many boxes a browser's WebGL view becomes a smear that takes a minute to draw.
MAX_BOXES = 600


@dataclass(frozen=True)
class _Slab:
    name: str
    shape: tuple[int, ...]  # C, H, W
    colour: str
    note: str = ""


def _side(size: int) -> float:
    return 1.0 + math.log2(max(size, 1))


def _thickness(channels: int) -> float:
    # Channels set the depth of a slab; scaled down so that long networks stay wide.
    return 0.3 * _side(channels)


def _chw(shape: tuple[int, ...]) -> tuple[int, ...]:
    rest = shape[1:]
    return tuple(rest) + (1,) * (3 - len(rest))


def _stage_colour(stage_idx: int) -> str:
    return _STAGE_COLOURS[stage_idx % len(_STAGE_COLOURS)]


def _slabs(
    analysis: Analysis, level: str, collapse: bool
) -> tuple[list[_Slab], list[tuple[int, int, bool]]]:
    """The boxes in order, and the skip arcs as (from index, to index, projected)."""
    ordered = _ordered(analysis)
    slabs = [_Slab("input", _chw(ordered[0].input_shapes[0]), "#BBBBBB")]
    arcs: list[tuple[int, int, bool]] = []
    leaves = [r for r in ordered if r.is_leaf]

    def colour(record: LayerRecord) -> str:
        if record.part == "stem":
            return _STEM_COLOUR
        if record.part == "head":
            return _HEAD_COLOUR
        return _stage_colour(record.stage_idx or 0)

    if level == "layers":
        # A collapsed run shows the layers of its first block once, as the diagram does.
        hidden = {
            leaf.name
            for run in _runs(_blocks(analysis), collapse)
            for block in run[1:]
            for leaf in block.leaves
        }
        for record in leaves:
            if record.name not in hidden:
                slabs.append(_Slab(record.name, _chw(record.output_shape), colour(record)))
        return slabs, arcs

    last_shape = slabs[0].shape
    for record in leaves:
        # The stem and head as the paper draws them: one box per change of shape.
        if record.part == "stem" and _chw(record.output_shape) != last_shape:
            slabs.append(_Slab(record.name, _chw(record.output_shape), _STEM_COLOUR))
            last_shape = _chw(record.output_shape)
    blocks: list[_Block] = _blocks(analysis)
    for run in _runs(blocks, collapse):
        block = run[0]
        start = len(slabs) - 1
        note = f"× {len(run)} identical blocks" if len(run) > 1 else ""
        name = block.name if len(run) == 1 else f"{block.name} – {run[-1].name}"
        slabs.append(_Slab(name, _chw(block.record.output_shape), colour(block.record), note))
        if _is_residual(analysis, block):
            arcs.append((start, len(slabs) - 1, bool(block.shortcut())))
    for record in leaves:
        if record.part == "head" and record.type in ("AdaptiveAvgPool2d", "Linear"):
            slabs.append(_Slab(record.name, _chw(record.output_shape), _HEAD_COLOUR))
    return slabs, arcs


def _group(name: str) -> str:
    first = name.split(".")[0].split(" ")[0]
    if first.startswith("layer"):
        return first
    return (
        "input"
        if first == "input"
        else ("head" if first in ("avgpool", "fc", "final_bn") else "stem")
    )


def _box(x0: float, slab: _Slab, opacity: float) -> go.Mesh3d:
    channels, height, width = slab.shape
    dx, dy, dz = _thickness(channels), _side(width), _side(height)
    y0, z0 = -dy / 2, -dz / 2
    xs = [x0, x0 + dx, x0 + dx, x0, x0, x0 + dx, x0 + dx, x0]
    ys = [y0, y0, y0 + dy, y0 + dy, y0, y0, y0 + dy, y0 + dy]
    zs = [z0, z0, z0, z0, z0 + dz, z0 + dz, z0 + dz, z0 + dz]
    hover = f"<b>{slab.name}</b><br>{_shape_text((1, *slab.shape))}"
    if slab.note:
        hover += f"<br>{slab.note}"
    return go.Mesh3d(
        x=xs,
        y=ys,
        z=zs,
        # Two triangles for each of the six faces.
        i=[0, 0, 4, 4, 0, 0, 3, 3, 0, 0, 1, 1],
        j=[1, 2, 5, 6, 1, 5, 2, 6, 3, 7, 2, 6],
        k=[2, 3, 6, 7, 5, 4, 6, 7, 7, 4, 6, 5],
        color=slab.colour,
        opacity=opacity,
        flatshading=True,
        name=slab.name,
        hovertext=hover,
        hoverinfo="text",
        showlegend=False,
    )


def figure_3d(
    analysis: Analysis, *, level: str = "blocks", theme: str = "light", collapse: bool = True
) -> go.Figure:
    """An interactive plotly figure of the network's outputs as boxes, with skip arcs.

    Args:
        analysis: What `analyze` returned.
        level: "blocks" (the stem's outputs, each block's, the head's) or "layers" (every
            leaf's output, those of a collapsed run's first block only).
        theme: "light", "dark" or "projector".
        collapse: Draw each run of three or more identical blocks as one box.
    """
    if level not in ("blocks", "layers"):
        raise ValueError(f"the 3D view shows 'blocks' or 'layers', got {level!r}")
    if not isinstance(theme, str) or theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, got {theme!r}")
    style = THEMES[theme]
    slabs, arcs = _slabs(analysis, level, collapse)
    if len(slabs) > MAX_BOXES:
        raise ValueError(
            f"the 3D view would have {len(slabs)} boxes, more than a browser draws smoothly "
            f"({MAX_BOXES}); collapse identical blocks or show blocks instead of layers"
        )
    figure = go.Figure()
    starts: list[float] = []
    x = 0.0
    named: set[str] = set()
    for slab in slabs:
        starts.append(x)
        group = _group(slab.name)
        if group not in named:
            named.add(group)
            # An empty trace carries the legend entry, so that each box keeps its own name.
            figure.add_trace(
                go.Scatter3d(
                    x=[None],
                    y=[None],
                    z=[None],
                    mode="markers",
                    marker={"color": slab.colour, "size": 8, "symbol": "square"},
                    name=group,
                    legendgroup=group,
                )
            )
        figure.add_trace(_box(x, slab, 0.9).update(legendgroup=group))
        x += _thickness(slab.shape[0]) + _GAP
    tops = [_side(slab.shape[1]) / 2 for slab in slabs]

    for start, end, projected in arcs:
        x0 = starts[start] + _thickness(slabs[start].shape[0]) / 2
        x1 = starts[end] + _thickness(slabs[end].shape[0]) / 2
        base = max(tops[start], tops[end])
        steps = 24
        xs = [x0 + (x1 - x0) * t / steps for t in range(steps + 1)]
        zs = [base + 1.5 * math.sin(math.pi * t / steps) for t in range(steps + 1)]
        figure.add_trace(
            go.Scatter3d(
                x=xs,
                y=[0.0] * len(xs),
                z=zs,
                mode="lines",
                line={"color": style.skip, "width": 5, "dash": "dash" if projected else "solid"},
                hoverinfo="skip",
                showlegend=False,
            )
        )

    # Stage names above the first box of each stage.
    labels, seen = [], set()
    for index, slab in enumerate(slabs):
        stage = slab.name.split(".")[0]
        if stage.startswith("layer") and stage not in seen:
            seen.add(stage)
            labels.append((starts[index], tops[index] + 2.8, stage))
    figure.add_trace(
        go.Scatter3d(
            x=[p[0] for p in labels],
            y=[0.0] * len(labels),
            z=[p[1] for p in labels],
            mode="text",
            text=[p[2] for p in labels],
            textfont={"color": style.text, "size": style.fontsize + 2},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    axis = {"visible": False, "showbackground": False}
    figure.update_layout(
        scene={
            "xaxis": axis,
            "yaxis": axis,
            "zaxis": axis,
            "aspectmode": "manual",
            "aspectratio": {"x": 2.8, "y": 0.7, "z": 0.7},
            "camera": {"eye": {"x": 0.2, "y": -1.7, "z": 0.6}},
        },
        paper_bgcolor=style.background,
        font={"color": style.text, "size": style.fontsize + 2},
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        height=480,
        legend={"orientation": "h", "yanchor": "bottom", "y": 0.0, "x": 0.0},
    )
    return figure
