"""Block diagrams of an analysed network, as Graphviz DOT, at three levels of detail.

- "stages": input, stem, one box per stage with its block bracket and repeat count, head.
- "blocks": every residual block as a unit, its skip edge into an addition node; projection
  shortcuts get a node of their own, and stride-2 blocks a colour of their own.
- "layers": every conv, norm, activation, pool, addition and fc, in a cluster per block and per
  stage, the shortcut branch beside the residual branch.

Everything drawn is read off the analysis records, so the picture is right for any
configuration; edges carry the shape of the tensor that flows along them (C x H x W). The DOT
text depends only on the analysis and the options, so tests compare it with golden files.

Limitations:
    Additions are not modules, so the analysis has no record of them. Where the addition (and
    SE's rescaling) sits inside a block is taken from how resnet_viz's own blocks compute
    (post-activation: branch, shortcut, add, ReLU; pre-activation: the shortcut reads the
    normalised input and nothing follows the add); tests check this wiring against torch.fx's
    graph of the same module. A block of another library is drawn as a plain chain of layers.
"""

from __future__ import annotations

import html
import logging
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import graphviz

from resnet_viz.analysis import Analysis, LayerRecord
from resnet_viz.paper_table import human, sum_mult_adds, sum_params

logger = logging.getLogger(__name__)

LEVELS = ("stages", "blocks", "layers")
DIRECTIONS = ("TB", "LR")
FORMATS = ("svg", "png", "pdf", "dot")

# Seconds the stages level may take when it stands in for a layout that ran out of time.
FALLBACK_TIMEOUT = 10.0

# Runs of at least this many identical blocks are drawn once, with their count.
MIN_COLLAPSED_RUN = 3

_POST_ACTIVATION = ("BasicBlock", "Bottleneck")
_PRE_ACTIVATION = ("PreActBasicBlock", "PreActBottleneck")
_KNOWN_BLOCKS = _POST_ACTIVATION + _PRE_ACTIVATION

GRAPHVIZ_MISSING = (
    "the Graphviz program `dot` is not installed, so only DOT text can be produced; install it "
    "(Debian/Ubuntu: `apt-get install graphviz`, macOS: `brew install graphviz`, conda: "
    "`conda install graphviz`) for SVG, PNG and PDF"
)


# -- themes -----------------------------------------------------------------------------

# Okabe and Ito's palette, which viewers with any common colour-vision deficiency can tell
# apart; light fills are tints of it, so that black text stays readable on every one.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}


@dataclass(frozen=True)
class Theme:
    """Colours and type for one setting: a document, a dark screen or a projector."""

    name: str
    background: str
    text: str
    muted: str
    edge: str
    skip: str
    cluster: str
    cluster_fill: str
    fills: dict[str, str]
    fontname: str = "Helvetica"
    fontsize: int = 12
    small: int = 10
    penwidth: float = 1.0
    skip_penwidth: float = 2.2
    highlight: str = OKABE_ITO["vermillion"]
    only_a: str = OKABE_ITO["blue"]
    only_b: str = OKABE_ITO["purple"]
    changed: str = OKABE_ITO["orange"]

    def fill(self, kind: str) -> str:
        return self.fills.get(kind, self.fills["other"])


_LIGHT_FILLS = {
    "io": "#FFFFFF",
    "conv": "#CFE3F2",  # blue
    "down": "#8FC1E3",  # stronger blue: a block or conv that halves the map
    "norm": "#FAF5C8",  # yellow
    "act": "#CDEBE0",  # bluish green
    "pool": "#E4E0F7",  # lavender: apart from the convolutions' blue
    "merge": "#F8DFAA",  # orange: addition and SE's rescaling
    "shortcut": "#F5CFB3",  # vermillion: projection and zero-padding shortcuts
    "head": "#F2DCE8",  # reddish purple
    "stem": "#D5D5D5",
    "block": "#CFE3F2",
    "other": "#F2F2F2",
}

# Stronger tints: pale fills wash out on a projector.
_PROJECTOR_FILLS = {
    "io": "#FFFFFF",
    "conv": "#A9CDEA",
    "down": "#5FA4D6",
    "norm": "#F4EC8C",
    "act": "#9ED9C4",
    "pool": "#CFC6F0",
    "merge": "#F3C465",
    "shortcut": "#EFA97A",
    "head": "#E7B3CF",
    "stem": "#C4C4C4",
    "block": "#A9CDEA",
    "other": "#E6E6E6",
}

_DARK_FILLS = {
    "io": "#2A2E36",
    "conv": "#1D4A6E",
    "down": "#2F6FA3",
    "norm": "#5C5622",
    "act": "#1C5443",
    "pool": "#3B3560",
    "merge": "#6B4D10",
    "shortcut": "#6E3513",
    "head": "#5A3048",
    "stem": "#50555F",
    "block": "#1D4A6E",
    "other": "#30343D",
}

THEMES = {
    "light": Theme(
        name="light",
        background="white",
        text="#1A1A1A",
        muted="#9A9A9A",
        edge="#555555",
        skip=OKABE_ITO["vermillion"],
        cluster="#B0B0B0",
        cluster_fill="#FAFAFA",
        fills=_LIGHT_FILLS,
    ),
    "dark": Theme(
        name="dark",
        background="#0E1117",  # Streamlit's dark background
        text="#F0F0F0",
        muted="#7D828C",
        edge="#B8BCC4",
        skip="#FF9E57",
        cluster="#5A5F6A",
        cluster_fill="#161A22",
        fills=_DARK_FILLS,
        highlight="#FFD84D",
        only_a=OKABE_ITO["sky"],
        only_b="#E8A6CF",
        changed=OKABE_ITO["yellow"],
    ),
    # High contrast and large type for the back row of a lecture hall.
    "projector": Theme(
        name="projector",
        background="white",
        text="#000000",
        muted="#707070",
        edge="#000000",
        skip=OKABE_ITO["vermillion"],
        cluster="#000000",
        cluster_fill="white",
        fills=_PROJECTOR_FILLS,
        fontsize=20,
        small=16,
        penwidth=2.0,
        skip_penwidth=4.0,
    ),
}


# -- the drawing before it becomes DOT ----------------------------------------------------


@dataclass
class _Node:
    id: str
    kind: str
    title: str
    lines: list[str]
    # Names this node stands for ("layer2", "layer2.0", ...), matched by `highlight`.
    keys: tuple[str, ...]
    cluster: str | None = None
    shape: str = "box"
    stacked: bool = False  # a collapsed run of blocks
    state: str = ""  # for a difference: "a", "b" (present in one only) or "changed"
    tooltip: str = ""


@dataclass
class _Edge:
    tail: str
    head: str
    label: str
    kind: str = "main"  # "main", "skip" (identity) or "shortcut" (through a projection)
    state: str = ""


@dataclass
class _Cluster:
    id: str
    label: str
    parent: str | None
    kind: str  # "stage", "block" or "shortcut"
    keys: tuple[str, ...] = ()
    detail: str = ""  # shown after the label: a stage's map size

    @property
    def text(self) -> str:
        return f"{self.label}  ·  {self.detail}" if self.detail else self.label


@dataclass
class _Drawing:
    level: str
    plain: bool = False  # a plain network: its blocks have no shortcut
    nodes: dict[str, _Node] = field(default_factory=dict)
    edges: list[_Edge] = field(default_factory=list)
    clusters: dict[str, _Cluster] = field(default_factory=dict)

    def add(self, node: _Node) -> str:
        self.nodes[node.id] = node
        return node.id

    def link(self, tail: str, head: str, label: str, kind: str = "main") -> None:
        self.edges.append(_Edge(tail, head, label, kind))


def _shape_text(shape: Sequence[int]) -> str:
    """C x H x W without the batch; a flat vector is just its length."""
    return "×".join(str(d) for d in shape[1:])


def _conv_text(record: LayerRecord, with_stride: bool = True) -> str:
    k = record.kernel_size
    text = f"{k}×{k} conv, {record.output_shape[1]}"
    if record.groups and record.groups > 1:
        text += f", {record.groups} groups"
    if record.dilation and record.dilation > 1:
        text += f", dilation {record.dilation}"
    if with_stride and record.stride and record.stride > 1:
        text += f", /{record.stride}"
    return text


def _op_text(record: LayerRecord) -> str:
    """What one leaf does, in the words of the paper's figures."""
    kind = record.type
    if kind == "Conv2d":
        return _conv_text(record)
    if kind in ("MaxPool2d", "AvgPool2d"):
        k = record.kernel_size
        what = "max" if kind == "MaxPool2d" else "avg"
        stride = f", /{record.stride}" if record.stride and record.stride > 1 else ""
        return f"{k}×{k} {what} pool{stride}"
    if kind == "AdaptiveAvgPool2d":
        return "global avg pool"
    if kind == "Linear":
        return f"fc, {record.output_shape[-1]}"
    if kind == "BatchNorm2d":
        return "batch norm"
    if kind == "ZeroPadShortcut":
        stride = f", /{record.stride}" if record.stride and record.stride > 1 else ""
        return f"subsample, pad to {record.output_shape[1]}{stride}"
    return kind.lower() if kind in ("ReLU", "Sigmoid", "Identity") else kind


def _kind_of(record: LayerRecord) -> str:
    kind = record.type
    if kind == "Conv2d":
        return "down" if record.stride and record.stride > 1 else "conv"
    if "Norm" in kind:
        return "norm"
    if kind in ("ReLU", "Sigmoid", "GELU", "SiLU"):
        return "act"
    if "Pool" in kind:
        return "pool"
    if kind == "Linear":
        return "head"
    if kind == "ZeroPadShortcut":
        return "shortcut"
    return "other"


def _tooltip(record: LayerRecord) -> str:
    shapes = f"{_shape_text(record.input_shapes[0])} -> {_shape_text(record.output_shape)}"
    return f"{record.name} ({record.type}): {shapes}, {record.params:,} params"


def _counts(params: int, mult_adds: int) -> str:
    return f"{human(params)} params · {human(mult_adds)} MACs"


def _keys_of(name: str) -> tuple[str, ...]:
    """ "layer2.0.conv1" -> ("layer2", "layer2.0", "layer2.0.conv1")."""
    parts = name.split(".")
    return tuple(".".join(parts[: i + 1]) for i in range(len(parts)))


# -- reading the analysis ---------------------------------------------------------------


@dataclass
class _Block:
    """One residual block as the records show it."""

    record: LayerRecord
    leaves: list[LayerRecord]  # in call order

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def stage(self) -> str:
        return self.name.split(".")[0]

    def _in_shortcut(self, record: LayerRecord) -> bool:
        prefix = self.name + ".downsample"
        return record.name == prefix or record.name.startswith(prefix + ".")

    def shortcut(self) -> list[LayerRecord]:
        return [r for r in self.leaves if self._in_shortcut(r)]

    def branch(self) -> list[LayerRecord]:
        return [r for r in self.leaves if not self._in_shortcut(r)]

    @property
    def downsamples(self) -> bool:
        (h_in, w_in), (h_out, w_out) = (
            self.record.input_shapes[0][-2:],
            self.record.output_shape[-2:],
        )
        return h_out < h_in or w_out < w_in

    def signature(self) -> tuple[object, ...]:
        """Equal for blocks that compute the same thing on the same shapes."""
        prefix = len(self.name)
        return tuple(
            (
                r.name[prefix:],
                r.call_index,
                r.type,
                r.input_shapes,
                r.output_shape,
                r.params,
                (r.kernel_size, r.stride, r.padding, r.dilation, r.groups),
            )
            for r in self.leaves
        )


def _ordered(analysis: Analysis) -> list[LayerRecord]:
    return sorted(analysis.records, key=lambda r: r.start_order)


def _blocks(analysis: Analysis) -> list[_Block]:
    """The blocks in call order, each with its leaves; one pass over the records."""
    records = _ordered(analysis)
    blocks = {r.name: _Block(r, []) for r in records if r.block_idx is not None and r.depth == 2}
    for record in records:
        if record.is_leaf and record.depth > 2:
            block = blocks.get(".".join(record.name.split(".")[:2]))
            if block is not None:
                block.leaves.append(record)
    return list(blocks.values())


def _runs(blocks: list[_Block], collapse: bool) -> list[list[_Block]]:
    """Consecutive identical blocks of one stage, grouped when there are enough of them."""
    runs: list[list[_Block]] = []
    for block in blocks:
        last = runs[-1] if runs else None
        if (
            collapse
            and last is not None
            and last[0].stage == block.stage
            and last[0].signature() == block.signature()
        ):
            last.append(block)
        else:
            runs.append([block])
    if not collapse:
        return runs
    # Short runs are drawn block by block: three copies are still quick to read.
    out: list[list[_Block]] = []
    for run in runs:
        out.extend([run] if len(run) >= MIN_COLLAPSED_RUN else [[b] for b in run])
    return out


def _run_title(run: list[_Block]) -> str:
    if len(run) == 1:
        return run[0].name
    return f"{run[0].name} – {run[-1].name}"


def _run_keys(run: list[_Block]) -> tuple[str, ...]:
    return (run[0].stage, *(b.name for b in run))


def _stage_title(stage: str) -> str:
    return f"{stage}  ·  conv{int(stage.removeprefix('layer')) + 1}_x"


def _size_text(record: LayerRecord) -> str:
    height, width = record.output_shape[-2:]
    return f"{height}×{width}"


def _stage_cluster(analysis: Analysis, stage: str) -> _Cluster:
    return _Cluster(
        stage, _stage_title(stage), None, "stage", (stage,), _size_text(analysis.find(stage))
    )


def _is_residual(analysis: Analysis, block: _Block) -> bool:
    known = block.record.type in _KNOWN_BLOCKS
    return known and (analysis.config is None or analysis.config.residual)


# -- the three levels -------------------------------------------------------------------


def _input_text(analysis: Analysis) -> str:
    return _shape_text(_ordered(analysis)[0].input_shapes[0])


def _input_node(drawing: _Drawing, analysis: Analysis) -> str:
    return drawing.add(_Node("input", "io", "input", [_input_text(analysis)], ("input",)))


def _stem_and_head(analysis: Analysis) -> tuple[list[LayerRecord], list[LayerRecord]]:
    leaves = analysis.leaves()
    return [r for r in leaves if r.part == "stem"], [r for r in leaves if r.part == "head"]


def _summary_lines(records: Iterable[LayerRecord]) -> list[str]:
    """Convs and pools of a stem or head, one line each; norms and ReLUs go without saying."""
    return [
        _op_text(r)
        for r in records
        if r.type in ("Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Linear")
    ]


def _totals(records: Iterable[LayerRecord]) -> tuple[int, int]:
    chosen = list(records)
    return sum_params(chosen), sum_mult_adds(chosen)


def _stem_node(drawing: _Drawing, analysis: Analysis, counts: bool) -> str:
    stem, _ = _stem_and_head(analysis)
    lines = _summary_lines(stem)
    if counts:
        lines.append(_counts(*_totals(stem)))
    return drawing.add(_Node("stem", "stem", "stem", lines, ("stem", *(r.name for r in stem))))


def _head_nodes(drawing: _Drawing, analysis: Analysis, tail: str, counts: bool) -> None:
    _, head = _stem_and_head(analysis)
    lines = ["batch norm, relu"] if any(r.name == "final_bn" for r in head) else []
    lines += _summary_lines(head)
    if counts:
        lines.append(_counts(*_totals(head)))
    drawing.add(_Node("head", "head", "head", lines, ("head", *(r.name for r in head))))
    drawing.link(tail, "head", _shape_text(head[0].input_shapes[0]))
    output = head[-1].output_shape
    drawing.add(_Node("output", "io", "output", [f"{output[-1]} logits"], ("output",)))
    drawing.link("head", "output", _shape_text(output))


def _branch_lines(block: _Block, with_stride: bool = True) -> list[str]:
    lines = [
        _conv_text(r, with_stride)
        for r in block.branch()
        if r.type == "Conv2d" and ".se." not in r.name
    ]
    se = [r for r in block.branch() if r.name == f"{block.name}.se.fc1"]
    if se:
        lines.append(f"SE, {se[0].input_shapes[0][1]} → {se[0].output_shape[1]}")
    return lines


def _stages(analysis: Analysis, counts: bool) -> _Drawing:
    drawing = _Drawing("stages")
    tail = _input_node(drawing, analysis)
    drawing.link(tail, _stem_node(drawing, analysis, counts), _input_text(analysis))
    tail = "stem"
    blocks = _blocks(analysis)
    for stage in dict.fromkeys(b.stage for b in blocks):
        members = [b for b in blocks if b.stage == stage]
        record = analysis.find(stage)
        lines = [f"output {_size_text(record)}"]
        lines += [f"[ {line} ]" for line in _branch_lines(members[-1], with_stride=False)]
        lines.append(f"× {len(members)} block{'s' if len(members) > 1 else ''}")
        if members[0].downsamples:
            lines.append("first block /2")
        if counts:
            lines.append(_counts(*_totals(b for m in members for b in m.leaves)))
        kind = "down" if members[0].downsamples else "block"
        keys = (stage, *(b.name for b in members))
        drawing.add(_Node(stage, kind, _stage_title(stage), lines, keys))
        drawing.link(tail, stage, _shape_text(record.input_shapes[0]))
        tail = stage
    _head_nodes(drawing, analysis, tail, counts)
    return drawing


def _shortcut_lines(block: _Block) -> list[str]:
    return [_op_text(r) for r in block.shortcut() if r.type != "Identity"]


def _blocks_level(analysis: Analysis, counts: bool, collapse: bool) -> _Drawing:
    drawing = _Drawing("blocks")
    tail = _input_node(drawing, analysis)
    drawing.link(tail, _stem_node(drawing, analysis, counts), _input_text(analysis))
    tail = "stem"
    for run in _runs(_blocks(analysis), collapse):
        block = run[0]
        if block.stage not in drawing.clusters:
            drawing.clusters[block.stage] = _stage_cluster(analysis, block.stage)
        lines = _branch_lines(block)
        if len(run) > 1:
            lines.append(f"× {len(run)}, each with its own skip")
        if counts:
            params, mult_adds = _totals(leaf for b in run for leaf in b.leaves)
            lines.append(_counts(params, mult_adds))
        kind = "down" if block.downsamples else "block"
        node = _Node(block.name, kind, _run_title(run), lines, _run_keys(run), block.stage)
        node.stacked = len(run) > 1
        drawing.add(node)
        shape_in = _shape_text(block.record.input_shapes[0])
        drawing.link(tail, block.name, shape_in)
        if not _is_residual(analysis, block):
            tail = block.name
            continue

        post = block.record.type in _POST_ACTIVATION
        add = drawing.add(
            _Node(
                f"{block.name}/add",
                "merge",
                "+ relu" if post else "+",
                [],
                _run_keys(run),
                block.stage,
                shape="circle" if not post else "ellipse",
            )
        )
        # The branch ends in the block's output shape: that is what makes the addition work.
        drawing.link(block.name, add, _shape_text(block.record.output_shape))
        shortcut = _shortcut_lines(block)
        if shortcut:
            sc = drawing.add(
                _Node(
                    f"{block.name}/shortcut",
                    "shortcut",
                    "shortcut",
                    shortcut,
                    (*_run_keys(run), f"{block.name}.downsample"),
                    block.stage,
                )
            )
            drawing.link(tail, sc, shape_in, "shortcut")
            drawing.link(sc, add, _shape_text(block.shortcut()[-1].output_shape), "shortcut")
        else:
            drawing.link(tail, add, shape_in, "skip")
        tail = add
    _head_nodes(drawing, analysis, tail, counts)
    return drawing


def _leaf_node(record: LayerRecord, prefix: str, cluster: str | None, counts: bool) -> _Node:
    local = record.name[len(prefix) :] if prefix else record.name
    title = local if record.call_index == 0 else f"{local} ({record.call_index + 1})"
    op = _op_text(record)
    # "relu" under a node titled "relu" says nothing; "batch norm" under "bn1" does.
    lines = [] if op == local.split(".")[-1] else [op]
    if counts and (record.params or record.mult_adds):
        lines.append(_counts(record.params if record.call_index == 0 else 0, record.mult_adds))
    return _Node(
        f"{record.name}#{record.call_index}",
        _kind_of(record),
        title,
        lines,
        ((record.part,) if record.part != "stage" else ()) + _keys_of(record.name),
        cluster,
        tooltip=_tooltip(record),
    )


def _chain(
    drawing: _Drawing,
    records: Sequence[LayerRecord],
    tail: str,
    prefix: str,
    cluster: str | None,
    counts: bool,
) -> str:
    for record in records:
        node = drawing.add(_leaf_node(record, prefix, cluster, counts))
        drawing.link(tail, node, _shape_text(record.input_shapes[0]))
        tail = node
    return tail


def _block_layers(
    drawing: _Drawing, analysis: Analysis, run: list[_Block], tail: str, counts: bool
) -> str:
    block = run[0]
    cluster = block.name
    label = _run_title(run)
    if len(run) > 1:
        label += f"  ·  × {len(run)}, each with its own skip"
    drawing.clusters[cluster] = _Cluster(cluster, label, block.stage, "block", _run_keys(run))
    prefix = block.name + "."
    if block.record.type not in _KNOWN_BLOCKS:
        return _chain(drawing, block.leaves, tail, prefix, cluster, counts)

    post = block.record.type in _POST_ACTIVATION
    branch = [r for r in block.branch() if ".se." not in r.name]
    se = [r for r in block.branch() if ".se." in r.name]
    final_relu = branch.pop() if post else None
    block_in = tail
    out = _chain(drawing, branch, block_in, prefix, cluster, counts)
    if se:
        # SE reads the branch and multiplies it by its gate.
        gate = _chain(drawing, se, out, prefix, cluster, counts)
        scaled = drawing.add(
            _Node(f"{block.name}/scale", "merge", "×", [], _keys_of(block.name), cluster, "circle")
        )
        drawing.link(out, scaled, _shape_text(block.record.output_shape))
        drawing.link(gate, scaled, _shape_text(se[-1].output_shape))
        out = scaled
    if _is_residual(analysis, block):
        out = _addition(drawing, block, branch, block_in, out, post, cluster, counts)
    if final_relu is None:
        return out
    node = drawing.add(_leaf_node(final_relu, prefix, cluster, counts))
    drawing.link(out, node, _shape_text(final_relu.input_shapes[0]))
    return node


def _addition(
    drawing: _Drawing,
    block: _Block,
    branch: list[LayerRecord],
    block_in: str,
    out: str,
    post: bool,
    cluster: str,
    counts: bool,
) -> str:
    """The shortcut (through its own layers, if any) and the addition node; returns its id."""
    prefix = block.name + "."
    add = drawing.add(
        _Node(f"{block.name}/add", "merge", "+", [], _keys_of(block.name), cluster, "circle")
    )
    drawing.link(out, add, _shape_text(block.record.output_shape))
    shortcut = block.shortcut()
    if shortcut:
        sc_cluster = f"{block.name}.downsample"
        drawing.clusters[sc_cluster] = _Cluster(sc_cluster, "shortcut", cluster, "shortcut")
        # A pre-activation projection reads the normalised input, the output of the first ReLU.
        relu = next(r for r in branch if r.type == "ReLU")
        source = block_in if post else f"{relu.name}#{relu.call_index}"
        first = drawing.add(_leaf_node(shortcut[0], prefix, sc_cluster, counts))
        drawing.link(source, first, _shape_text(shortcut[0].input_shapes[0]), "shortcut")
        end = _chain(drawing, shortcut[1:], first, prefix, sc_cluster, counts)
        drawing.link(end, add, _shape_text(shortcut[-1].output_shape), "shortcut")
    else:
        drawing.link(block_in, add, _shape_text(block.record.input_shapes[0]), "skip")
    return add


def _layers_level(analysis: Analysis, counts: bool, collapse: bool) -> _Drawing:
    drawing = _Drawing("layers")
    stem, head = _stem_and_head(analysis)
    tail = _input_node(drawing, analysis)
    drawing.clusters["stem"] = _Cluster("stem", "stem", None, "stage", ("stem",))
    tail = _chain(drawing, stem, tail, "", "stem", counts)
    for run in _runs(_blocks(analysis), collapse):
        stage = run[0].stage
        if stage not in drawing.clusters:
            drawing.clusters[stage] = _stage_cluster(analysis, stage)
        tail = _block_layers(drawing, analysis, run, tail, counts)
    drawing.clusters["head"] = _Cluster("head", "head", None, "stage", ("head",))
    tail = _chain(drawing, head, tail, "", "head", counts)
    output = head[-1].output_shape
    drawing.add(_Node("output", "io", "output", [f"{output[-1]} logits"], ("output",)))
    drawing.link(tail, "output", _shape_text(output))
    return drawing


def _chain_only(analysis: Analysis, level: str, counts: bool) -> _Drawing:
    """A module that is not a ResNet of this library: its leaves in call order."""
    drawing = _Drawing(level)
    leaves = analysis.leaves()
    tail = _chain(drawing, leaves, _input_node(drawing, analysis), "", None, counts)
    output = leaves[-1].output_shape
    drawing.add(_Node("output", "io", "output", [_shape_text(output)], ("output",)))
    drawing.link(tail, "output", _shape_text(output))
    return drawing


def _drawing(analysis: Analysis, level: str, counts: bool, collapse: bool) -> _Drawing:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    _, head = _stem_and_head(analysis)
    if not _blocks(analysis) or not head:
        return _chain_only(analysis, level, counts)
    if level == "stages":
        drawing = _stages(analysis, counts)
    elif level == "blocks":
        drawing = _blocks_level(analysis, counts, collapse)
    else:
        drawing = _layers_level(analysis, counts, collapse)
    drawing.plain = analysis.config is not None and not analysis.config.residual
    return drawing


# -- differences between two networks ----------------------------------------------------


def _both(a: list[str], b: list[str], names: tuple[str, str]) -> list[str]:
    """Lines the two share at the start and end once; in between, each network's own, named.

    Matching single lines out of order would mislead: ResNet-34's [3x3, 64; 3x3, 64] and
    ResNet-50's [1x1, 64; 3x3, 64; 1x1, 256] share a line but not a block.
    """
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    return [
        *a[:head],
        *(f"{names[0]}: {line}" for line in a[head : len(a) - tail]),
        *(f"{names[1]}: {line}" for line in b[head : len(b) - tail]),
        *a[len(a) - tail :],
    ]


def _merge(a: _Drawing, b: _Drawing, names: tuple[str, str]) -> _Drawing:
    """One drawing of both: what only one has, and what both have with other numbers, marked."""
    merged = _Drawing(a.level, a.plain and b.plain, clusters={**b.clusters, **a.clusters})
    for key, cluster in a.clusters.items():
        other_cluster = b.clusters.get(key)
        if other_cluster is not None and other_cluster.detail != cluster.detail:
            detail = f"{names[0]} {cluster.detail}, {names[1]} {other_cluster.detail}"
            merged.clusters[key] = replace(cluster, detail=detail)
    for node_id, node in a.nodes.items():
        other = b.nodes.get(node_id)
        if other is None:
            merged.add(replace(node, lines=[*node.lines, f"only in {names[0]}"], state="a"))
        elif (node.title, node.lines) != (other.title, other.lines):
            lines = _both(node.lines, other.lines, names)
            merged.add(replace(node, lines=lines, state="changed"))
        else:
            merged.add(node)
    for node_id, node in b.nodes.items():
        if node_id not in a.nodes:
            merged.add(replace(node, lines=[*node.lines, f"only in {names[1]}"], state="b"))

    b_edges = {(e.tail, e.head, e.kind): e for e in b.edges}
    a_keys = {(e.tail, e.head, e.kind) for e in a.edges}
    for edge in a.edges:
        match = b_edges.get((edge.tail, edge.head, edge.kind))
        if match is None:
            merged.edges.append(replace(edge, state="a"))
        elif match.label != edge.label:
            label = f"{names[0]}: {edge.label}\n{names[1]}: {match.label}"
            merged.edges.append(replace(edge, label=label, state="changed"))
        else:
            merged.edges.append(edge)
    merged.edges += [
        replace(e, state="b") for e in b.edges if (e.tail, e.head, e.kind) not in a_keys
    ]
    return merged


# -- DOT --------------------------------------------------------------------------------

_LEGEND = {
    "io": "input / output",
    "stem": "stem",
    "block": "residual branch",
    "down": "halves the feature map (stride 2)",
    "conv": "convolution",
    "norm": "batch norm",
    "act": "activation",
    "pool": "pooling",
    "merge": "addition (+), SE rescaling (×)",
    "shortcut": "shortcut: projection or zero-padding",
    "head": "classifier",
}


def _plain(text: str) -> str:
    """Text for a plain DOT label, where a backslash starts an escape (\\G is the graph's name)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label(title: str, lines: Sequence[str], theme: Theme) -> str:
    parts = [f"<b>{html.escape(title, quote=False)}</b>"] if title else []
    parts += [
        f'<font point-size="{theme.small}">{html.escape(line, quote=False)}</font>'
        for line in lines
    ]
    return "<" + "<br/>".join(parts) + ">"


def _line_sample(colour: str, dashed: bool) -> str:
    """A short line in a legend, as table cells: box-drawing characters break up in PNG."""
    pieces = 3 if dashed else 1
    width = 8 if dashed else 28
    cells = "".join(
        f'<td bgcolor="{colour}" width="{width}" height="3" fixedsize="true"></td>'
        for _ in range(pieces)
    )
    return (
        f'<table border="0" cellborder="0" cellspacing="3" cellpadding="0"><tr>{cells}</tr></table>'
    )


def _legend(drawing: _Drawing, theme: Theme) -> str:
    kinds = [kind for kind in _LEGEND if any(n.kind == kind for n in drawing.nodes.values())]
    names = dict(_LEGEND)
    if drawing.plain:
        names["block"] = "block (no shortcut: a plain network)"
    cells = [
        f'<td bgcolor="{theme.fill(kind)}" border="1" width="18"> </td>'
        f'<td align="left">{html.escape(names[kind], quote=False)}</td>'
        for kind in kinds
    ]
    edge_kinds = {e.kind for e in drawing.edges}
    if "skip" in edge_kinds:
        cells.append(
            f"<td>{_line_sample(theme.skip, dashed=False)}</td>"
            '<td align="left">identity shortcut (skip connection)</td>'
        )
    if "shortcut" in edge_kinds:
        cells.append(
            f"<td>{_line_sample(theme.skip, dashed=True)}</td>"
            '<td align="left">through a shortcut layer</td>'
        )
    if any(n.stacked for n in drawing.nodes.values()):
        cells.append(
            '<td><table border="1" cellborder="0" cellspacing="2" cellpadding="0"><tr>'
            '<td border="1" width="14" height="8"></td></tr></table></td>'
            '<td align="left">double frame: identical blocks drawn once</td>'
        )
    # Two entries a row: half as tall, so the legend does not push the diagram down.
    rows = "".join("<tr>" + "".join(cells[i : i + 2]) + "</tr>" for i in range(0, len(cells), 2))
    return (
        f'<<table border="0" cellborder="0" cellspacing="3">'
        f'<tr><td colspan="4" align="left"><b>legend</b></td></tr>{rows}</table>>'
    )


def _highlighted(drawing: _Drawing, part: str) -> tuple[set[str], set[str]]:
    """Ids of the clusters and nodes that stand for `part`, and of every node inside them.

    A name finer than the drawing ("layer2.0.conv1" at the blocks level) lights the part that
    contains it; the " (2)" of a second call, as the summary writes it, is dropped.
    """
    part = re.sub(r" \(\d+\)$", "", part.strip())
    known = set(_parts(drawing))
    while part not in known and "." in part:
        part = part.rsplit(".", 1)[0]
    clusters = {c.id for c in drawing.clusters.values() if part in c.keys}
    changed = True
    while changed:  # a cluster inside a highlighted cluster is highlighted too
        grown = {c.id for c in drawing.clusters.values() if c.parent in clusters} | clusters
        changed, clusters = grown != clusters, grown
    nodes = {n.id for n in drawing.nodes.values() if part in n.keys or n.cluster in clusters}
    return clusters, nodes


def _parts(drawing: _Drawing) -> list[str]:
    names = [key for n in drawing.nodes.values() for key in n.keys]
    names += [key for c in drawing.clusters.values() for key in c.keys]
    return list(dict.fromkeys(names))


def _node_attrs(node: _Node, theme: Theme, faded: bool, lit: bool) -> dict[str, str]:
    attrs = {
        "label": _label(node.title, node.lines, theme),
        "fillcolor": theme.fill(node.kind),
        "shape": node.shape,
    }
    if node.shape != "box":
        attrs["style"] = "filled"
        attrs["margin"] = "0.02"
    attrs["tooltip"] = _plain(
        node.tooltip or " ".join([node.title, *node.lines]).strip() or node.id
    )
    if node.stacked:
        attrs["peripheries"] = "2"
    if node.state:
        attrs["color"] = {"a": theme.only_a, "b": theme.only_b, "changed": theme.changed}[
            node.state
        ]
        attrs["penwidth"] = str(theme.penwidth * 2.5)
        if node.state in ("a", "b"):
            attrs["style"] = attrs.get("style", "filled,rounded") + ",dashed"
    if lit:
        attrs["color"] = theme.highlight
        attrs["penwidth"] = str(theme.penwidth * 3.5)
    elif faded:
        attrs["fillcolor"] = theme.cluster_fill
        attrs["fontcolor"] = theme.muted
        attrs["color"] = theme.muted
    return attrs


def _edge_attrs(edge: _Edge, theme: Theme, direction: str, faded: bool) -> dict[str, str]:
    label = _plain(edge.label)
    attrs = {"label": label, "tooltip": label or " "}
    if edge.kind != "main":
        attrs["color"] = theme.skip
        attrs["penwidth"] = str(theme.skip_penwidth)
        # Skip edges leave and enter on the side, so they read as going around the branch.
        side = "e" if direction == "TB" else "n"
        if edge.kind == "skip":
            attrs.update(tailport=side, headport=side)
        else:
            attrs["style"] = "dashed"
    if edge.state:
        attrs["color"] = {"a": theme.only_a, "b": theme.only_b, "changed": theme.changed}[
            edge.state
        ]
        # The label keeps the text colour: orange or purple type is hard to read.
        if edge.state in ("a", "b"):
            attrs["style"] = "dashed"
    if faded:
        attrs["color"] = theme.muted
        attrs["fontcolor"] = theme.muted
    return attrs


def _dot(
    drawing: _Drawing,
    theme: Theme,
    direction: str,
    highlight: str | None,
    legend: bool,
    title: str,
) -> graphviz.Digraph:
    lit_clusters: set[str] = set()
    lit_nodes: set[str] = set()
    if highlight is not None:
        lit_clusters, lit_nodes = _highlighted(drawing, highlight)
        if not lit_nodes:
            parts = ", ".join(
                p for p in _parts(drawing) if p in ("stem", "head") or re.fullmatch(r"layer\d+", p)
            )
            raise ValueError(
                f"nothing named {highlight!r} in this diagram; highlight one of {parts}, "
                f"or a block or layer name such as 'layer2.0'"
            )
    graph = graphviz.Digraph(
        "resnet",
        graph_attr={
            "rankdir": direction,
            "bgcolor": theme.background,
            "fontname": theme.fontname,
            "fontsize": str(theme.fontsize + 4),
            "fontcolor": theme.text,
            "label": _plain(title),
            "labelloc": "t",
            "nodesep": "0.3",
            "ranksep": "0.28",
            "newrank": "true",
        },
        node_attr={
            "shape": "box",
            "style": "filled,rounded",
            "fontname": theme.fontname,
            "fontsize": str(theme.fontsize),
            "fontcolor": theme.text,
            "color": theme.text,
            "penwidth": str(theme.penwidth),
            "margin": "0.12,0.05",
        },
        edge_attr={
            "fontname": theme.fontname,
            "fontsize": str(theme.small),
            "fontcolor": theme.text,
            "color": theme.edge,
            "penwidth": str(theme.penwidth),
            "arrowsize": "0.7",
        },
    )
    children: dict[str | None, list[str]] = {}
    for cluster in drawing.clusters.values():
        children.setdefault(cluster.parent, []).append(cluster.id)
    members: dict[str | None, list[_Node]] = {}
    for node in drawing.nodes.values():
        members.setdefault(node.cluster, []).append(node)

    # The body is written here rather than through graphviz.Digraph.node/edge, whose quoting
    # costs more than Graphviz's own layout of a few hundred nodes takes in total.
    def fill(cluster_id: str | None, indent: str) -> None:
        for node in members.get(cluster_id, []):
            faded = highlight is not None and node.id not in lit_nodes
            attrs = _node_attrs(node, theme, faded, node.id in lit_nodes)
            graph.body.append(f"{indent}{_quote(node.id)} [{_attr_list(attrs)}]\n")
        for child in children.get(cluster_id, []):
            cluster = drawing.clusters[child]
            lit = child in lit_clusters
            attrs = {
                "label": _plain(cluster.text),
                "tooltip": _plain(cluster.text),
                "labeljust": "l",
                "style": "rounded,dashed" if cluster.kind == "shortcut" else "rounded,filled",
                "fillcolor": theme.cluster_fill if cluster.kind == "stage" else theme.background,
                "color": theme.highlight if lit else theme.cluster,
                "penwidth": str(theme.penwidth * (3.5 if lit else 1)),
                "fontcolor": theme.text,
                "fontsize": str(theme.fontsize if cluster.kind != "stage" else theme.fontsize + 2),
            }
            graph.body.append(f"{indent}subgraph {_quote('cluster_' + child)} {{\n")
            statements = " ".join(f"{key}={_quote(attrs[key])}" for key in sorted(attrs))
            graph.body.append(f"{indent}\t{statements}\n")
            fill(child, indent + "\t")
            graph.body.append(f"{indent}}}\n")

    fill(None, "\t")
    for edge in drawing.edges:
        faded = highlight is not None and not (edge.head in lit_nodes or edge.tail in lit_nodes)
        attrs = _edge_attrs(edge, theme, direction, faded)
        line = f"\t{_quote(edge.tail)} -> {_quote(edge.head)} [{_attr_list(attrs)}]\n"
        graph.body.append(line)
    if legend:
        graph.node("legend", label=_legend(drawing, theme), shape="plain", style="")
    return graph


_BARE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|-?(\d+\.?\d*|\.\d+)")
_KEYWORDS = {"node", "edge", "graph", "digraph", "subgraph", "strict"}


def _quote(value: str) -> str:
    """A DOT ID: bare where it can be, an HTML label as it is, else in double quotes.

    Backslashes are left alone, as Graphviz reads them as escapes; `_plain` has doubled those
    that must stay backslashes.
    """
    if value.startswith("<") and value.endswith(">"):
        return value
    if _BARE_ID.fullmatch(value) and value.lower() not in _KEYWORDS:
        return value
    return '"' + value.replace('"', '\\"') + '"'


def _attr_list(attrs: dict[str, str]) -> str:
    # The label first, the rest by name: the order the graphviz package writes.
    keys = sorted(attrs, key=lambda key: (key != "label", key))
    return " ".join(f"{key}={_quote(attrs[key])}" for key in keys)


def _check(analysis: object, level: str, direction: str, theme: object) -> Theme:
    if not isinstance(analysis, Analysis):
        raise ValueError(
            f"expected what analyze() returns, got {type(analysis).__name__}; "
            "call diagram(analyze(model_or_config), ...)"
        )
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if direction not in DIRECTIONS:
        raise ValueError(
            f"direction must be TB (top to bottom) or LR (left to right), got {direction!r}"
        )
    if not isinstance(theme, str) or theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, got {theme!r}")
    return THEMES[theme]


def _name_of(analysis: Analysis) -> str:
    from resnet_viz.presets import describe

    return describe(analysis.config) if analysis.config is not None else "model"


def _title(analysis: Analysis, name: str | None) -> str:
    height, width = analysis.input_size
    return f"{name or _name_of(analysis)}  ·  {height}×{width} input"


def diagram(
    analysis: Analysis,
    level: str = "blocks",
    *,
    direction: str = "TB",
    theme: str = "light",
    counts: bool = False,
    collapse: bool = True,
    highlight: str | None = None,
    legend: bool = True,
    name: str | None = None,
) -> graphviz.Digraph:
    """The block diagram of an analysed network.

    Args:
        analysis: What `analyze` returned for the network.
        level: "stages", "blocks" or "layers".
        direction: "TB" (top to bottom) or "LR" (left to right).
        theme: "light", "dark" or "projector" (high contrast, large type).
        counts: Put parameters and mult-adds on the nodes.
        collapse: Draw each run of three or more identical blocks once, with its count.
        highlight: A part to stand out while the rest fades: "stem", "layer2", "layer2.0",
            "layer2.0.conv1", "head"; a layer finer than the level lights the part holding it.
            The lecture mode steps through the network with it.
        legend: Add a legend of the colours used.
        name: The network's name in the title; by default its preset name or description.
    """
    style = _check(analysis, level, direction, theme)
    drawing = _drawing(analysis, level, counts, collapse)
    return _dot(
        drawing, style, direction, highlight, legend, f"{_title(analysis, name)}  ·  {level}"
    )


def diff_diagram(
    a: Analysis,
    b: Analysis,
    level: str = "blocks",
    *,
    names: tuple[str, str] = ("A", "B"),
    direction: str = "TB",
    theme: str = "light",
    counts: bool = False,
    highlight: str | None = None,
    legend: bool = True,
) -> graphviz.Digraph:
    """One diagram of two networks: parts present in one only, and shapes that differ, marked.

    Runs of blocks are not collapsed here, so that every block can be matched by name.
    """
    style = _check(a, level, direction, theme)
    _check(b, level, direction, theme)
    if len(names) != 2 or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"names must be two names, one for each network, got {names!r}")
    if names[0] == names[1]:
        names = (f"{names[0]} (A)", f"{names[1]} (B)")
    drawing = _merge(
        _drawing(a, level, counts, collapse=False),
        _drawing(b, level, counts, collapse=False),
        names,
    )
    title = f"{names[0]} vs {names[1]}  ·  {level}"
    graph = _dot(drawing, style, direction, highlight, legend, title)
    if legend:
        same = not any(n.state for n in drawing.nodes.values()) and not any(
            e.state for e in drawing.edges
        )
        rows = (
            '<tr><td colspan="2">no differences at this level</td></tr>'
            if same
            else f"<tr><td>{_line_sample(style.only_a, dashed=True)}</td>"
            f'<td align="left">only in {html.escape(names[0], quote=False)}</td></tr>'
            f"<tr><td>{_line_sample(style.only_b, dashed=True)}</td>"
            f'<td align="left">only in {html.escape(names[1], quote=False)}</td></tr>'
            f"<tr><td>{_line_sample(style.changed, dashed=False)}</td>"
            f'<td align="left">in both, numbers differ</td></tr>'
        )
        key = (
            f'<<table border="0" cellspacing="3"><tr><td colspan="2"><b>difference</b></td></tr>'
            f"{rows}</table>>"
        )
        graph.node("difference", label=key, shape="plain", style="", tooltip="difference")
    return graph


# -- rendering --------------------------------------------------------------------------


class GraphvizMissing(RuntimeError):
    """The `dot` program is not installed; DOT text still works."""


class LayoutTimeout(RuntimeError):
    """Graphviz ran past its time limit and was stopped."""


def graphviz_available() -> bool:
    return shutil.which("dot") is not None


def render(
    graph: graphviz.Digraph | str, fmt: str, *, timeout: float = 20.0, dpi: int = 110
) -> bytes:
    """SVG, PNG or PDF bytes laid out by Graphviz, or the DOT text itself for "dot".

    Graphviz runs as a child process under `timeout` seconds and is killed past it: a layout
    can take minutes on a big enough graph, and nothing here may hang.
    """
    source = graph.source if isinstance(graph, graphviz.Digraph) else graph
    if not isinstance(source, str) or not source.strip():
        raise ValueError("there is no DOT text to render; pass what diagram() returns")
    if fmt == "dot":
        return source.encode()
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not isinstance(dpi, int) or not 10 <= dpi <= 1200:
        raise ValueError(f"dpi must be a whole number from 10 to 1200, got {dpi!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds above 0, got {timeout!r}")
    program = shutil.which("dot")
    if program is None:
        raise GraphvizMissing(GRAPHVIZ_MISSING)
    command = [program, f"-T{fmt}"] + ([f"-Gdpi={dpi}"] if fmt == "png" else [])
    try:
        done = subprocess.run(command, input=source.encode(), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise LayoutTimeout(f"Graphviz needed more than {timeout:g} s for this diagram") from err
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"Graphviz failed: {detail[-1] if detail else 'no message'}")
    return done.stdout


@dataclass(frozen=True)
class Rendered:
    data: bytes
    fmt: str
    level: str  # the level drawn, which is "stages" after a fallback
    notice: str | None = None


def render_diagram(
    analysis: Analysis,
    level: str = "blocks",
    fmt: str = "svg",
    *,
    timeout: float = 5.0,
    compare: Analysis | None = None,
    names: tuple[str, str] = ("A", "B"),
    collapse: bool = True,
    highlight: str | None = None,
    **options: Any,
) -> Rendered:
    """A diagram (or, with `compare`, a difference) rendered by Graphviz.

    Past `timeout` the stages level is drawn instead, with a notice saying so: Graphviz's
    layout time grows faster than the number of nodes, and a picture late is no picture.
    """

    def draw(at: str) -> graphviz.Digraph:
        if compare is not None:
            return diff_diagram(analysis, compare, at, names=names, highlight=highlight, **options)
        return diagram(analysis, at, collapse=collapse, highlight=highlight, **options)

    graph = draw(level)
    try:
        return Rendered(render(graph, fmt, timeout=timeout), fmt, level)
    except LayoutTimeout:
        if level == "stages":
            raise
    notice = f"The {level}-level diagram took Graphviz longer than {timeout:g} s, so the stages "
    notice += "level is shown instead."
    if not collapse and compare is None:
        notice += " Collapsing runs of identical blocks keeps diagrams small."
    logger.info(notice)
    # The stages level has a dozen nodes whatever the depth; its own limit only guards
    # against a Graphviz that does not answer at all.
    data = render(draw("stages"), fmt, timeout=max(timeout, FALLBACK_TIMEOUT))
    return Rendered(data, fmt, "stages", notice)
