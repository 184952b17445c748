"""Block diagrams: wiring checked against torch.fx, shapes against the analysis, DOT against
golden files, and the Graphviz program run for real."""

from __future__ import annotations

import operator
import os
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import needs_graphviz
from torch import fx, nn

from resnet_viz import ResNetConfig, analyze, build_model
from resnet_viz.blocks import ZeroPadShortcut
from resnet_viz.diagram import (
    THEMES,
    GraphvizMissing,
    LayoutTimeout,
    _drawing,
    _merge,
    _quote,
    diagram,
    diff_diagram,
    render,
    render_diagram,
)
from resnet_viz.view3d import _side, _thickness, figure_3d

GOLDEN = Path(__file__).parent / "golden"


# -- wiring: the layers level against torch.fx's graph of the real module -------------------


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        # Option A's shortcut is one node in the diagram, as it is one module.
        return isinstance(m, ZeroPadShortcut) or super().is_leaf_module(m, qualname)


def _fx_edges(config: ResNetConfig) -> set[tuple[str, str]]:
    """Data flow between module calls, additions and products, from torch.fx.

    A module call is "name#call"; an addition or product is named by what flows into it, so
    that the same node gets the same name in both graphs whatever each graph calls it.
    """
    model = build_model(config, device="meta")
    graph = _Tracer().trace(model)
    calls: Counter[str] = Counter()
    name_of: dict[fx.Node, str] = {}
    edges: set[tuple[str, str]] = set()
    for node in graph.nodes:
        sources = [name_of[a] for a in node.all_input_nodes]
        if node.op == "placeholder":
            name_of[node] = "input"
        elif node.op == "call_module":
            name_of[node] = f"{node.target}#{calls[node.target]}"
            calls[node.target] += 1
        elif node.op == "call_function" and node.target in (operator.add, operator.mul):
            symbol = "+" if node.target is operator.add else "×"
            name_of[node] = f"{symbol}({','.join(sorted(sources))})"
        elif node.op == "output":
            name_of[node] = "output"
        else:  # flatten and friends pass their input through
            (name_of[node],) = sources
            continue
        edges.update((source, name_of[node]) for source in sources)
    return edges


def _diagram_edges(config: ResNetConfig) -> set[tuple[str, str]]:
    drawing = _drawing(analyze(config), "layers", counts=False, collapse=False)
    inputs: dict[str, list[str]] = {}
    for edge in drawing.edges:
        inputs.setdefault(edge.head, []).append(edge.tail)

    def name(node_id: str) -> str:
        node = drawing.nodes[node_id]
        if node.kind == "merge":
            return f"{node.title}({','.join(sorted(name(t) for t in inputs[node_id]))})"
        return node_id

    return {(name(e.tail), name(e.head)) for e in drawing.edges}


WIRING = {
    "resnet18": "resnet18",
    "resnet50": "resnet50",
    "resnet50d (deep stem, avg-pool shortcut)": "resnet50d",
    "seresnet50 (SE gate)": "seresnet50",
    "preact_resnet18": "preact_resnet18",
    "preact_resnet50": "preact_resnet50",
    "resnet20 (option A)": "resnet20",
    "plain18 (no shortcuts)": "plain18",
    "plain18 with SE (a product, no addition)": "plain18~se-1",
    "custom: dilated, shortcut C, 3 stages": ResNetConfig(
        block="bottleneck",
        blocks_per_stage=(1, 2, 2),
        widths=(32, 64, 128),
        shortcut="C",
        dilated_stages=(3,),
    ),
}


@pytest.mark.parametrize("label", list(WIRING))
def test_layer_wiring_matches_torch_fx(label: str) -> None:
    spec = WIRING[label]
    config = spec if isinstance(spec, ResNetConfig) else ResNetConfig.from_url_token(spec)
    assert _diagram_edges(config) == _fx_edges(config)


# -- the blocks and stages levels ------------------------------------------------------------


def test_blocks_level_of_resnet50() -> None:
    analysis = analyze("resnet50")
    drawing = _drawing(analysis, "blocks", counts=False, collapse=False)
    blocks = [n for n in drawing.nodes.values() if n.id.count(".") == 1 and "/" not in n.id]
    assert [n.id for n in blocks][:4] == ["layer1.0", "layer1.1", "layer1.2", "layer2.0"]
    assert len(blocks) == 16
    adds = [n for n in drawing.nodes.values() if n.id.endswith("/add")]
    assert len(adds) == 16 and all(n.title == "+ relu" for n in adds)
    # Each stage's first block projects; the first of layer2-4 also halves the map.
    shortcuts = [n.id for n in drawing.nodes.values() if n.kind == "shortcut"]
    assert shortcuts == [f"layer{i}.0/shortcut" for i in range(1, 5)]
    assert [n.id for n in blocks if n.kind == "down"] == ["layer2.0", "layer3.0", "layer4.0"]
    skips = [e for e in drawing.edges if e.kind == "skip"]
    assert len(skips) == 12
    # Shapes on the edges are the analysis's: into layer3.0, and out of its shortcut.
    labels = {(e.tail, e.head): e.label for e in drawing.edges}
    assert labels[("layer2.3/add", "layer3.0")] == "512×28×28"
    assert labels[("layer3.0/shortcut", "layer3.0/add")] == "1024×14×14"
    assert labels[("layer4.2/add", "head")] == "2048×7×7"
    assert labels[("head", "output")] == "1000"
    assert drawing.nodes["layer3.0"].lines == [
        "1×1 conv, 256",
        "3×3 conv, 256, /2",
        "1×1 conv, 1024",
    ]


def test_runs_of_identical_blocks_collapse() -> None:
    drawing = _drawing(analyze("resnet152"), "blocks", counts=True, collapse=True)
    run = drawing.nodes["layer3.1"]
    assert run.title == "layer3.1 – layer3.35"
    assert run.stacked and "× 35, each with its own skip" in run.lines
    assert "layer3.35" in run.keys and "layer3.36" not in run.keys
    # layer1 has three blocks: 1.1 and 1.2 alone make too short a run to collapse.
    assert "layer1.2" in drawing.nodes
    # The counts of the collapsed node are those of all 35 blocks.
    analysis = analyze("resnet152")
    params = sum(analysis.find(f"layer3.{i}").params for i in range(1, 36))
    assert any(line.startswith(f"{params / 1e6:.1f}M params") for line in run.lines), run.lines


def test_stages_level_rows_follow_the_network() -> None:
    analysis = analyze("resnet56")
    drawing = _drawing(analysis, "stages", counts=False, collapse=True)
    assert list(drawing.nodes) == ["input", "stem", "layer1", "layer2", "layer3", "head", "output"]
    assert drawing.nodes["layer2"].lines == [
        "output 16×16",
        "[ 3×3 conv, 32 ]",
        "[ 3×3 conv, 32 ]",
        "× 9 blocks",
        "first block /2",
    ]
    assert drawing.nodes["stem"].lines == ["3×3 conv, 16"]
    assert [e.label for e in drawing.edges] == [
        "3×32×32",
        "16×32×32",
        "16×32×32",
        "32×16×16",
        "64×8×8",
        "10",
    ]


def test_option_a_and_preactivation_blocks() -> None:
    drawing = _drawing(analyze("resnet20"), "blocks", counts=False, collapse=False)
    assert drawing.nodes["layer2.0/shortcut"].lines == ["subsample, pad to 32, /2"]
    pre = _drawing(analyze("preact_resnet18"), "blocks", counts=False, collapse=False)
    # Nothing follows a pre-activation addition.
    assert pre.nodes["layer1.0/add"].title == "+"
    plain = _drawing(analyze("plain18"), "blocks", counts=False, collapse=False)
    assert not any(n.kind == "merge" for n in plain.nodes.values())
    assert not any(e.kind != "main" for e in plain.edges)


# -- DOT: golden files, themes, highlight, difference ------------------------------------------

GOLDEN_CASES = {
    "resnet18_stages": ("resnet18", {"level": "stages"}),
    "resnet18_blocks": ("resnet18", {"level": "blocks"}),
    "resnet18_layers": ("resnet18", {"level": "layers"}),
    "resnet152_blocks_counts": ("resnet152", {"level": "blocks", "counts": True}),
    "resnext50_32x4d_layers": ("resnext50_32x4d", {"level": "layers"}),
    "resnet50d_layers_lr": ("resnet50d", {"level": "layers", "direction": "LR"}),
    "resnet56_blocks_dark": ("resnet56", {"level": "blocks", "theme": "dark"}),
    "resnet50_blocks_highlight": (
        "resnet50",
        {"level": "blocks", "theme": "projector", "highlight": "layer3"},
    ),
    "seresnet50_layers": ("seresnet50", {"level": "layers"}),
}


def _check_golden(name: str, source: str) -> None:
    path = GOLDEN / f"{name}.dot"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(source)
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1 to write it"
    assert source == path.read_text(), f"{name} differs from {path} (UPDATE_GOLDEN=1 rewrites)"


@pytest.mark.parametrize("name", list(GOLDEN_CASES))
def test_dot_matches_golden_file(name: str) -> None:
    preset, options = GOLDEN_CASES[name]
    _check_golden(name, diagram(analyze(preset), **options).source)  # type: ignore[arg-type]


def test_difference_matches_golden_file() -> None:
    graph = diff_diagram(analyze("resnet34"), analyze("resnet50"), names=("resnet34", "resnet50"))
    _check_golden("diff_resnet34_resnet50_blocks", graph.source)


def test_dot_is_the_same_from_a_fresh_analysis() -> None:
    first = diagram(analyze("resnet50"), "layers", counts=True).source
    assert diagram(analyze("resnet50"), "layers", counts=True).source == first


def test_themes_set_their_colours_and_type() -> None:
    analysis = analyze("resnet18")
    dark = diagram(analysis, theme="dark").source
    assert f'bgcolor="{THEMES["dark"].background}"' in dark
    projector = diagram(analysis, theme="projector").source
    assert "fontsize=20" in projector and "fontsize=12" not in projector
    light = diagram(analysis).source
    assert "bgcolor=white" in light


def test_difference_marks_what_only_one_has() -> None:
    graph = diff_diagram(
        analyze("resnet18"), analyze("resnet34"), names=("resnet18", "resnet34"), legend=False
    ).source
    # resnet34 has a third block in layer1; resnet18 has none.
    block = re.search(r'"layer1\.2" \[[^\]]*\]', graph)
    assert block is not None and "only in resnet34" in block.group(0)
    assert f'color="{THEMES["light"].only_b}"' in block.group(0)
    assert "only in resnet18" not in graph


def test_difference_lists_each_networks_own_block() -> None:
    names = ("resnet34", "resnet50")
    a = _drawing(analyze("resnet34"), "stages", counts=False, collapse=False)
    b = _drawing(analyze("resnet50"), "stages", counts=False, collapse=False)
    node = _merge(a, b, names).nodes["layer1"]
    assert node.state == "changed"
    assert node.lines == [
        "output 56×56",
        "resnet34: [ 3×3 conv, 64 ]",
        "resnet34: [ 3×3 conv, 64 ]",
        "resnet50: [ 1×1 conv, 64 ]",
        "resnet50: [ 3×3 conv, 64 ]",
        "resnet50: [ 1×1 conv, 256 ]",
        "× 3 blocks",
    ]
    # Stage sizes of both, in the stage boxes and, at the blocks level, the stage frames.
    small = analyze("resnet20")
    merged = _merge(a, _drawing(small, "stages", counts=False, collapse=False), names)
    lines = merged.nodes["layer2"].lines
    assert lines[0] == "resnet34: output 28×28" and "resnet50: output 16×16" in lines
    frames = _merge(
        _drawing(analyze("resnet34"), "blocks", counts=False, collapse=False),
        _drawing(small, "blocks", counts=False, collapse=False),
        names,
    ).clusters
    assert frames["layer3"].text == "layer3  ·  conv4_x  ·  resnet34 14×14, resnet50 8×8"
    assert _merge(a, a, names).nodes["layer1"].state == ""


def test_difference_of_shapes_shows_both() -> None:
    small = ResNetConfig(block="basic", blocks_per_stage=(1, 1), widths=(16, 32), num_classes=10)
    wide = ResNetConfig(block="basic", blocks_per_stage=(1, 1), widths=(16, 48), num_classes=10)
    graph = diff_diagram(
        analyze(small, input_size=64), analyze(wide, input_size=64), legend=False
    ).source
    assert "A: 32×8×8" in graph and "B: 48×8×8" in graph
    assert "only in" not in graph


def test_highlight_lights_a_collapsed_block_and_rejects_unknown_parts() -> None:
    analysis = analyze("resnet152")
    graph = diagram(analysis, "blocks", highlight="layer3.20").source
    lit = re.search(r'"layer3\.1" \[[^\]]*\]', graph)
    assert lit is not None and f'color="{THEMES["light"].highlight}"' in lit.group(0)
    faded = re.search(r'"layer2\.0" \[[^\]]*\]', graph)
    assert faded is not None and f'fontcolor="{THEMES["light"].muted}"' in faded.group(0)
    with pytest.raises(
        ValueError,
        match="nothing named 'layer9'.*one of stem, layer1, layer2, layer3, layer4, head, or",
    ):
        diagram(analysis, "blocks", highlight="layer9")


def test_bad_options_say_what_is_allowed() -> None:
    analysis = analyze("resnet18")
    with pytest.raises(ValueError, match="level must be one of stages, blocks, layers"):
        diagram(analysis, "block")
    with pytest.raises(ValueError, match="direction must be TB"):
        diagram(analysis, direction="BT")
    with pytest.raises(ValueError, match="theme must be one of light, dark, projector"):
        diagram(analysis, theme="neon")


# -- rendering with the real Graphviz ---------------------------------------------------------


@needs_graphviz
def test_svg_has_a_node_for_every_drawn_node() -> None:
    analysis = analyze("resnet18")
    svg = render(diagram(analysis, "layers", legend=False), "svg")
    root = ET.fromstring(svg)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    nodes = root.findall(".//svg:g[@class='node']", ns)
    drawing = _drawing(analysis, "layers", counts=False, collapse=True)
    assert len(nodes) == len(drawing.nodes)
    edges = root.findall(".//svg:g[@class='edge']", ns)
    assert len(edges) == len(drawing.edges)


@needs_graphviz
def test_png_and_pdf_are_what_they_say() -> None:
    graph = diagram(analyze("resnet18"), "stages")
    assert render(graph, "png").startswith(b"\x89PNG\r\n\x1a\n")
    assert render(graph, "pdf").startswith(b"%PDF-")
    assert render(graph, "dot") == graph.source.encode()


def test_without_graphviz_dot_still_works(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `dot` anywhere
    graph = diagram(analyze("resnet18"), "stages")
    assert render(graph, "dot").startswith(b"digraph resnet {")
    with pytest.raises(GraphvizMissing, match="apt-get install graphviz"):
        render(graph, "svg")


@needs_graphviz
def test_a_layout_past_its_time_limit_is_stopped_and_falls_back() -> None:
    stress = ResNetConfig(block="bottleneck", blocks_per_stage=(50, 50, 50, 50))
    analysis = analyze(stress)
    with pytest.raises(LayoutTimeout, match="more than 0.01 s"):
        render(diagram(analysis, "layers", collapse=False), "svg", timeout=0.01)
    started = time.perf_counter()
    rendered = render_diagram(analysis, "layers", "svg", timeout=0.01, collapse=False)
    assert time.perf_counter() - started < 5
    assert rendered.level == "stages" and rendered.notice is not None
    assert b"layer4" in rendered.data and b"layer4.49" not in rendered.data


@needs_graphviz
def test_stress_network_renders_at_the_blocks_level_within_five_seconds() -> None:
    stress = ResNetConfig(block="bottleneck", blocks_per_stage=(50, 50, 50, 50))
    started = time.perf_counter()
    rendered = render_diagram(analyze(stress), "blocks", "svg", timeout=5.0, collapse=False)
    # Either it fitted in the limit, or it said so and fell back; it never runs on.
    assert time.perf_counter() - started < 15
    if rendered.level == "blocks":
        assert rendered.notice is None and b"layer4.49" in rendered.data
    else:
        assert rendered.notice is not None


# -- the 3D view --------------------------------------------------------------------------------


def test_3d_boxes_follow_the_shapes() -> None:
    analysis = analyze("resnet50")
    figure = figure_3d(analysis)
    boxes = [t for t in figure.data if t.type == "mesh3d"]
    legend = [t.name for t in figure.data if t.showlegend is not False and t.type != "mesh3d"]
    assert legend == ["input", "stem", "layer1", "layer2", "layer3", "layer4", "head"]
    # input, conv1, maxpool, 16 blocks drawn as 10 (layer2.1-2.3 and layer3.1-3.5 are one box
    # each), avgpool, fc
    names = [b.name for b in boxes]
    assert names[:4] == ["input", "conv1", "maxpool", "layer1.0"]
    assert "layer3.1 – layer3.5" in names and "layer2.1 – layer2.3" in names
    assert len(boxes) == 1 + 2 + 10 + 2
    first = boxes[0]
    assert max(first.y) - min(first.y) == pytest.approx(_side(224))
    assert max(first.x) - min(first.x) == pytest.approx(_thickness(3))
    last_block = next(b for b in boxes if b.name == "layer4.2")
    assert max(last_block.z) - min(last_block.z) == pytest.approx(_side(7))
    assert max(last_block.x) - min(last_block.x) == pytest.approx(_thickness(2048))
    arcs = [t for t in figure.data if t.type == "scatter3d" and t.mode == "lines"]
    assert len(arcs) == 10
    assert sum(a.line.dash == "dash" for a in arcs) == 4  # the four projections


def test_3d_layers_level_has_a_box_per_leaf() -> None:
    analysis = analyze("resnet18")
    boxes = [t for t in figure_3d(analysis, level="layers").data if t.type == "mesh3d"]
    assert len(boxes) == 1 + len(analysis.leaves())
    with pytest.raises(ValueError, match="'blocks' or 'layers'"):
        figure_3d(analysis, level="stages")


def test_diagram_of_a_handed_in_model_does_not_touch_it() -> None:
    model = build_model("resnet18", device="meta")
    before = [(n, p.shape) for n, p in model.named_parameters()]
    source = diagram(analyze(model), "blocks").source
    assert "layer4.1" in source
    assert [(n, p.shape) for n, p in model.named_parameters()] == before
    assert not model._forward_hooks and all(not m._forward_hooks for m in model.modules())
    assert isinstance(next(model.parameters()), torch.Tensor)


def test_a_one_block_stage_reads_as_the_paper_writes_it() -> None:
    config = ResNetConfig(block="basic", blocks_per_stage=(1, 1), widths=(64, 128))
    lines = _drawing(analyze(config), "stages", counts=False, collapse=True).nodes["layer2"].lines
    # The stride shows in the size and the last line, not in the bracket.
    assert lines == [
        "output 28×28",
        "[ 3×3 conv, 128 ]",
        "[ 3×3 conv, 128 ]",
        "× 1 block",
        "first block /2",
    ]


def test_a_module_of_another_library_is_a_chain_at_every_level() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )
    analysis = analyze(model, input_size=32)
    for level in ("stages", "blocks", "layers"):
        drawing = _drawing(analysis, level, counts=False, collapse=True)
        assert [e.label for e in drawing.edges] == [
            "3×32×32",
            "8×15×15",
            "8×15×15",
            "8×1×1",
            "8",
            "4",
        ]
        assert list(drawing.nodes)[-1] == "output"
        edges = re.findall(r'^\t("[^"]*"|\w+) -> ', diagram(analysis, level).source, re.M)
        assert len(edges) == 6


def test_highlight_finds_the_part_that_holds_a_finer_name() -> None:
    analysis = analyze("resnet18")
    blocks = diagram(analysis, "blocks", highlight="layer1.0.conv1").source
    lit = re.search(r'"layer1\.0" \[[^\]]*\]', blocks)
    assert lit is not None and f'color="{THEMES["light"].highlight}"' in lit.group(0)
    layers = diagram(analysis, "layers", highlight="layer1.0.relu (2)").source
    lit = re.search(r'"layer1\.0\.relu#1" \[[^\]]*\]', layers)
    assert lit is not None and f'color="{THEMES["light"].highlight}"' in lit.group(0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: diagram(a, theme=["light"]), "theme must be one of"),  # type: ignore[arg-type]
        (lambda a: diagram("resnet18"), "expected what analyze\\(\\) returns"),  # type: ignore[arg-type]
        (lambda a: diff_diagram(a, a, names=("x",)), "names must be two names"),  # type: ignore[arg-type]
        (lambda a: render(diagram(a, "stages"), "png", dpi=-5), "dpi must be"),
        (lambda a: render("", "svg"), "no DOT text"),
        (lambda a: render(diagram(a, "stages"), "svg", timeout=0), "timeout must be"),
    ],
)
def test_misuse_gets_a_message(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(analyze("resnet18"))  # type: ignore[operator]


@needs_graphviz
def test_a_difference_past_its_limit_falls_back_to_stages() -> None:
    rendered = render_diagram(
        analyze("resnet18"),
        "layers",
        "svg",
        timeout=0.001,
        compare=analyze("resnet34"),
        names=("resnet18", "resnet34"),
        legend=False,
    )
    assert rendered.level == "stages" and rendered.notice is not None
    assert b"resnet18 vs resnet34" in rendered.data and b"only in" not in rendered.data


def test_3d_layers_follow_the_collapse_and_refuse_a_smear() -> None:
    analysis = analyze("resnet152")
    collapsed = [t for t in figure_3d(analysis, level="layers").data if t.type == "mesh3d"]
    assert not any(b.name.startswith("layer3.7.") for b in collapsed)
    assert any(b.name == "layer3.1.conv2" for b in collapsed)
    deep = ResNetConfig(
        block="basic", blocks_per_stage=(40, 40, 40), widths=(16, 32, 64), stem="cifar"
    )
    with pytest.raises(ValueError, match="collapse identical blocks"):
        figure_3d(analyze(deep), level="layers", collapse=False)


def test_dot_ids_are_quoted_where_they_must_be() -> None:
    assert _quote("x1") == "x1" and _quote("1.5") == "1.5"
    assert _quote("node") == '"node"'  # a DOT keyword
    assert _quote('say "hi"') == '"say \\"hi\\""'
    assert _quote("<<b>html</b>>") == "<<b>html</b>>"
    assert _quote("layer1.0/add") == '"layer1.0/add"'
