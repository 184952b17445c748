"""The Parameters & compute page: its numbers against the analysis and against real blocks."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from conftest import open_page

from resnet_viz import ResNetConfig
from resnet_viz.analysis import analyze
from resnet_viz.blocks import BasicBlock, Bottleneck
from resnet_viz.costs import block_costs, cost_tree, part_totals

PAGE = "app_pages/compute.py"
THREE_STAGES = "resnet18~n-2.1.1~w-64.128.256"


def _charts(at: Any) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _stage_sums(analysis: Any) -> dict[str, tuple[int, int]]:
    """Per part, from the records directly: parameters once per module, mult-adds per call."""
    sums: dict[str, tuple[int, int]] = {}
    for r in analysis.leaves():
        part = r.part if r.stage_idx is None else f"layer{r.stage_idx + 1}"
        params, mult_adds = sums.get(part, (0, 0))
        sums[part] = (params + (r.params if r.call_index == 0 else 0), mult_adds + r.mult_adds)
    return sums


@pytest.mark.parametrize(
    "model", ["resnet50", "resnet18", "resnet152", "resnext50_32x4d", "resnet56", THREE_STAGES]
)
def test_compute_page_shows_where_the_parameters_go(model: str) -> None:
    at = open_page(PAGE, model)
    analysis = analyze(ResNetConfig.from_url_token(model))

    assert not at.exception
    treemap, params_bars, mult_adds_bars, memory = _charts(at)
    tree = treemap["data"][0]
    values = dict(zip(tree["ids"], tree["values"], strict=True))
    assert values["network"] == analysis.total_params
    expected = _stage_sums(analysis)
    for part, (params, _) in expected.items():
        assert values[part] == params
    assert sum(values[part] for part in expected) == analysis.total_params
    assert params_bars["data"][0]["y"] == [expected[p][0] for p in expected]
    assert mult_adds_bars["data"][0]["y"] == [expected[p][1] for p in expected]
    assert [m.label for m in at.metric] == [
        "Parameters",
        "Buffers",
        "Inference peak",
        "Training step",
    ]
    assert memory["data"][0]["name"] == "parameters"


def test_compute_page_treemap_switches_to_mult_adds() -> None:
    at = open_page(PAGE, "resnet18")

    at.get("button_group")[0].set_value("mult_adds").run()

    assert not at.exception
    tree = _charts(at)[0]["data"][0]
    values = dict(zip(tree["ids"], tree["values"], strict=True))
    assert values["network"] == analyze("resnet18").mult_adds
    assert (
        values["layer1.0"]
        == values["layer1.0.conv1"]
        + values["layer1.0.bn1"]
        + values["layer1.0.conv2"]
        + values["layer1.0.bn2"]
    )


def test_compute_page_memory_is_traced_at_the_chosen_batch() -> None:
    at = open_page(PAGE, "resnet50")

    at.select_slider(key="compute_batch").set_value(8).run()
    at.selectbox(key="compute_dtype").set_value("float16").run()

    assert not at.exception
    memory = analyze("resnet50", batch=8, dtype="float16").memory
    helps = {m.label: m.help for m in at.metric}
    assert helps["Parameters"] == f"{memory.parameters:,} bytes" == "51,114,064 bytes"
    assert helps["Training step"] == f"{memory.training_total:,} bytes"
    inference = memory.parameters + memory.buffers + memory.inference_peak
    assert helps["Inference peak"] == f"{inference:,} bytes"


def test_memory_is_linear_in_batch_for_inference_but_not_for_training() -> None:
    one, eight = (analyze("resnet18", batch=b).memory for b in (1, 8))

    # Why the page traces every batch instead of multiplying: training keeps some tensors
    # (BatchNorm's per-channel statistics) once per layer, whatever the batch.
    assert eight.inference_peak == 8 * one.inference_peak
    assert eight.training_activations != 8 * one.training_activations  # type: ignore[operator]


def test_parts_and_tree_add_up_to_the_totals() -> None:
    analysis = analyze("resnet110")

    parts = part_totals(analysis)
    tree = {node.id: node for node in cost_tree(analysis)}

    assert sum(p.params for p in parts) == analysis.total_params
    assert sum(p.mult_adds for p in parts) == analysis.mult_adds
    assert tree["network"].params == analysis.total_params
    children: dict[str, int] = {}
    for node in tree.values():
        if node.parent:
            children[node.parent] = children.get(node.parent, 0) + node.mult_adds
    assert all(tree[parent].mult_adds == total for parent, total in children.items())


def test_block_costs_equal_real_blocks() -> None:
    basic, bottleneck = block_costs(256, 56)

    real_basic, real_bottleneck = BasicBlock(256, 256), Bottleneck(256, 64)
    assert basic.params == sum(p.numel() for p in real_basic.parameters()) == 1_180_672
    assert bottleneck.params == sum(p.numel() for p in real_bottleneck.parameters()) == 70_400
    # Convolutions: weights x 56 x 56 output positions; BatchNorm: 2C once per image.
    convs = sum(m.weight.numel() for m in real_basic.modules() if isinstance(m, torch.nn.Conv2d))
    assert basic.mult_adds == convs * 56 * 56 + 2 * 512 == 3_699_377_152
    assert bottleneck.mult_adds == 69_632 * 56 * 56 + 2 * (64 + 64 + 256) == 218_366_720


def test_compute_page_block_tables_follow_the_choice() -> None:
    at = open_page(PAGE, "resnet50")

    at.selectbox(key="compute_channels").set_value(512).run()
    at.selectbox(key="compute_size").set_value(28).run()

    assert not at.exception
    basic, bottleneck = (frame.value for frame in at.dataframe[-2:])
    real = sum(p.numel() for p in Bottleneck(512, 128).parameters())
    assert bottleneck["parameters"].iloc[-1] == f"{real:,}"
    assert basic["parameters"].iloc[0] == f"3·3·512·512 = {9 * 512 * 512:,}"
    assert any("fewer mult-adds" in m.value for m in at.markdown)


def test_block_costs_refuse_bad_sizes() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        block_costs(30, 56)
    with pytest.raises(ValueError, match="size must be"):
        block_costs(64, 0)
