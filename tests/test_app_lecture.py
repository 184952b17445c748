"""The Lecture page, run headless with AppTest: its steps, its link, and what each step shows.

The expected values come from the library's own analysis, and the arithmetic shown is evaluated
here again, so a formula that reads well but computes wrong fails.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import APP, needs_graphviz
from streamlit.testing.v1 import AppTest

from resnet_viz import ResNetConfig, build_model
from resnet_viz.analysis import Analysis, LayerRecord, analyze
from resnet_viz.weights import cached_weights_path, published_weights

LECTURE = "app_pages/lecture.py"
# A custom three-stage net with its own widths, SE and option D: none of it is a preset.
CUSTOM = "resnet18~n-1.2.1~w-32.48.96~se-1~sc-D"
WINDOW_TYPES = ("Conv2d", "MaxPool2d", "AvgPool2d", "ZeroPadShortcut", "AdaptiveAvgPool2d")
HIGHLIGHT = "#d55e00"  # the projector theme's highlight (Okabe and Ito's vermillion)


def _analysis(token: str) -> Analysis:
    config = ResNetConfig.from_url_token(token)
    return analyze(config, input_size=32 if config.stem == "cifar" else 224)


def _lecture(model: str, maps: bool = False, step: str | None = None) -> Any:
    """The app on `model`, switched to the Lecture page; maps off unless asked (they run the
    network, which the step tests do not need)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["model"] = model
    at.session_state["lecture_maps"] = maps
    if step is not None:
        at.query_params["step"] = step
    # Straight to the Lecture page: the first page is not drawn at all.
    return at.switch_page(LECTURE).run()


def _title(at: Any) -> str:
    html = [e.proto.body for e in at.main if getattr(e, "type", "") == "html"]
    titles = [re.sub(r"<[^>]+>", " ", h) for h in html if "lec-title" in h]
    assert titles, "no step title on the page"
    return " ".join(titles[0].split())


def _html(at: Any, marker: str) -> str:
    found = [
        e.proto.body for e in at.main if marker in getattr(getattr(e, "proto", None), "body", "")
    ]
    return found[0] if found else ""


def _svg(at: Any) -> str:
    frames = [e for e in at.main if getattr(e, "type", "") == "iframe"]
    assert frames, "no diagram on the page"
    return str(frames[0].proto.srcdoc)


def _lit_nodes_in_svg(svg: str) -> set[str]:
    """Titles of the SVG's nodes outlined in the highlight colour."""
    lit = set()
    for block in re.findall(r'<g id="node\d+" class="node">(.*?)</g>', svg, flags=re.S):
        title = re.search(r"<title>(.*?)</title>", block)
        if title and f'stroke="{HIGHLIGHT}"' in block.lower():
            lit.add(title.group(1))
    return lit


def _expected_titles(config: ResNetConfig) -> list[str]:
    stages = [f"Stage {i + 1} · conv{i + 2}_x" for i in range(config.num_stages)]
    return [
        "The whole network",
        "The stem · conv1",
        *stages,
        "The head · pool, fc, prediction",
        "Why the shortcut · gradients at initialisation",
    ]


def _part_records(analysis: Analysis, part: str) -> list[LayerRecord]:
    if part in ("stem", "head"):
        return [r for r in analysis.records if r.part == part]
    return [r for r in analysis.records if r.name.startswith(part + ".")]


def _evaluate(formula: str) -> int:
    """'floor((56 + 2*1 - 1*(3 - 1) - 1) / 2) + 1' or 'ceil(32 / 2)', computed here."""
    expression = formula.replace("floor", "math.floor").replace("ceil", "math.ceil")
    assert re.fullmatch(r"[\d\s+\-*/()a-z.]+", expression), formula
    return int(eval(expression, {"math": math}))  # noqa: S307 - digits and math only


def _check_arithmetic(at: Any, analysis: Analysis, part: str) -> None:
    """Every record shown has the analysis's shapes, and every formula computes its size."""
    text = at.code[0].value
    shown = []
    for block in text.split("\n\n"):
        head, *lines = block.splitlines()
        name, shapes = head.split(": ", 1)
        if name == "fc":
            fc = analysis.find("fc")
            n_in, n_out = fc.input_shapes[0][-1], fc.output_shape[-1]
            assert shapes == f"{n_in} → {n_out}"
            found = re.fullmatch(
                r"(\d+) × (\d+) weights \+ (\d+) biases = ([\d,]+) parameters", lines[0]
            )
            assert found, lines[0]
            rows, cols, biases, total = found.groups()
            assert int(rows) * int(cols) + int(biases) == int(total.replace(",", "")) == fc.params
            continue
        record = analysis.find(name)
        shown.append(record.name)
        before, after = shapes.split(" → ")
        assert before == "×".join(map(str, record.input_shapes[0][1:]))
        assert after == "×".join(map(str, record.output_shape[1:]))
        for line in lines:
            if line.startswith("adaptive average pool"):
                h, w = record.input_shapes[0][-2:]
                assert f"{h} x {w} -> 1 x 1" in line
                continue
            axis = 1 if line.startswith("W: ") else 0
            formula, result = re.sub(r"^[HW]: |^one pixel in \d+ kept: ", "", line).split(" = ")
            assert _evaluate(formula) == int(result) == record.output_shape[2 + axis], line
    # The records that change the map's size, found independently of the page.
    changing = [
        r.name
        for r in _part_records(analysis, part)
        if r.is_leaf
        and r.call_index == 0
        and ".se." not in r.name  # the gate's pooling: a side branch
        and r.type in WINDOW_TYPES
        and r.input_shapes[0][-2:] != r.output_shape[-2:]
    ]
    if changing:
        assert sorted(shown) == sorted(changing)
    else:
        assert len(shown) == 1  # one window that keeps the size, to show why


def _check_gradient_step(at: Any) -> None:
    """ResNet-56's plain twin's first/last ratio is far above its own (measured directions)."""
    ratios = {m.label: float(m.value.rstrip("×")) for m in at.metric}
    assert ratios["plain, BN"] > 100 * ratios["residual, BN"]
    assert ratios["residual, BN"] < 50
    assert at.get("plotly_chart")


def _check_step(at: Any, analysis: Analysis, number: int, part: str | None) -> None:
    assert not at.exception
    assert at.query_params["step"] == str(number)
    if part == "gradients":
        _check_gradient_step(at)
        return
    svg = _svg(at)
    assert _lit_nodes_in_svg(svg) == ({part} if part else set())
    if part is None:
        return
    _check_arithmetic(at, analysis, part)
    row = _html(at, "lec-row")
    records = _part_records(analysis, part)
    if part.startswith("layer"):
        stage = analysis.find(part)
        assert f">conv{int(part[5:]) + 1}_x<" in row
        height, width = stage.output_shape[-2:]
        assert f">{height}x{width}<" in row
        shape = _html(at, "lec-shape")
        assert "×".join(map(str, stage.output_shape[1:])) in shape
    elif part == "stem":
        last = [r for r in records if r.is_leaf][-1]
        assert ">conv1<" in row
        assert "×".join(map(str, last.output_shape[1:])) in _html(at, "lec-shape")


@needs_graphviz
@pytest.mark.parametrize(
    "model", ["resnet50", "resnet18", "resnet152", "resnext50_32x4d", "resnet56", CUSTOM]
)
def test_lecture_steps_through_every_part_and_stops_at_the_ends(model: str) -> None:
    config = ResNetConfig.from_url_token(model)
    analysis = _analysis(model)
    at = _lecture(model)
    expected = _expected_titles(config)
    stages = [f"layer{i + 1}" for i in range(config.num_stages)]
    parts = [None, "stem", *stages, "head", "gradients"]

    titles = [_title(at)]
    _check_step(at, analysis, 1, None)
    while not at.button(key="lecture_next").disabled:
        at.button(key="lecture_next").click().run()
        titles.append(_title(at))
        _check_step(at, analysis, len(titles), parts[len(titles) - 1])
    backwards = 0
    while not at.button(key="lecture_prev").disabled:
        at.button(key="lecture_prev").click().run()
        backwards += 1

    # Next stops at the gradients, Prev at the overview: overview, stem, stages, head, gradients.
    assert titles == [f"{n} / {len(expected)} {t}" for n, t in enumerate(expected, 1)]
    assert backwards == len(expected) - 1
    assert at.query_params["step"] == "1"
    assert not at.exception


@needs_graphviz
def test_lecture_step_round_trips_through_the_link() -> None:
    at = _lecture("resnet18", step="4")

    assert _title(at).startswith("4 / 8 Stage 2")
    at.button(key="lecture_next").click().run()
    assert at.query_params["step"] == "5"

    again = _lecture("resnet18", step=at.query_params["step"])
    assert _title(again).startswith("5 / 8 Stage 3")
    assert not again.warning

    again.selectbox(key="lecture_goto").select(7).run()
    assert _title(again).startswith("7 / 8 The head")
    assert again.query_params["step"] == "7"


@needs_graphviz
@pytest.mark.parametrize("step", ["abc", "9"])
def test_lecture_bad_step_in_the_link_falls_back_to_step_1(step: str) -> None:
    at = _lecture("resnet18", step=step)

    assert not at.exception
    assert _title(at).startswith("1 / 8")
    assert any("not a step of this lecture (1 to 8)" in w.value for w in at.warning)
    assert at.query_params["step"] == "1"


def test_lecture_without_graphviz_highlights_each_part_in_the_dot(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `dot`
    at = _lecture("resnet56")

    lit_per_step = []
    for step in range(6):
        if step:
            at.button(key="lecture_next").click().run()
        dot = at.get("graphviz_chart")[0].proto.spec
        lit = re.findall(r'^\t(\w+) \[.*color="#D55E00".*penwidth=7\.0', dot, flags=re.M)
        lit_per_step.append(lit)

    assert not at.exception
    assert lit_per_step == [[], ["stem"], ["layer1"], ["layer2"], ["layer3"], ["head"]]
    assert any("apt-get install graphviz" in c.value for c in at.caption)


@needs_graphviz
def test_lecture_maps_and_predictions_of_the_photo() -> None:
    at = _lecture("resnet20", maps=True)

    assert not at.exception
    assert any("random weights (seed 0)" in c.value.lower() for c in at.caption)
    captions = []
    for _ in range(5):
        at.button(key="lecture_next").click().run()
        assert not at.exception
        captions += [i.proto.imgs[0].caption for i in at.get("image")]
    assert any(
        c.startswith("The output of layer2: the 4 strongest of 32 maps (16×16)") for c in captions
    )
    assert any("(8×8); random weights (untrained)" in c for c in captions)
    predictions = _html(at, "lec-predictions")
    assert predictions.count("<tr>") == 5
    assert any("predictions mean nothing" in c.value for c in at.caption)


@needs_graphviz
def test_lecture_uses_torchvision_weights_from_the_hub_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A real checkpoint file where torch.hub keeps torchvision's: the page must find and load
    # it, and download nothing (there is no network here to download from).
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = published_weights("resnet18")[-1]
    path = cached_weights_path(entry)
    path.parent.mkdir(parents=True)
    torch.save(build_model("resnet18", seed=3).state_dict(), path)

    at = _lecture("resnet18", maps=True)
    at.button(key="lecture_next").click().run()

    assert not at.exception
    assert any(f"Weights: torchvision {entry.name}" in c.value for c in at.caption) or any(
        f"torchvision {entry.name}" in i.proto.imgs[0].caption for i in at.get("image")
    )
