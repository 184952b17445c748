"""The Compare page: the choice kept in the link, totals and charts against analyses, latency."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import APP, needs_graphviz, open_page

from resnet_viz import ResNetConfig
from resnet_viz.analysis import analyze
from resnet_viz.costs import part_totals

PAGE = "app_pages/compare.py"
THREE_STAGES = "resnet18~n-2.1.1~w-64.128.256"


def _open(compare: str | None, model: str = "resnet50") -> Any:
    """Like conftest's open_page, with the comparison in the link too."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["model"] = model
    if compare is not None:
        at.query_params["compare"] = compare
    at.run()
    return at.switch_page(PAGE).run()


def _charts(at: Any) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_compare_page_defaults_to_the_sidebar_model_and_resnet34() -> None:
    at = open_page(PAGE, "resnet50")

    assert not at.exception
    assert at.multiselect(key="compare_pick").value == ["resnet34", "resnet50"]
    assert at.query_params["compare"] == "resnet34,resnet50"


@pytest.mark.parametrize(
    "tokens",
    [
        ["resnet18", "resnet152"],
        ["resnext50_32x4d", "resnet56", THREE_STAGES],
        ["resnet18", THREE_STAGES, "resnet34", "resnet50"],
    ],
)
def test_compare_page_totals_and_stages_equal_the_analyses(tokens: list[str]) -> None:
    at = _open(",".join(tokens))

    assert not at.exception
    assert at.multiselect(key="compare_pick").value == tokens
    totals = at.dataframe[0].value
    analyses = [analyze(ResNetConfig.from_url_token(t)) for t in tokens]
    assert list(totals["network"]) == tokens
    assert list(totals["parameters"]) == [a.total_params for a in analyses]
    assert list(totals["mult-adds"]) == [a.mult_adds for a in analyses]
    assert list(totals["FLOPs"]) == [2 * a.mult_adds for a in analyses]
    params_chart, mult_adds_chart = _charts(at)[:2]
    for trace, analysis in zip(params_chart["data"], analyses, strict=True):
        parts = part_totals(analysis)
        assert trace["x"] == [p.label for p in parts]
        assert trace["y"] == [p.params for p in parts]
        assert sum(trace["y"]) == analysis.total_params
    for trace, analysis in zip(mult_adds_chart["data"], analyses, strict=True):
        assert sum(trace["y"]) == analysis.mult_adds
    table = next(m.value for m in at.markdown if "conv2_x" in m.value)
    assert all(token in table for token in tokens)


def test_compare_page_keeps_the_choice_in_the_link() -> None:
    at = _open("resnet34,resnet50")

    at.multiselect(key="compare_pick").select("resnet18").run()

    assert not at.exception
    assert at.query_params["compare"] == "resnet34,resnet50,resnet18"
    # The link reopens the same choice in a new session.
    reopened = _open("resnet34,resnet50,resnet18")
    assert reopened.multiselect(key="compare_pick").value == ["resnet34", "resnet50", "resnet18"]


def test_compare_page_skips_bad_tokens_with_a_message() -> None:
    at = _open("resnet18,resnet50~n-0.0,resnet34")

    assert not at.exception
    assert "skipped 'resnet50~n-0.0'" in at.warning[0].value
    assert at.multiselect(key="compare_pick").value == ["resnet18", "resnet34"]


def test_compare_page_adds_a_typed_token_and_refuses_a_bad_one() -> None:
    at = _open("resnet18,resnet34")

    at.text_input(key="compare_typed").input("resnet18~se-1").run()
    at.text_input(key="compare_typed").input("not-a-net").run()

    assert not at.exception
    assert at.multiselect(key="compare_pick").value == ["resnet18", "resnet34", "resnet18~se-1"]
    assert "is not a network token" in at.error[0].value


@needs_graphviz
def test_compare_page_draws_the_difference_of_the_chosen_pair() -> None:
    at = _open("resnet34,resnet50,resnet18")

    at.selectbox(key="compare_b").set_value("resnet18").run()

    assert not at.exception
    frame = at.get("iframe")[0].proto.srcdoc
    assert "<svg" in frame
    assert "resnet34 vs resnet18" in frame
    assert "only in resnet34" in frame


def test_compare_page_asks_for_two_networks() -> None:
    at = _open("resnet18")

    assert not at.exception
    assert "at least two" in at.info[0].value


def test_compare_page_measures_latency_on_the_cpu() -> None:
    at = _open("resnet20,resnet32", model="resnet20")
    at.number_input(key="compare_warmup").set_value(1)
    at.number_input(key="compare_repeats").set_value(3)

    at.button(key="compare_measure").click().run()

    assert not at.exception
    assert at.selectbox(key="compare_device").value == "cpu"
    times = at.dataframe[-1].value
    assert list(times["network"]) == ["resnet20", "resnet32"]
    assert list(times["timed runs"]) == [3, 3]
    assert (times["median ms"] > 0).all()
    latency = _charts(at)[-1]["data"][0]
    assert latency["x"] == ["resnet20", "resnet32"]

    # Stop reruns the page: the runs made so far stay.
    at.button(key="compare_stop").click().run()
    assert "Stopped" in at.info[0].value
    assert list(at.dataframe[-1].value["timed runs"]) == [3, 3]


def test_compare_starts_a_cifar_net_beside_resnet20() -> None:
    # A 32x32 net beside an ImageNet one would be bars too small to see.
    at = open_page(PAGE, "resnet56")

    assert not at.exception
    assert at.query_params["compare"] == "resnet20,resnet56"
