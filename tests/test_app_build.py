"""The Build page's editor and input settings, and the link that keeps the view, with AppTest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from resnet_viz import PRESETS, ResNetConfig, build_model
from resnet_viz.analysis import analyze

APP = str(Path(__file__).parent.parent / "app.py")
ACTIVATIONS = "app_pages/activations.py"


def _app(**link: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    for key, value in link.items():
        at.query_params[key] = value
    return at.run()


WIDGETS = ("number_input", "text_input", "selectbox", "toggle")


def _keys(block: Any) -> set[str]:
    return {w.key for kind in WIDGETS for w in block.get(kind)}


def _column_of(at: AppTest, key: str) -> Any:
    """The innermost column holding the widget `key`: where its message must show."""
    holding = [c for c in at.columns if key in _keys(c)]
    assert holding, f"no column holds {key}"
    return holding[-1]


def _message_after(at: AppTest, key: str) -> str | None:
    """The error shown right under the widget `key`, if there is one."""
    nodes = list(_column_of(at, key).children.values())
    for index, node in enumerate(nodes[:-1]):
        if getattr(node, "key", None) == key:
            after = nodes[index + 1]
            return str(after.value) if after.type == "error" else None
    return None


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_build_bad_value_shows_its_message_beside_the_field_and_keeps_the_model() -> None:
    at = _app(model="resnet18")

    at.number_input(key="knob_groups").set_value(32).run()

    assert not at.exception
    message = _message_after(at, "knob_groups")
    assert message is not None and message.startswith("groups=32 and width_per_group=64")
    assert at.query_params["model"] == "resnet18"
    assert at.subheader[0].value == "resnet18"
    assert "Not applied" in at.warning[0].value
    # The other columns' fields carry no message.
    assert not _column_of(at, "knob_num_classes").error


def test_build_tuple_text_is_parsed_with_a_clear_message() -> None:
    at = _app(model="resnet18")

    at.text_input(key="knob_blocks_per_stage").input("2, two, 2, 2").run()

    beside = [e.value for e in _column_of(at, "knob_blocks_per_stage").error]
    assert beside == [
        "blocks_per_stage: 'two' is not a whole number; write whole numbers separated by "
        "commas, such as 3,4,6,3"
    ]
    assert at.query_params["model"] == "resnet18"

    # A relation between fields: the message goes to the field it names first.
    at.text_input(key="knob_blocks_per_stage").input("2,2,2").run()
    assert any("widths has 4 entries" in e.value for e in _column_of(at, "knob_widths").error)
    assert at.query_params["model"] == "resnet18"

    at.text_input(key="knob_widths").input("64,128,256").run()
    assert not at.exception and not at.error
    assert at.query_params["model"] == "resnet18~n-2.2.2~w-64.128.256"


def test_build_good_config_reaches_the_link_and_round_trips() -> None:
    at = _app(model="resnet50")
    for name in ResNetConfig.__dataclass_fields__:
        assert f"knob_{name}" in _keys(at.main), f"no widget for {name}"

    at.toggle(key="knob_se").set_value(True).run()
    at.selectbox(key="knob_shortcut").select("D").run()

    token = at.query_params["model"]
    expected = PRESETS["resnet50"].replace(se=True, shortcut="D")
    assert ResNetConfig.from_url_token(token) == expected
    assert token == "seresnet50~sc-D"  # the nearest preset is now SE-ResNet-50
    assert at.sidebar.selectbox[0].value == "custom"
    params = sum(p.numel() for p in build_model(expected, device="meta").parameters())
    assert params > 25_557_032  # SE and the D shortcut add weights to resnet50's
    assert _metrics(at)["Parameters"] == f"{params / 1e6:.1f}M"

    reopened = _app(model=token)
    assert reopened.subheader[0].value == at.subheader[0].value
    assert reopened.toggle(key="knob_se").value is True
    assert reopened.selectbox(key="knob_shortcut").value == "D"

    # The sidebar still switches after a custom config, and the editor follows it.
    at.sidebar.selectbox[0].select("resnet18").run()
    assert at.query_params["model"] == "resnet18"
    assert at.toggle(key="knob_se").value is False
    assert at.text_input(key="knob_blocks_per_stage").value == "2,2,2,2"


def test_input_settings_round_trip_through_the_link() -> None:
    at = _app(model="resnet18")

    at.text_input(key="in_size").input("160x192").run()
    at.number_input(key="in_batch").set_value(8).run()
    at.selectbox(key="in_dtype").select("bfloat16").run()

    link = {k: at.query_params[k] for k in ("size", "batch", "dtype")}
    assert link == {"size": "160x192", "batch": "8", "dtype": "bfloat16"}
    assert "For a batch of 8 at 160x192 in bfloat16" in at.caption[0].value
    # bfloat16 weights: 2 bytes for each of resnet18's 11,689,512 parameters and 9,600
    # BatchNorm running statistics, and 8 for each of its 20 int64 batch counters.
    expected = analyze("resnet18", (160, 192), batch=8, dtype="bfloat16").memory
    assert expected.parameters + expected.buffers == 2 * (11_689_512 + 9_600) + 8 * 20
    inference = expected.parameters + expected.buffers + expected.inference_peak
    assert _metrics(at)["Memory, inference"] == f"{inference / 2**20:.1f} MiB"

    reopened = _app(model="resnet18", size="160x192", batch="8", dtype="bfloat16")
    assert reopened.text_input(key="in_size").value == "160x192"
    assert reopened.number_input(key="in_batch").value == 8
    assert _metrics(reopened) == _metrics(at)

    # Back to a default takes the parameter out of the link.
    at.number_input(key="in_batch").set_value(1).run()
    assert "batch" not in at.query_params


def test_input_settings_bad_values_are_refused_with_messages() -> None:
    at = _app(model="resnet18", batch="0", device="cuda:7")
    assert any("The link's batch could not be read" in w.value for w in at.warning)
    assert any("'cuda:7' is not available" in i.value for i in at.info)

    at.text_input(key="in_size").input("big").run()
    assert any("input size 'big' is not a size" in e.value for e in at.error)
    assert "size" not in at.query_params


def test_page_sample_and_layer_round_trip_through_the_link() -> None:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(model="resnet18", sample="coffee", layer="layer2.1.relu (2)")
    at.run()
    at.switch_page(ACTIVATIONS).run()

    assert not at.exception
    assert at.selectbox(key="act_sample").value == "coffee"
    assert at.selectbox(key="act_stage_resnet18").value == "layer2"
    assert at.selectbox(key="act_block_resnet18_layer2").value == "layer2.1"
    assert at.selectbox(key="act_layer_resnet18_layer2.1").value == "layer2.1.relu (2)"

    at.selectbox(key="act_layer_resnet18_layer2.1").select("layer2.1.conv1").run()
    at.selectbox(key="act_sample").select("rocket").run()
    assert at.query_params["layer"] == "layer2.1.conv1"
    assert at.query_params["sample"] == "rocket"
    assert at.query_params["model"] == "resnet18"


def test_build_exports_onnx_only_when_asked() -> None:
    at = _app(model="resnet20")
    downloads = [b.proto.label for b in at.get("download_button")]
    assert downloads == ["Configuration (JSON)"]

    at.button(key="onnx_make").click().run()

    assert not at.exception
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels[0] == "Configuration (JSON)"
    # resnet20: 271,098 float32 weights and running statistics (1.03 MiB), and the graph.
    assert labels[1] == "ONNX model (1.0 MB)"


def test_build_refuses_onnx_over_the_protobuf_limit() -> None:
    at = _app(model="resnet50~w-64.128.256.4096")

    at.button(key="onnx_make").click().run()

    assert any("No ONNX file" in e.value and "2 GiB" in e.value for e in at.error)


def test_build_message_goes_to_the_field_just_edited_when_it_names_it() -> None:
    at = _app(model="resnet50")

    at.number_input(key="knob_groups").set_value(32).run()

    # The message names widths first, but it is the groups just typed that broke the limit.
    message = _message_after(at, "knob_groups")
    assert message is not None and "bottleneck width 16384" in message
    assert _message_after(at, "knob_widths") is None
    assert at.query_params["model"] == "resnet50"
