"""Where a network's parameters, mult-adds and memory go: per part, per block, per batch size.

Everything here is read off an `Analysis` (or made by `analyze` on `meta`), so the numbers are
the analysis's own: the app's compute and compare pages draw them, the tests add them up again.

Limitations:
    Mult-adds follow the analysis's convention (torchinfo's): a BatchNorm counts its 2 x C
    parameters once per sample, not per pixel, and activations, pools and additions count
    nothing. The worked block example states its formulas in the same convention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from resnet_viz.analysis import Analysis, LayerRecord, Memory, analyze
from resnet_viz.blocks import BasicBlock, Bottleneck
from resnet_viz.config import ResNetConfig
from resnet_viz.paper_table import sum_mult_adds, sum_params

MEASURES = ("params", "mult_adds")


@dataclass(frozen=True)
class PartTotal:
    """Parameters and mult-adds of the stem, one stage or the head."""

    name: str  # "stem", "layer1", ..., "head"
    label: str  # "Stem", "Stage 1", ..., "Head"
    params: int
    mult_adds: int


@dataclass(frozen=True)
class TreeNode:
    """One box of the treemap: the network, a part, a block, or a layer."""

    id: str
    parent: str
    label: str
    params: int
    mult_adds: int

    def value(self, measure: str) -> int:
        return self.params if measure == "params" else self.mult_adds


def _part_key(record: LayerRecord) -> tuple[str, str]:
    if record.stage_idx is None:
        return record.part, record.part.capitalize()
    return f"layer{record.stage_idx + 1}", f"Stage {record.stage_idx + 1}"


def part_totals(analysis: Analysis) -> list[PartTotal]:
    """Stem, each stage and head in network order; their sums are the analysis's totals."""
    groups: dict[tuple[str, str], list[LayerRecord]] = {}
    for record in sorted(analysis.records, key=lambda r: r.start_order):
        groups.setdefault(_part_key(record), []).append(record)
    return [
        PartTotal(name, label, sum_params(records), sum_mult_adds(records))
        for (name, label), records in groups.items()
    ]


def cost_tree(analysis: Analysis, root: str = "network") -> list[TreeNode]:
    """Network -> part -> block -> layer, each parent the exact sum of its children.

    Leaves are the leaf module calls; a module called twice (torchvision's shared ReLU) is one
    leaf with the mult-adds of both calls and its parameters once. Parts without blocks (stem,
    head) hold their layers directly.
    """
    leaves: dict[str, list[int]] = {}
    parents: dict[str, tuple[str, str]] = {}  # id -> (parent id, label)
    for record in sorted(analysis.leaves(), key=lambda r: r.start_order):
        part, part_label = _part_key(record)
        parents.setdefault(part, (root, part_label))
        parent = part
        if record.block_idx is not None:
            parent = f"{part}.{record.block_idx}"
            parents.setdefault(parent, (part, f"block {record.block_idx}"))
        prefix = f"{parent}." if parent != record.part else ""
        label = record.name[len(prefix) :] if record.name.startswith(prefix) else record.name
        parents.setdefault(record.name, (parent, label))
        counts = leaves.setdefault(record.name, [0, 0])
        counts[0] += record.params if record.call_index == 0 else 0
        counts[1] += record.mult_adds

    totals = {name: list(counts) for name, counts in leaves.items()}
    # Parents were met before their children, so adding up in reverse order reaches the root.
    for node in reversed(list(parents)):
        parent = parents[node][0]
        sums = totals.setdefault(parent, [0, 0])
        sums[0] += totals[node][0]
        sums[1] += totals[node][1]
    nodes = [TreeNode(root, "", root, *totals[root])]
    nodes += [
        TreeNode(node, parent, label, *totals[node]) for node, (parent, label) in parents.items()
    ]
    return nodes


def memory_by_batch(
    config: ResNetConfig,
    batches: Sequence[int],
    input_size: int | tuple[int, int] | None = None,
    dtype: str = "float32",
) -> dict[int, Memory]:
    """The memory at each batch size, each traced on `meta` at that batch.

    NOTE: traced rather than scaled from batch 1, because it does not scale exactly: training
    keeps BatchNorm's per-channel statistics once per layer whatever the batch, and batch 1
    cannot train at all where a map shrinks to 1x1.
    """
    return {
        batch: analyze(config, input_size=input_size, batch=batch, dtype=dtype).memory
        for batch in batches
    }


# -- basic block against bottleneck ---------------------------------------------------------


@dataclass(frozen=True)
class LayerCost:
    """One layer of a block with its formula and its numbers."""

    layer: str
    shape: str  # "3x3, 64 -> 64"
    params_formula: str
    params: int
    mult_adds_formula: str
    mult_adds: int


@dataclass(frozen=True)
class BlockCost:
    """A block's layers and totals, read off a real built block."""

    name: str
    layers: tuple[LayerCost, ...]
    params: int
    mult_adds: int


def _conv_cost(name: str, k: int, c_in: int, c_out: int, size: int) -> list[LayerCost]:
    """A k x k convolution without bias and its BatchNorm, at `size` x `size` outputs."""
    weights = k * k * c_in * c_out
    conv = LayerCost(
        name,
        f"{k}x{k}, {c_in} -> {c_out}",
        f"{k}·{k}·{c_in}·{c_out}",
        weights,
        f"{weights:,}·{size}·{size}",
        weights * size * size,
    )
    # BatchNorm's scale and shift per channel, counted once per image (torchinfo's convention).
    norm = LayerCost(
        f"bn{name[-1]}", f"BatchNorm, {c_out}", f"2·{c_out}", 2 * c_out, f"2·{c_out}", 2 * c_out
    )
    return [conv, norm]


def block_costs(channels: int, size: int) -> tuple[BlockCost, BlockCost]:
    """A basic block and a bottleneck, both `channels` in and out at `size` x `size`.

    The basic block is two 3x3 convolutions at `channels`; the bottleneck squeezes to
    channels / 4 with a 1x1, does its 3x3 there, and expands back, as ResNet-50's blocks do.
    Every count is worked out from the formulas and then checked against the real block, which
    is built and analysed on `meta`; a mismatch raises rather than showing a wrong number.
    """
    if channels < 4 or channels % 4:
        raise ValueError(f"channels must be a multiple of 4 from 4 up, got {channels!r}")
    if not 1 <= size <= 1024:
        raise ValueError(f"size must be from 1 to 1024 pixels, got {size!r}")
    width = channels // 4
    basic = _conv_cost("conv1", 3, channels, channels, size) + _conv_cost(
        "conv2", 3, channels, channels, size
    )
    bottleneck = (
        _conv_cost("conv1", 1, channels, width, size)
        + _conv_cost("conv2", 3, width, width, size)
        + _conv_cost("conv3", 1, width, channels, size)
    )
    with torch.device("meta"):  # shapes and counts need no weights
        built = (BasicBlock(channels, channels), Bottleneck(channels, width))
    costs = []
    for name, layers, module in zip(
        ("basic block", "bottleneck"), (basic, bottleneck), built, strict=True
    ):
        cost = BlockCost(
            name,
            tuple(layers),
            sum(layer.params for layer in layers),
            sum(layer.mult_adds for layer in layers),
        )
        _check_against(cost, module, channels, size)
        costs.append(cost)
    return costs[0], costs[1]


def _check_against(cost: BlockCost, block: nn.Module, channels: int, size: int) -> None:
    analysis = analyze(block, input_size=size)
    params = sum(p.numel() for p in block.parameters())
    if (params, analysis.mult_adds) != (cost.params, cost.mult_adds):
        raise RuntimeError(
            f"the {cost.name} formulas give {cost.params:,} parameters and {cost.mult_adds:,} "
            f"mult-adds, the built block has {params:,} and {analysis.mult_adds:,}"
        )
