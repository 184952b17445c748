"""The Streamlit app, run headless with AppTest."""

from __future__ import annotations

from pathlib import Path

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
