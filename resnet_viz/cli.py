"""The `resnet-viz` command line.

Every error a user can cause ends as one line on standard error and exit status 2; output that
other programs read (JSON) goes to standard output alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from resnet_viz import __version__
from resnet_viz.model import build_model, count_parameters
from resnet_viz.presets import FAMILIES, PRESETS, family_of


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
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    right = {4, 5}  # numbers line up on the right

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, lines)])


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


def _make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    presets.add_argument("--format", choices=("table", "json"), default="table")
    presets.set_defaults(handler=_cmd_presets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _make_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args))
    except ValueError as err:
        print(f"resnet-viz: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
