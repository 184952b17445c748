"""The paper's Table 1 for any analysed network, as Markdown, LaTeX (booktabs) or CSV.

Rows are conv1 (the stem), conv2_x ... convN_x (the stages) and the head. Each row's layers are
read off the analysed module itself: the stem's convs, and the branch of one block of the stage
in brackets with its repeat count, so the table is right for any configuration. Several
networks side by side give the paper's layout, one column per network.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from resnet_viz.analysis import Analysis, LayerRecord


@dataclass(frozen=True)
class Bracket:
    """The layers of one block, repeated: [1x1, 64; 3x3, 64; 1x1, 256] x 3."""

    lines: tuple[str, ...]
    repeat: int

    def __str__(self) -> str:
        return f"[{'; '.join(self.lines)}] x {self.repeat}"


@dataclass(frozen=True)
class TableRow:
    name: str
    output_size: str
    layers: tuple[str | Bracket, ...]
    params: int
    mult_adds: int


def _size(record: LayerRecord) -> str:
    height, width = record.output_shape[-2:]
    return f"{height}x{width}"


def _conv_line(record: LayerRecord, groups: int = 1, with_stride: bool = True) -> str:
    k = record.kernel_size
    line = f"{k}x{k}, {record.output_shape[1]}"
    if groups > 1:
        line += f", C={groups}"
    if record.dilation and record.dilation > 1:
        line += f", dilation {record.dilation}"
    if with_stride and record.stride and record.stride > 1:
        line += f", stride {record.stride}"
    return line


def sum_params(records: Sequence[LayerRecord]) -> int:
    # A module called twice owns its parameters once.
    return sum(r.params for r in records if r.is_leaf and r.call_index == 0)


def sum_mult_adds(records: Sequence[LayerRecord]) -> int:
    return sum(r.mult_adds for r in records if r.is_leaf)


def _block_bracket(stage: list[LayerRecord], blocks: int) -> Bracket:
    # The last block of a stage shows the stage's steady state: no stride, no projection.
    last = max(r.block_idx for r in stage if r.block_idx is not None)
    prefix = f"{stage[0].name.split('.')[0]}.{last}."
    lines = []
    for record in stage:
        if not record.name.startswith(prefix) or not record.is_leaf or record.call_index:
            continue
        local = record.name[len(prefix) :]
        if record.type == "Conv2d" and local.startswith("conv"):
            # As in the paper, a stage's downsampling shows in its output size, not here.
            lines.append(_conv_line(record, record.groups or 1, with_stride=False))
        elif local == "se.fc2":
            reduced = record.input_shapes[0][1]
            lines.append(f"SE fc, [{reduced}, {record.output_shape[1]}]")
    return Bracket(tuple(lines), blocks)


def table_rows(analysis: Analysis) -> list[TableRow]:
    """Table 1's rows for one analysed network."""
    records = analysis.records
    stem = [r for r in records if r.part == "stem"]
    head = [r for r in records if r.part == "head"]
    pool = [r for r in stem if r.type == "MaxPool2d"]
    stem_body = [r for r in stem if r.type != "MaxPool2d"]

    rows = [
        TableRow(
            name="conv1",
            output_size=_size(stem_body[-1]),
            layers=tuple(_conv_line(r) for r in stem_body if r.type == "Conv2d" and r.is_leaf),
            params=sum_params(stem),
            mult_adds=sum_mult_adds(stem),
        )
    ]

    stage_indices = sorted({r.stage_idx for r in records if r.stage_idx is not None})
    for stage_idx in stage_indices:
        stage = [r for r in records if r.stage_idx == stage_idx]
        blocks = len({r.block_idx for r in stage if r.block_idx is not None})
        stage_record = next(r for r in stage if r.name == f"layer{stage_idx + 1}")
        layers: list[str | Bracket] = []
        if stage_idx == 0 and pool:
            k, s = pool[0].kernel_size, pool[0].stride
            layers.append(f"{k}x{k} max pool, stride {s}")
        layers.append(_block_bracket(stage, blocks))
        rows.append(
            TableRow(
                name=f"conv{stage_idx + 2}_x",
                output_size=_size(stage_record),
                layers=tuple(layers),
                params=sum_params(stage),
                mult_adds=sum_mult_adds(stage),
            )
        )

    fc = [r for r in head if r.type == "Linear"]
    head_layers = ["BN, ReLU"] if any(r.type.startswith("BatchNorm") for r in head) else []
    head_layers += ["average pool"] + [f"{r.output_shape[-1]}-d fc" for r in fc] + ["softmax"]
    rows.append(
        TableRow(
            name="head",
            output_size="1x1",
            layers=tuple(head_layers),
            params=sum_params(head),
            mult_adds=sum_mult_adds(head),
        )
    )
    return rows


# -- rendering ---------------------------------------------------------------------------


def human(count: int) -> str:
    """3 significant digits with K, M or G: 9.47K, 118M, 1.82G."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            value = count / scale
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{value:.{digits}f}{unit}"
    return str(count)


def _inputs(
    analyses: Analysis | Sequence[Analysis], titles: Sequence[str]
) -> tuple[list[Analysis], list[str]]:
    """One network or several, and a column title for each (its name unless given)."""
    analyses = [analyses] if isinstance(analyses, Analysis) else list(analyses)
    return analyses, list(titles) or [_title(a) for a in analyses]


def _grid(analyses: Sequence[Analysis]) -> tuple[list[str], list[list[TableRow | None]], bool]:
    """Rows aligned by name across networks; whether one output-size column serves all."""
    per_model = [{row.name: row for row in table_rows(a)} for a in analyses]
    names: list[str] = []
    for rows in per_model:
        for name in rows:
            if name not in names and name != "head":
                names.append(name)
    names = sorted(names, key=lambda n: int(n[4:-2]) if n.startswith("conv") and "_" in n else 0)
    names.append("head")
    cells = [[rows.get(name) for rows in per_model] for name in names]
    shared = all(len({row.output_size for row in line if row is not None}) <= 1 for line in cells)
    return names, cells, shared


def _size_of(line: Sequence[TableRow | None]) -> str:
    return next((row.output_size for row in line if row is not None), "")


def to_markdown(analyses: Analysis | Sequence[Analysis], titles: Sequence[str] = ()) -> str:
    """Table 1 as a Markdown table; several networks give one column each."""
    analyses, titles = _inputs(analyses, titles)
    names, cells, shared = _grid(analyses)

    def layers_md(row: TableRow | None) -> str:
        if row is None:
            return ""
        parts = [str(item) for item in row.layers]
        if not shared:
            parts.insert(0, f"*{row.output_size}*")
        return "<br>".join(parts)

    header = ["layer name"] + (["output size"] if shared else []) + titles
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * len(header)) + "|",
    ]
    for name, line in zip(names, cells, strict=True):
        cells_md = [layers_md(row) for row in line]
        lines.append(
            "| " + " | ".join([name] + ([_size_of(line)] if shared else []) + cells_md) + " |"
        )
    for label, attribute in (("params", "total_params"), ("mult-adds", "mult_adds")):
        values = [human(getattr(a, attribute)) for a in analyses]
        lines.append("| " + " | ".join([label] + ([""] if shared else []) + values) + " |")
    return "\n".join(lines) + "\n"


def _latex_text(text: str) -> str:
    text = text.replace("_", r"\_")
    # 3x3 -> 3$\times$3, only between digits so that "max" keeps its x
    out = []
    for i, ch in enumerate(text):
        if ch == "x" and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit():
            out.append(r"$\times$")
        else:
            out.append(ch)
    return "".join(out)


def _latex_cell(row: TableRow | None, shared: bool) -> str:
    if row is None:
        return ""
    parts = [] if shared else [_latex_text(row.output_size)]
    for item in row.layers:
        if isinstance(item, Bracket):
            stacked = r" \\ ".join(rf"\text{{{_latex_text(line)}}}" for line in item.lines)
            parts.append(
                rf"$\left[\begin{{array}}{{c}}{stacked}\end{{array}}\right]\times{item.repeat}$"
            )
        else:
            parts.append(_latex_text(item))
    if len(parts) == 1:
        return parts[0]
    return r"\begin{tabular}[c]{@{}c@{}}" + r" \\ ".join(parts) + r"\end{tabular}"


def to_latex(analyses: Analysis | Sequence[Analysis], titles: Sequence[str] = ()) -> str:
    """Table 1 as a booktabs tabular, ready for a slide (needs booktabs and amsmath)."""
    analyses, titles = _inputs(analyses, titles)
    names, cells, shared = _grid(analyses)
    columns = "l" + ("c" if shared else "") + "c" * len(analyses)
    header = ["layer name"] + (["output size"] if shared else []) + [_latex_text(t) for t in titles]
    lines = [
        r"% Table 1 in the style of He et al. 2015; needs \usepackage{booktabs,amsmath}",
        rf"\begin{{tabular}}{{{columns}}}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
    ]
    for name, line in zip(names, cells, strict=True):
        body = [_latex_cell(row, shared) for row in line]
        first = [_latex_text(name)] + ([_latex_text(_size_of(line))] if shared else [])
        lines.append(" & ".join(first + body) + r" \\")
    lines.append(r"\midrule")
    for label, attribute in (("params", "total_params"), ("mult-adds", "mult_adds")):
        values = [human(getattr(a, attribute)) for a in analyses]
        lines.append(" & ".join([label] + ([""] if shared else []) + values) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_csv(analyses: Analysis | Sequence[Analysis], titles: Sequence[str] = ()) -> str:
    """One line per network and row, with exact counts."""
    analyses, titles = _inputs(analyses, titles)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "layer name", "output size", "layers", "params", "mult_adds"])
    for title, analysis in zip(titles, analyses, strict=True):
        for row in table_rows(analysis):
            layers = "; ".join(str(item) for item in row.layers)
            writer.writerow([title, row.name, row.output_size, layers, row.params, row.mult_adds])
    return buffer.getvalue()


def _title(analysis: Analysis) -> str:
    from resnet_viz.presets import describe

    return "model" if analysis.config is None else describe(analysis.config)
