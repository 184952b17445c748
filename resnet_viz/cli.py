"""The `resnet-viz` command line.

Every error a user can cause ends as one line on standard error and exit status 2; output that
other programs read (JSON) goes to standard output alone.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from resnet_viz import __version__
from resnet_viz.analysis import Analysis, analyze, natural_input_size
from resnet_viz.config import short_repr
from resnet_viz.devices import OutOfMemoryError, free_device_memory, resolve_device
from resnet_viz.diagram import DIRECTIONS, FORMATS, LEVELS, THEMES, render_diagram
from resnet_viz.gradient_chart import gradient_chart_png
from resnet_viz.gradients import MAX_BATCH, default_batch, measure
from resnet_viz.model import ResNet, build_model, count_parameters
from resnet_viz.paper_table import human, to_csv, to_latex, to_markdown
from resnet_viz.presets import FAMILIES, PRESETS, describe, family_of, parse_model_spec
from resnet_viz.view3d import figure_3d


def _preset_rows(family: str | None) -> list[dict[str, object]]:
    names = FAMILIES[family] if family else tuple(PRESETS)
    rows = []
    for name in names:
        config = PRESETS[name]
        # On "meta" the count is exact and costs no memory, even for resnet1202.
        params = count_parameters(build_model(config, device="meta"))
        rows.append(
            {
                "name": name,
                "family": family_of(name),
                "block": config.block,
                "blocks_per_stage": list(config.blocks_per_stage),
                "depth": config.depth,
                "params": params,
            }
        )
    return rows


def _format_table(rows: list[dict[str, object]]) -> str:
    header = ("preset", "family", "block", "blocks per stage", "depth", "parameters")
    lines = [
        (
            str(row["name"]),
            str(row["family"]),
            str(row["block"]),
            "-".join(map(str, row["blocks_per_stage"])),  # type: ignore[call-overload]
            str(row["depth"]),
            f"{row['params']:,}",
        )
        for row in rows
    ]
    return "\n".join(_columns(header, lines, right={4, 5}))


def _columns(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    """Text columns under a ruled header; the `right` columns (numbers) align right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)]


def _cmd_presets(args: argparse.Namespace) -> int:
    rows = _preset_rows(args.family)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        print(_format_table(rows))
        print(
            "\ndepth: weighted layers on the main path, as the papers count them; a deep stem "
            "has 3 convs,\nso timm's resnet50d counts 52."
        )
    return 0


def _run_analysis(args: argparse.Namespace, spec: str) -> Analysis:
    config = parse_model_spec(spec)
    with warnings.catch_warnings():
        # The analysis keeps its warnings; they are printed once, below, in our own words.
        warnings.simplefilter("ignore")
        analysis = analyze(
            config, input_size=args.input, batch=args.batch, device=args.device, dtype=args.dtype
        )
    for message in analysis.warnings:
        print(f"resnet-viz: warning: {message}", file=sys.stderr)
    return analysis


def _summary_rows(analysis: Analysis) -> list[list[str]]:
    rows = []
    for r in sorted(analysis.records, key=lambda record: record.start_order):
        call = f" ({r.call_index + 1})" if r.call_index else ""
        # Containers show their subtotal in parentheses, so that a column sum stays true.
        wrap = (lambda v: v) if r.is_leaf else (lambda v: f"({v})")
        rf = "" if r.receptive_field is None else f"{r.receptive_field} / {r.jump}"
        if r.global_context:
            rf += " g"
        rows.append(
            [
                "  " * (r.depth - 1) + r.name + call,
                r.type,
                " x ".join(map(str, r.output_shape)),
                wrap(f"{r.params:,}") if r.params else "",
                wrap(f"{r.mult_adds:,}") if r.mult_adds else "",
                rf,
            ]
        )
    return rows


SUMMARY_HEADER = ["layer", "type", "output shape", "params", "mult-adds", "RF / jump"]


def _summary_text(analysis: Analysis) -> str:
    height, width = analysis.input_size
    lines = [
        f"{describe(analysis.config) if analysis.config else 'model'} at "
        f"{analysis.batch} x {height} x {width}, {analysis.dtype}, traced on {analysis.device}",
        "",
        *_columns(SUMMARY_HEADER, _summary_rows(analysis), right={3, 4}),
        "",
        _totals_text(analysis),
    ]
    return "\n".join(lines)


def _totals_text(analysis: Analysis) -> str:
    memory = analysis.memory
    training = (
        "not possible (BatchNorm would see one value per channel)"
        if memory.training_activations is None
        else f"{_mb(memory.training_activations)} kept for backward; "
        f"{_mb(memory.training_total or 0)} with parameters and gradients"
    )
    lines = [
        f"parameters:  {analysis.total_params:,} ({analysis.trainable_params:,} trainable)",
        f"mult-adds:   {analysis.mult_adds:,} ({human(analysis.mult_adds)} MACs; the papers' "
        f"'FLOPs' are these)",
        f"FLOPs:       {analysis.flops:,} (2 x mult-adds, as FLOP counters report)",
        f"memory:      parameters {_mb(memory.parameters)}, buffers {_mb(memory.buffers)}",
        f"activations: inference peak {_mb(memory.inference_peak)}; training {training}",
        "",
        "RF / jump: receptive field and effective stride in input pixels, over every path; "
        "g: also sees the whole image through a global pool (SE gate, head). Numbers in "
        "parentheses are a block's or stage's subtotals.",
    ]
    return "\n".join(lines)


def _mb(count: int) -> str:
    return f"{count / 2**20:.2f} MiB"


def _cmd_summary(args: argparse.Namespace) -> int:
    analysis = _run_analysis(args, args.model)
    if args.format == "json":
        print(json.dumps(analysis.to_dict(), indent=2))
    elif args.format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(list(analysis.records[0].to_dict()))
        for record in analysis.records:
            writer.writerow(
                json.dumps(v) if isinstance(v, list) else v for v in record.to_dict().values()
            )
        print(buffer.getvalue(), end="")
    elif args.format == "markdown":
        print("| " + " | ".join(SUMMARY_HEADER) + " |")
        print("|" + "---|" * len(SUMMARY_HEADER))
        for row in _summary_rows(analysis):
            row[0] = row[0].strip()
            print("| " + " | ".join(row) + " |")
        print()
        print(_totals_text(analysis))
    else:
        print(_summary_text(analysis))
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    analyses = []
    for spec in args.models:
        try:
            analyses.append(_run_analysis(args, spec))
        except ValueError as err:
            raise ValueError(f"{short_repr(spec)}: {err}") from None
    render = {"markdown": to_markdown, "latex": to_latex, "csv": to_csv}[args.format]
    print(render(analyses), end="")
    return 0


def _diagram_format(args: argparse.Namespace) -> str:
    suffix = os.path.splitext(args.output or "")[1].lower().lstrip(".")
    if args.format:
        if suffix in (*FORMATS, "html") and suffix != args.format:
            raise ValueError(
                f"--format {args.format} would write {args.format.upper()} into a .{suffix} "
                "file; name the file to match, or leave --format out"
            )
        return str(args.format)
    if not suffix or args.output == "-":
        return "html" if args.three_d else "svg"
    if suffix == "htm":
        suffix = "html"
    if suffix not in (*FORMATS, "html"):
        raise ValueError(
            f"cannot tell a format from .{suffix}; name the file .svg, .png, .pdf or .dot (or "
            ".html with --3d), or give --format"
        )
    return suffix


# Longer than anyone waits for a picture; also keeps the number finite for subprocess.
MAX_LAYOUT_SECONDS = 3600.0


def _seconds(value: str) -> float:
    """A time limit: a positive, finite number of seconds."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds above 0")
    return min(seconds, MAX_LAYOUT_SECONDS)


def _write_output(data: bytes, path: str | None, binary: bool) -> None:
    """To the file, replaced whole only once everything is written, or to standard output.

    A symbolic link keeps pointing where it did (its target is replaced), and a device or pipe
    (/dev/stdout, a FIFO) is written into, never replaced by a regular file.
    """
    if path is None or path == "-":
        if binary and sys.stdout.isatty():
            raise ValueError("PNG and PDF are not for a terminal; give a file with -o FILE")
        sys.stdout.buffer.write(data)
        return
    if not path.strip():
        raise ValueError("-o needs a file name")
    target = os.path.realpath(path)
    if os.path.isdir(target):
        raise ValueError(f"cannot write {path}: it is a folder; give a file name in it")
    if os.path.exists(target) and not os.path.isfile(target):
        try:
            with open(target, "wb") as stream:
                stream.write(data)
        except OSError as err:
            raise ValueError(f"cannot write {path}: {err.strerror or err}") from None
        return
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise ValueError(f"cannot write {path}: the folder {folder} does not exist")
    mode = os.stat(target).st_mode & 0o777 if os.path.exists(target) else _new_file_mode()
    partial = None
    try:
        # A name of its own, so that two runs writing the same file cannot collide.
        handle, partial = tempfile.mkstemp(
            dir=folder, prefix=f".{os.path.basename(target)}.", suffix=".partial"
        )
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(partial, mode)
        os.replace(partial, target)
    except OSError as err:
        if partial is not None and os.path.exists(partial):
            os.unlink(partial)
        raise ValueError(f"cannot write {path}: {err.strerror or err}") from None


def _new_file_mode() -> int:
    """What open() would give a new file: 0o666 less the umask (mkstemp's own is 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _cmd_diagram(args: argparse.Namespace) -> int:
    fmt = _diagram_format(args)
    if args.three_d:
        return _write_3d(args, fmt)
    if fmt == "html":
        raise ValueError("HTML is for the 3D view (--3d); diagrams are svg, png, pdf or dot")
    analysis = _run_analysis(args, args.model)
    other = _run_analysis(args, args.compare) if args.compare else None
    rendered = render_diagram(
        analysis,
        args.level,
        fmt,
        timeout=args.timeout,
        compare=other,
        # A preset or link token names itself; inline JSON would make an unreadable title.
        names=(
            args.model if len(args.model) <= 40 else "A",
            (args.compare or "") if len(args.compare or "") <= 40 else "B",
        ),
        collapse=not args.no_collapse,
        highlight=args.highlight,
        direction=args.direction,
        theme=args.theme,
        counts=args.counts,
    )
    if rendered.notice:
        print(f"resnet-viz: notice: {rendered.notice}", file=sys.stderr)
    _write_output(rendered.data, args.output, binary=fmt in ("png", "pdf"))
    return 0


def _write_3d(args: argparse.Namespace, fmt: str) -> int:
    if fmt != "html":
        raise ValueError("the 3D view is an interactive HTML page; use -o FILE.html")
    if args.level == "stages":
        raise ValueError("the 3D view has a box per block or per layer: --level blocks or layers")
    unused = [
        flag
        for flag, given in (
            ("--compare", args.compare),
            ("--highlight", args.highlight),
            ("--counts", args.counts),
            ("--direction", args.direction != "TB"),
        )
        if given
    ]
    if unused:
        verb = "is" if len(unused) == 1 else "are"
        raise ValueError(f"{', '.join(unused)} {verb} for diagrams, not the 3D view")
    analysis = _run_analysis(args, args.model)
    figure = figure_3d(analysis, level=args.level, theme=args.theme, collapse=not args.no_collapse)
    page = figure.to_html(include_plotlyjs=True, full_html=True)
    _write_output(page.encode(), args.output, binary=False)
    return 0


# -- activation maps -------------------------------------------------------------------

DEFAULT_MODEL = "resnet18"
_PUBLISHED = re.compile(r"^IMAGENET1K_V\d+$", re.IGNORECASE)


def _channel_list(text: str | None) -> list[int] | None:
    """--channels "0,5,7": whole numbers, each once, in the order given."""
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",")]
    if not all(re.fullmatch(r"\d+", part) for part in parts):
        raise ValueError(
            f"--channels takes channel numbers separated by commas, such as 0,5,7; got {text!r}"
        )
    return list(dict.fromkeys(int(part) for part in parts))


def _alpha(value: str) -> float:
    try:
        alpha = float(value)
    except ValueError:
        alpha = math.nan
    if not 0 <= alpha <= 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a strength from 0 to 1")
    return alpha


def _image_device(value: str) -> str:
    if value.strip().lower() == "meta":
        raise argparse.ArgumentTypeError(
            "meta holds no values, so there are no maps to show; use cpu, cuda or mps"
        )
    return value


# Notes wait until the command has succeeded: a failing command prints its one error line only.
_NOTES: list[str] = []


def _note(message: str) -> None:
    _NOTES.append(message)


def _load_network(args: argparse.Namespace) -> tuple[ResNet, int | None]:
    """The network the options ask for, and the resize its weights expect (None: the default).

    With --weights alone the configuration comes from the checkpoint; with --model as well the
    two must agree, except in the number of classes, which the checkpoint decides.
    """
    from resnet_viz.weights import (
        cached_weights_path,
        fetch_published_weights,
        load_checkpoint,
        published_weights,
    )

    requested = parse_model_spec(args.model) if args.model else None
    if args.weights is None:
        model = build_model(requested or DEFAULT_MODEL, device=args.device, seed=args.seed)
        _note(
            f"{describe(model.config)} with random weights (seed {args.seed}, as the app's): the "
            "maps show an untrained network; pass --weights FILE for trained ones"
        )
        return model, None

    resize = None
    source: str | Path = args.weights
    if _PUBLISHED.match(args.weights):
        # torchvision's published weights, by their name: from the torch hub cache, or
        # downloaded into it.
        preset = args.model or DEFAULT_MODEL
        entries = [e for e in published_weights(preset) if e.name == args.weights.upper()]
        if not entries:
            names = ", ".join(e.name for e in published_weights(preset)) or "none"
            raise ValueError(
                f"torchvision publishes no {args.weights.upper()} weights for {preset!r} "
                f"(it has: {names}); give --model a torchvision preset, or --weights a file"
            )
        entry = entries[0]
        if not cached_weights_path(entry).exists():
            # Said at once, before the download starts.
            print(
                f"resnet-viz: fetching {entry.name} for {preset} from {entry.url} into the torch "
                "hub cache",
                file=sys.stderr,
            )
        source, resize = fetch_published_weights(entry), entry.resize_size
    loaded = load_checkpoint(source, config=requested, device=args.device)
    for notice in loaded.notices:
        _note(notice)
    return loaded.model, resize


def _photo_input(args: argparse.Namespace, model: ResNet, resize: int | None) -> Any:
    from resnet_viz.images import load_image, prepare

    photo = load_image(args.image)
    for notice in photo.notices:
        _note(notice)
    size = args.size or natural_input_size(model.config)[0]
    prepared = prepare(photo, args.recipe, size, model.config.in_channels, resize=resize)
    return photo, prepared


def _write_png(path: str, data: bytes) -> None:
    _write_output(data, path, binary=True)


def _cmd_activations(args: argparse.Namespace) -> int:
    from resnet_viz.activations import (
        capture,
        channel_stats,
        feature_grid,
        layer_label,
        parse_layer,
    )
    from resnet_viz.rendering import feature_grid_image, png_bytes, titled

    if args.format == "png" and not args.output:
        raise ValueError("give -o FILE.png for the grid, or --format json for the statistics")
    if args.format == "json" and args.output == "-":
        raise ValueError(
            "standard output can carry the PNG or the JSON, not both; give -o FILE.png"
        )
    channels = _channel_list(args.channels)  # before any work, so a typo fails at once
    model, resize = _load_network(args)
    _, prepared = _photo_input(args, model, resize)
    key = parse_layer(args.layer)
    maps = capture(model, prepared.tensor, [key]).outputs[key]
    grid = feature_grid(maps, top_k=args.top_k, channels=channels, normalisation=args.normalise)
    if args.output:
        weights = model.weights_source or f"random weights (seed {args.seed})"
        scale = "each map on its own scale" if args.normalise == "channel" else "one scale"
        caption = [
            f"{describe(model.config)}, {weights}",
            f"{layer_label(key)} on {os.path.basename(args.image)}: {len(grid.channels)} of "
            f"{maps.shape[1]} channels, {scale}",
        ]
        _write_png(args.output, png_bytes(titled(feature_grid_image(grid), caption)))
    if args.format == "json":
        report = {
            "image": args.image,
            "model": model.config.to_dict(),
            "weights": model.weights_source,
            "layer": layer_label(key),
            "shape": list(maps.shape),
            "input_size": list(prepared.input_size),
            "shown_channels": grid.channels,
            "channels": [stats.to_dict() for stats in channel_stats(maps)],
        }
        report, replaced = _finite_for_json(report)
        if replaced:
            _note(
                "the network output non-finite values (NaN or infinity); they are null in the JSON"
            )
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        _summary_line(
            args.output,
            f"{layer_label(key)} {' x '.join(map(str, maps.shape))}: channels "
            f"{', '.join(map(str, grid.channels))} -> {args.output}",
        )
    return 0


def _finite_for_json(value: Any) -> tuple[Any, bool]:
    """`value` with every NaN and infinity made None (JSON has no such numbers), and whether
    there were any."""
    if isinstance(value, float):
        return (value, False) if math.isfinite(value) else (None, True)
    if isinstance(value, dict):
        pairs = [(key, _finite_for_json(item)) for key, item in value.items()]
        return {key: item for key, (item, _) in pairs}, any(hit for _, (_, hit) in pairs)
    if isinstance(value, list):
        items = [_finite_for_json(item) for item in value]
        return [item for item, _ in items], any(hit for _, hit in items)
    return value, False


def _summary_line(output: str, line: str) -> None:
    """What was written, on standard output unless the PNG itself went there."""
    print(line, file=sys.stderr if output == "-" else sys.stdout)


def _cmd_cam(args: argparse.Namespace) -> int:
    from resnet_viz.activations import grad_cam, layer_label
    from resnet_viz.images import imagenet_labels
    from resnet_viz.rendering import heat_overlay, png_bytes

    if args.weights is None:
        raise ValueError(
            "cam needs trained weights: --weights FILE (a .pth/.pt/.bin/.safetensors "
            "checkpoint) or IMAGENET1K_V1 / IMAGENET1K_V2 for a torchvision preset; with random "
            "weights no class has any evidence to show"
        )
    model, resize = _load_network(args)
    photo, prepared = _photo_input(args, model, resize)
    result = grad_cam(model, prepared.tensor, args.layer, args.class_index)
    overlay = heat_overlay(photo.image, result.cam, prepared, alpha=args.alpha)
    _write_png(args.output, png_bytes(overlay))

    label = ""
    if model.config.num_classes == 1000:
        label = f" ({imagenet_labels()[result.class_index]})"
    flat = " (flat: no evidence found, the map is zeros)" if result.peak == 0 else ""
    _summary_line(
        args.output,
        f"Grad-CAM of class {result.class_index}{label}, probability "
        f"{result.probability:.3f}, at {layer_label(result.layer)}{flat} -> {args.output} "
        f"({overlay.width}x{overlay.height})",
    )
    return 0


def _cmd_gradients(args: argparse.Namespace) -> int:
    config = parse_model_spec(args.model)
    if args.no_norm:
        config = config.replace(norm="none", zero_init_residual=False)
    # The twin differs in the shortcuts alone; a plain net cannot start its blocks as identity.
    twin = config.replace(residual=not config.residual, zero_init_residual=False)
    if args.batch is not None and not 1 <= args.batch <= MAX_BATCH:
        raise ValueError(f"--batch must be between 1 and {MAX_BATCH}, got {args.batch}")
    flow = measure(config, batch=args.batch, seed=args.seed)
    twin_flow = measure(twin, batch=args.batch, seed=args.seed)
    fmt = args.format or ("png" if (args.output or "").lower().endswith(".png") else "json")
    if fmt == "png":
        if args.output is None:
            raise ValueError("--format png needs a file: add -o FILE.png")
        batch = args.batch or default_batch(config)
        title = (
            f"Weight-gradient norm per layer at initialisation (batch {batch}, seed {args.seed})"
        )
        _write_output(gradient_chart_png([flow, twin_flow], title), args.output, binary=True)
        return 0
    document = {**flow.to_dict(), "twin": twin_flow.to_dict()}
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    _write_output(text.encode(), args.output, binary=False)
    return 0


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="a photo: JPEG, PNG, WebP, BMP, TIFF, GIF")
    parser.add_argument(
        "--model", default=None, help=f"{MODEL_HELP} (default: the checkpoint's, else resnet18)"
    )
    parser.add_argument(
        "--recipe",
        choices=("torchvision", "whole"),
        default="torchvision",
        help="torchvision: resize and centre crop (default); whole: the whole photo",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="crop size, or the short side with --recipe whole (default 224; 32 for CIFAR nets)",
    )
    parser.add_argument(
        "--device", type=_image_device, default="cpu", help="cpu (default), cuda or mps"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the random weights when there is no --weights (0, as in the app)",
    )


def _add_analysis_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        default=None,
        help="input size: 224, or HEIGHTxWIDTH such as 160x192 (default: 32 for the CIFAR "
        "nets, else 224)",
    )
    parser.add_argument("--batch", type=int, default=1, help="images per batch (default 1)")
    parser.add_argument(
        "--device",
        default="meta",
        help="meta (no weights, the default), cpu, cuda or mps: where the traced pass runs",
    )
    parser.add_argument(
        "--dtype", default="float32", help="float32, float16 or bfloat16, for bytes and memory"
    )


MODEL_HELP = "a preset name, a link token (resnet50~se-1), inline JSON or a JSON file"


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"resnet-viz: error: {message}; see `{self.prog} --help`\n")


def _make_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="resnet-viz",
        description="Build ResNet variants and look inside them.",
    )
    parser.add_argument("--version", action="version", version=f"resnet-viz {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log what happens on standard error"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    presets = commands.add_parser("presets", help="list every preset with its parameter count")
    presets.add_argument("--family", choices=sorted(FAMILIES), help="only this family")
    presets.add_argument(
        "--format", choices=("table", "json"), default="table", help="table (default) or json"
    )
    presets.set_defaults(handler=_cmd_presets)

    summary = commands.add_parser(
        "summary", help="every layer's shape, parameters, mult-adds and receptive field"
    )
    summary.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    _add_analysis_options(summary)
    summary.add_argument("--format", choices=("table", "json", "csv", "markdown"), default="table")
    summary.set_defaults(handler=_cmd_summary)

    table = commands.add_parser(
        "table", help="the paper's Table 1; several models give one column each"
    )
    table.add_argument("models", metavar="MODEL", nargs="+", help=MODEL_HELP)
    _add_analysis_options(table)
    table.add_argument(
        "--format",
        choices=("markdown", "latex", "csv"),
        default="markdown",
        help="markdown (default), latex (booktabs, for a slide) or csv (exact counts)",
    )
    table.set_defaults(handler=_cmd_table)

    diagram = commands.add_parser(
        "diagram", help="a block diagram (SVG, PNG, PDF or DOT), or the 3D view as HTML"
    )
    diagram.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    diagram.add_argument("--level", choices=LEVELS, default="blocks", help="default: blocks")
    diagram.add_argument(
        "--format",
        choices=(*FORMATS, "html"),
        help="svg, png, pdf, dot, or html for --3d (default: from the file name, else svg)",
    )
    diagram.add_argument("-o", "--output", metavar="FILE", help="where to write (default: stdout)")
    diagram.add_argument("--theme", choices=tuple(THEMES), default="light")
    diagram.add_argument("--direction", choices=DIRECTIONS, default="TB", help="TB or LR")
    diagram.add_argument(
        "--counts", action="store_true", help="parameters and mult-adds on every node"
    )
    diagram.add_argument(
        "--no-collapse", action="store_true", help="draw every block, also in long runs"
    )
    diagram.add_argument("--highlight", metavar="PART", help="stem, layer2, layer2.0, head, ...")
    diagram.add_argument(
        "--compare", metavar="MODEL", help="show what differs from this second model"
    )
    diagram.add_argument("--3d", dest="three_d", action="store_true", help="the 3D view")
    diagram.add_argument(
        "--timeout",
        type=_seconds,
        default=5.0,
        help="seconds Graphviz may take before the stages level is drawn instead (default 5)",
    )
    _add_analysis_options(diagram)
    diagram.set_defaults(handler=_cmd_diagram)

    activations = commands.add_parser(
        "activations", help="the feature maps of one layer for a photo, as a grid or statistics"
    )
    _add_image_options(activations)
    activations.add_argument(
        "--weights",
        default=None,
        help="a checkpoint (.pth, .pt, .bin, .safetensors) or IMAGENET1K_V1/V2 (default: random)",
    )
    activations.add_argument(
        "--layer", required=True, help="a layer name as `resnet-viz summary` lists it"
    )
    activations.add_argument(
        "--top-k", type=int, default=16, help="show the channels with the largest mean (16)"
    )
    activations.add_argument("--channels", default=None, help="these channels instead: 0,5,7")
    activations.add_argument(
        "--normalise",
        choices=("channel", "layer"),
        default="channel",
        help="scale each map alone (default) or all by the layer's range",
    )
    activations.add_argument("-o", "--output", default=None, help="where to write the PNG grid")
    activations.add_argument(
        "--format",
        choices=("png", "json"),
        default="png",
        help="png (default) or json: per-channel statistics on standard output",
    )
    activations.set_defaults(handler=_cmd_activations)

    cam = commands.add_parser("cam", help="Grad-CAM of a photo for one class, over the photo")
    _add_image_options(cam)
    cam.add_argument(
        "--weights",
        default=None,
        help="a checkpoint (.pth, .pt, .bin, .safetensors) or IMAGENET1K_V1/V2",
    )
    cam.add_argument("--layer", default=None, help="a layer with maps (default: the last stage)")
    cam.add_argument(
        "--class",
        dest="class_index",
        type=int,
        default=None,
        help="the class to explain (default: the most probable)",
    )
    cam.add_argument("--alpha", type=_alpha, default=0.5, help="strength of the colours (0.5)")
    cam.add_argument("-o", "--output", required=True, help="where to write the PNG overlay")
    cam.set_defaults(handler=_cmd_cam)

    gradients = commands.add_parser(
        "gradients",
        help="gradient norm of every layer at initialisation, for a net and its plain twin",
    )
    gradients.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    gradients.add_argument(
        "--batch",
        type=int,
        default=None,
        help="generated images per batch (default: 64 for the CIFAR nets, else 8 at 224)",
    )
    gradients.add_argument(
        "--no-norm", action="store_true", help="both nets without BatchNorm (norm='none')"
    )
    gradients.add_argument(
        "--format",
        choices=("json", "png"),
        default=None,
        help="json (default) or png: the log-scale chart (default from the file name)",
    )
    gradients.add_argument(
        "-o", "--output", metavar="FILE", help="where to write (default: stdout)"
    )
    gradients.add_argument(
        "--seed", type=int, default=0, help="seeds the weights and the batch (default 0)"
    )
    gradients.set_defaults(handler=_cmd_gradients)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _make_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    _NOTES.clear()
    try:
        status = int(args.handler(args))
        sys.stdout.flush()  # a closed pipe shows up here rather than at interpreter exit
        for message in _NOTES:
            print(f"resnet-viz: note: {message}", file=sys.stderr)
        return status
    except ValueError as err:
        print(f"resnet-viz: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`| head`); say nothing more, as other command-line tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OutOfMemoryError as err:
        # A pass the memory checks let through (they leave out convolution workspaces).
        logging.getLogger(__name__).info("out of memory", exc_info=True)
        reason = (str(err) or type(err).__name__).splitlines()[0][:160]
        device = getattr(args, "device", "cpu")
        free_device_memory(resolve_device(device))
        print(
            f"resnet-viz: error: out of memory on {device} ({reason}); use a smaller --input, "
            "--size or --batch" + ("" if device == "cpu" else ", or --device cpu"),
            file=sys.stderr,
        )
        return 2
    except (RuntimeError, MemoryError) as err:
        # PyTorch's own failures (out of memory on a device, say) that no check foresaw.
        logging.getLogger(__name__).info("failure", exc_info=True)
        first_line = (str(err) or type(err).__name__).splitlines()[0]
        print(f"resnet-viz: error: {first_line} (run with -v for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
