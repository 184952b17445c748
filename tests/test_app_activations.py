"""The Activations page, run headless with AppTest, and the helpers behind it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import open_page
from streamlit.testing.v1 import AppTest

from app_pages import activation_data
from app_pages.activation_data import (
    RANDOM_SEED,
    block_names,
    checkpoint_network,
    default_layer,
    digest,
    layer_choices,
    random_network,
    stage_names,
)
from resnet_viz import build_model
from resnet_viz.activations import capture, channel_stats
from resnet_viz.analysis import analyze
from resnet_viz.images import load_image, prepare, sample_images
from resnet_viz.weights import cached_weights_path, published_weights

PAGE = "app_pages/activations.py"


def _page(model: str) -> AppTest:
    return open_page(PAGE, model, timeout=120)  # type: ignore[no-any-return]


def _state_dict_bytes(preset: str, seed: int = 7) -> tuple[bytes, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)
    state = build_model(preset).state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue(), state


def _captions(at: AppTest) -> list[str]:
    return [caption for image in at.get("image") for caption in image.captions]


def _upload_checkpoint(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio(key="act_weights").set_value("checkpoint").run()
    return (
        at.file_uploader(key="act_checkpoint")
        .set_value((name, data, "application/octet-stream"))
        .run()
    )


def test_activations_page_shows_chelsea_through_random_resnet18() -> None:
    at = _page("resnet18")

    assert not at.exception
    assert [t.label for t in at.tabs] == [
        "Feature maps",
        "Residual anatomy",
        "Predictions and Grad-CAM",
        "Receptive field",
    ]
    captions = _captions(at)
    assert captions[0].startswith("Chelsea the cat: 451x300 PNG")
    grid = [c for c in captions if c.startswith("layer3.1.relu (2), 256x14x14: top 16")]
    assert grid and "random initialisation" in grid[0]
    assert any("predictions mean nothing" in w.value for w in at.warning)
    assert any("untrained" in c for c in captions if c.startswith("Grad-CAM"))

    # The table holds what the library computes for the same seed, photo and layer.
    torch.manual_seed(RANDOM_SEED)
    model = build_model("resnet18")
    x = prepare(load_image(sample_images()["chelsea"])).tensor
    fmap = capture(model, x, ["layer3.1.relu (2)"]).outputs[("layer3.1.relu", 1)][0]
    expected = {s.channel: s.mean for s in channel_stats(fmap)}
    table = at.dataframe[0].value
    assert len(table) == 16
    assert list(table["mean"]) == sorted(table["mean"], reverse=True)
    for channel, mean in zip(table["channel"], table["mean"], strict=True):
        assert mean == pytest.approx(expected[channel], rel=1e-5)
    assert (table["min"] >= 0).all()  # after a ReLU


def test_activations_page_other_sample_and_layer() -> None:
    at = _page("resnet18")

    at.selectbox(key="act_sample").select("coffee").run()
    at.selectbox(key="act_stage_resnet18").select("layer2").run()
    at.selectbox(key="act_layer_resnet18_layer2.1").select("layer2.1.conv1").run()

    assert not at.exception
    captions = _captions(at)
    assert captions[0].startswith("a cup of coffee: 600x400")
    assert any(c.startswith("layer2.1.conv1, 128x28x28") for c in captions)
    table = at.dataframe[0].value
    assert (table["min"] < 0).any()  # a convolution's output, before any ReLU
    assert (table["zeros"] == 0).all()


def test_activations_page_refuses_a_text_file_named_jpg() -> None:
    at = _page("resnet20")

    at.button_group(key="act_source").set_value("upload").run()
    at.file_uploader(key="act_upload").set_value(("notes.jpg", b"just some notes\n", "image/jpeg"))
    at.run()

    assert not at.exception
    assert any("notes.jpg" in e.value and "text" in e.value for e in at.error)
    assert not at.tabs  # nothing is computed from a photo that was not read


def test_activations_page_checkpoint_side_by_side_leaves_the_shared_model_alone() -> None:
    data, state = _state_dict_bytes("resnet20")
    shared = random_network("resnet20")
    before = {k: v.clone() for k, v in shared.model.state_dict().items()}

    at = _upload_checkpoint(_page("resnet20"), "r20.pth", data)

    assert not at.exception
    assert any("Loaded all" in s.value and "r20.pth" in s.value for s in at.success)
    captions = _captions(at)
    grids = [c for c in captions if c.startswith("layer3.2.relu (2)")]
    assert len(grids) == 2 and "random initialisation" in grids[0] and "r20.pth" in grids[1]
    # Only the random network's predictions are called meaningless.
    assert sum("predictions mean nothing" in w.value for w in at.warning) == 1

    # The shared model: same tensors, no hooks, eval mode, still random.
    after = random_network("resnet20")
    assert after is shared
    assert all(torch.equal(before[k], v) for k, v in after.model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in after.model.modules())
    assert not after.model.training and after.model.weights_source is None
    # The session's own model holds the checkpoint, cached by the content's hash.
    runs = activation_data.RUNS["checkpoint_network"]
    own = checkpoint_network(digest(data), "resnet20", "r20.pth", data)
    assert activation_data.RUNS["checkpoint_network"] == runs
    assert own.model is not after.model
    assert all(torch.equal(state[k], v) for k, v in own.model.state_dict().items())


def test_activations_page_checkpoint_of_another_network_offers_it() -> None:
    data, _ = _state_dict_bytes("resnet20")
    at = _upload_checkpoint(_page("resnet32"), "r20.pth", data)

    assert not at.exception
    warning = next(w.value for w in at.warning if "does not fit" in w.value)
    assert "resnet32" in warning and "holds resnet20" in warning
    differences = [c.value for c in at.caption if "missing" in c.value]
    assert differences and "layer1.3" in differences[0]
    assert at.subheader[0].value == "What resnet20 does to a photo"

    at.button(key="act_switch").click().run()

    assert at.query_params["model"] == "resnet20"
    assert not any("does not fit" in w.value for w in at.warning)
    assert any("Loaded all" in s.value for s in at.success)


def test_activations_page_pickled_model_gets_the_library_message() -> None:
    buffer = io.BytesIO()
    torch.save(build_model("resnet20"), buffer)

    at = _upload_checkpoint(_page("resnet20"), "model.pt", buffer.getvalue())

    assert not at.exception
    assert any("whole pickled model" in e.value for e in at.error)
    assert not at.success
    grids = [c for c in _captions(at) if c.startswith("layer3.2.relu (2)")]
    assert len(grids) == 1 and "random initialisation" in grids[0]


def test_activations_page_colour_scale_does_not_rerun_the_network() -> None:
    at = _page("resnet20")
    grid_before = at.get("image")[2].value
    runs = activation_data.RUNS["capture"]

    at.button_group(key="act_norm").set_value("layer").run()
    at.slider(key="act_top_k").set_value(4).run()

    assert not at.exception
    assert activation_data.RUNS["capture"] == runs
    assert at.get("image")[2].value != grid_before
    assert any("top 4 by mean, scaled per layer" in c for c in _captions(at))
    assert len(at.dataframe[0].value) == 4


def test_activations_page_published_weights_from_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Nothing is downloaded: the file is put where torch.hub keeps it.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = published_weights("resnet18")[-1]
    data, _ = _state_dict_bytes("resnet18", seed=3)
    path = cached_weights_path(entry)
    path.parent.mkdir(parents=True)
    path.write_bytes(data)

    at = _page("resnet18")
    at.radio(key="act_weights").set_value("torchvision").run()

    assert not at.exception
    assert any(entry.name in s.value for s in at.success)
    grids = [c for c in _captions(at) if c.startswith("layer3.1.relu (2)")]
    assert len(grids) == 2 and f"torchvision {entry.name}" in grids[1]


def test_activations_page_published_weights_missing_offline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    at = _page("resnet18")

    at.radio(key="act_weights").set_value("torchvision").run()

    assert not at.exception
    assert any("Not in the torch hub cache" in i.value for i in at.info)
    assert len([c for c in _captions(at) if c.startswith("layer3.1.relu (2)")]) == 1


@pytest.mark.parametrize(
    ("preset", "block", "layers", "default"),
    [
        ("resnet50", "layer3.5", 10, "layer3.5.relu (3)"),
        ("resnet18", "layer2.0", 9, "layer2.0.relu (2)"),  # with its projection shortcut
        ("preact_resnet18", "layer3.1", 7, "layer3.1"),  # no ReLU after the addition
        ("resnet20", "stem", 3, "relu"),
    ],
)
def test_activations_layer_choices_follow_the_architecture(
    preset: str, block: str, layers: int, default: str
) -> None:
    analysis = analyze(preset)

    choices = layer_choices(analysis, block)

    assert len(choices) == layers
    assert default_layer(analysis, block) == default
    assert len(choices) == len(set(choices))  # each call of a shared ReLU apart
    assert stage_names(analysis)[0] == "stem"
    assert block in block_names(analysis, block.split(".")[0]) or block == "stem"


def test_activations_layer_choices_keep_each_call_apart() -> None:
    analysis = analyze("resnet18")

    assert layer_choices(analysis, "layer2.0") == [
        "layer2.0",
        "layer2.0.conv1",
        "layer2.0.bn1",
        "layer2.0.relu",
        "layer2.0.conv2",
        "layer2.0.bn2",
        "layer2.0.downsample.0",
        "layer2.0.downsample.1",
        "layer2.0.relu (2)",
    ]


@pytest.mark.filterwarnings("ignore:input 32x32 leaves")
def test_activations_page_one_channel_and_one_by_one_maps_draw_no_slider() -> None:
    # Stem width 1 gives a 1-channel stem; at 32 px the last stage's maps are 1x1. Streamlit
    # refuses a slider whose minimum is its maximum.
    token = "resnet18~w-1.2.4.8~sw-1"
    at = _page(token)
    at.slider(key="act_size_imagenet").set_value(32).run()

    at.selectbox(key=f"act_stage_{token}").select("stem").run()
    at.selectbox(key=f"act_rf_layer_{token}").select("layer4").run()

    assert not at.exception
    assert any(c.value == "1 channel" for c in at.caption)
    assert any(c.value.startswith("Row 0: the map has only one") for c in at.caption)
    assert any(c.value.startswith("Column 0: the map has only one") for c in at.caption)
    assert any(c.startswith("layer4 at (0, 0)") for c in _captions(at))


@pytest.mark.parametrize(
    "saved",
    [
        lambda: build_model("resnet20", device="meta").state_dict(),
        lambda: {
            k: v.to_sparse() if k == "fc.weight" else v
            for k, v in build_model("resnet20", seed=0).state_dict().items()
        },
    ],
    ids=["meta", "sparse"],
)
def test_activations_page_unloadable_checkpoint_is_a_message(saved: Any) -> None:
    buffer = io.BytesIO()
    torch.save(saved(), buffer)

    at = _upload_checkpoint(_page("resnet20"), "odd.pth", buffer.getvalue())

    assert not at.exception
    assert any(e.value.startswith("odd.pth: this checkpoint holds") for e in at.error)
    assert not at.success


def test_activations_page_any_load_failure_is_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise RuntimeError("Error(s) in loading state_dict for ResNet:\n\tsomething")

    monkeypatch.setattr(activation_data, "load_state_dict", fail)
    data, _ = _state_dict_bytes("resnet20", seed=11)

    at = _upload_checkpoint(_page("resnet20"), "r20.pth", data)

    assert not at.exception
    assert any(
        e.value == "r20.pth was not loaded: Error(s) in loading state_dict for ResNet:"
        for e in at.error
    )


def test_activations_page_one_by_one_maps_share_the_layers_scale() -> None:
    at = _page("resnet18")

    at.slider(key="act_size_imagenet").set_value(32).run()
    at.selectbox(key="act_stage_resnet18").select("layer4").run()

    assert not at.exception
    captions = _captions(at)
    # At 32 pixels resnet18's last stage is 1x1: per-channel scaling would paint every map flat.
    assert any(
        c.startswith("layer4.1") and "512x1x1" in c and "1x1 maps: one scale for the layer" in c
        for c in captions
    ), captions


def test_activations_page_warns_when_a_small_input_leaves_1x1_maps() -> None:
    at = _page("resnet18")
    assert not any("1x1 maps" in w.value for w in at.warning)

    at.slider(key="act_size_imagenet").set_value(32).run()

    assert any("leaves layer4 (stage 4)" in w.value and "1x1 maps" in w.value for w in at.warning)
