"""The Streamlit app, run headless with AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import open_page
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).parent.parent / "app.py")


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_app_starts_on_resnet50() -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()

    assert not at.exception
    assert _metrics(at)["Parameters"] == "25.6M"
    assert _metrics(at)["Mult-adds"] == "4.09G"
    assert _metrics(at)["Depth"] == "50"
    assert any("[1x1, 256; 3x3, 256; 1x1, 1024] x 6" in m.value for m in at.markdown)
    assert at.query_params["model"] == "resnet50"


def test_app_switches_preset_and_updates_url() -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()

    at.sidebar.selectbox[0].select("resnet56").run()

    assert not at.exception
    assert _metrics(at)["Parameters"] == "853K"
    assert _metrics(at)["Mult-adds"] == "125M"
    assert _metrics(at)["Output stride"] == "4"
    assert at.query_params["model"] == "resnet56"


def test_app_reopens_a_custom_config_from_the_url() -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["model"] = "resnet18~se-1"

    at.run()

    assert not at.exception
    assert at.subheader[0].value == "resnet18 with se=True"
    assert '"se": true' in at.code[0].value


def test_app_bad_url_falls_back_with_a_message() -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["model"] = "resnet50~n-0.0"

    at.run()

    assert not at.exception
    assert "could not be read" in at.warning[0].value
    assert _metrics(at)["Parameters"] == "25.6M"


def test_app_shows_the_analysis_warnings() -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["model"] = "resnet20~n-1.1.1.1.1.1.1~w-16.16.16.16.16.16.16"

    at.run()

    assert not at.exception
    assert any("1x1 maps" in w.value for w in at.warning)


def test_app_every_pick_in_a_row_takes_effect() -> None:
    # Each pick must show, also when the previous one has changed the link.
    at = AppTest.from_file(APP, default_timeout=60).run()

    shown = []
    for name in ["resnet18", "resnet34", "resnet101", "resnet20", "resnet110", "resnet18"]:
        at.sidebar.selectbox[0].select(name).run()
        shown.append((at.subheader[0].value, at.query_params["model"]))

    assert not at.exception
    assert shown == [
        (name, name)
        for name in ["resnet18", "resnet34", "resnet101", "resnet20", "resnet110", "resnet18"]
    ]


def test_app_stage_table_names_the_shortcut_and_dilation() -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["model"] = "resnet50~dil-3.4"

    at.run()

    stages = at.dataframe[0].value
    assert list(stages["dilation"]) == [1, 1, 2, 4]
    assert set(stages["shortcut"]) == {"B: projection on change"}


ARCHITECTURE = "app_pages/architecture.py"


def _architecture(model: str) -> AppTest:
    return open_page(ARCHITECTURE, model)  # type: ignore[no-any-return]


def _diagram_svg(at: AppTest) -> str:
    frames = [e for e in at.main if getattr(e, "type", "") == "iframe"]
    assert frames, "no diagram frame on the page"
    return str(frames[0].proto.srcdoc)


def test_architecture_page_draws_the_blocks_of_the_chosen_model() -> None:
    at = _architecture("resnet18")

    assert not at.exception
    svg = _diagram_svg(at)
    assert "<svg" in svg and "layer4.1" in svg and "512×7×7" in svg
    assert at.query_params["model"] == "resnet18"
    assert [t.label for t in at.tabs] == ["Block diagram", "3D view", "Table 1", "Layers"]


def test_architecture_page_levels_highlight_and_difference() -> None:
    at = _architecture("resnet50")

    at.button_group(key="arch_level").set_value("layers").run()
    svg = _diagram_svg(at)
    assert "layer3.0.downsample.0" in svg and "layer2.3.conv3" not in svg  # collapsed run

    at.toggle(key="arch_collapse").set_value(False).run()
    assert "layer2.3.conv3" in _diagram_svg(at)

    at.selectbox(key="arch_hl").select("layer3").run()
    at.selectbox(key="arch_compare").select("resnet101").run()
    assert not at.exception
    svg = _diagram_svg(at)
    assert "only in resnet101" in svg and "layer3.22" in svg


def test_architecture_page_layer_table_search_and_arithmetic() -> None:
    at = _architecture("resnet56")

    at.text_input(key="layer_query").input("layer3.8.conv").run()
    table = at.dataframe[0].value
    assert list(table["layer"]) == ["layer3.8.conv1", "layer3.8.conv2"]
    assert list(table["output shape"]) == ["64 x 8 x 8", "64 x 8 x 8"]

    at.selectbox(key="arith_layer").select("layer2.0.conv1").run()
    assert at.code[0].value == "floor((32 + 2*1 - 1*(3 - 1) - 1) / 2) + 1 = 16"


def test_architecture_page_without_graphviz_draws_in_the_browser(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `dot`
    at = _architecture("resnet18")

    assert not at.exception
    chart = at.get("graphviz_chart")
    assert chart and "layer4.1" in chart[0].proto.spec
    assert any("apt-get install graphviz" in c.value for c in at.caption)
    at.selectbox(key="arch_fmt").select("png").run()
    assert any("PNG needs Graphviz" in i.value for i in at.info)
