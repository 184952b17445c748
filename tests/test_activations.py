"""Capturing layer outputs, feature-map statistics, residual anatomy, Grad-CAM and the ERF."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import deterministic_state_dict
from PIL import Image
from torch import nn

from resnet_viz import PRESETS, ResNet, ResNetConfig, analyze, build_model
from resnet_viz.activations import (
    capture,
    channel_stats,
    effective_receptive_field,
    feature_grid,
    grad_cam,
    layer_label,
    leaf_layers,
    normalise_maps,
    parse_layer,
    residual_anatomy,
    residual_response_std,
    tensor_stats,
    top_channels,
    top_predictions,
)
from resnet_viz.images import load_image, network_view, prepare, sample_images
from resnet_viz.rendering import (
    colorize,
    feature_grid_image,
    heat_overlay,
    png_bytes,
    receptive_field_image,
)
from resnet_viz.weights import load_checkpoint


def cifar_input() -> torch.Tensor:
    return torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(7))


@cache
def recipe_state(preset: str | ResNetConfig) -> dict[str, torch.Tensor]:
    """The reference recipe's weights; drawn once per preset, since loading copies them."""
    entries = [[k, list(v.shape)] for k, v in build_model(preset, "meta").state_dict().items()]
    return deterministic_state_dict(entries)


def recipe_model(preset: str | ResNetConfig) -> ResNet:
    model = build_model(preset)
    model.load_state_dict(recipe_state(preset))
    return model


def hooks_left(model: nn.Module) -> int:
    return sum(
        len(module._forward_hooks) + len(module._forward_pre_hooks) for module in model.modules()
    )


def plain_cam(model: nn.Module, x: torch.Tensor, layer: str, class_index: int) -> torch.Tensor:
    """Grad-CAM worked out directly, with retain_grad on the layer's output, for comparison."""
    held = {}

    def keep(_: nn.Module, inputs: object, output: torch.Tensor) -> None:
        output.retain_grad()
        held["maps"] = output

    handle = model.get_submodule(layer).register_forward_hook(keep)
    try:
        logits = model(x)
    finally:
        handle.remove()
    logits[0, class_index].backward()
    maps, grads = held["maps"], held["maps"].grad
    assert grads is not None
    cam = torch.relu((grads.mean((2, 3), keepdim=True) * maps).sum(1))[0].detach()
    model.zero_grad()
    return cam / cam.max()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("layer1.0.relu", ("layer1.0.relu", 0)),
        ("layer1.0.relu (2)", ("layer1.0.relu", 1)),
        ("conv1", ("conv1", 0)),
    ],
)
def test_activations_layer_names_follow_the_summary(text: str, key: tuple[str, int]) -> None:
    assert parse_layer(text) == key
    assert layer_label(key) == text


@pytest.mark.parametrize("preset", ["resnet18", "resnet10t", "resnet20"])
def test_activations_capture_names_and_shapes_match_the_analysis(preset: str) -> None:
    model = build_model(preset)
    size = 32 if preset == "resnet20" else 64
    analysis = analyze(model, input_size=size)
    keys = [(r.name, r.call_index) for r in analysis.records]

    result = capture(model, torch.randn(1, 3, size, size), keys)

    assert list(result.outputs) == keys
    for record in analysis.records:
        assert tuple(result.outputs[(record.name, record.call_index)].shape) == record.output_shape


def test_activations_capture_keeps_each_call_apart() -> None:
    model = recipe_model("resnet18")
    x = torch.randn(1, 3, 64, 64)

    result = capture(model, x, ["layer1.0.relu", "layer1.0.relu (2)", "layer1.0.bn1", "layer1.0"])

    first, second = result.outputs[("layer1.0.relu", 0)], result.outputs[("layer1.0.relu", 1)]
    assert torch.equal(first, torch.relu(result.outputs[("layer1.0.bn1", 0)]))
    assert torch.equal(second, result.outputs[("layer1.0", 0)])
    assert not torch.equal(first, second)
    assert torch.allclose(result.logits, model(x), atol=1e-5)


def test_activations_capture_survives_inplace_relus() -> None:
    model = recipe_model("resnet20")
    x = cifar_input()
    expected = capture(model, x, ["layer1.0.bn1"]).outputs[("layer1.0.bn1", 0)]
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = True

    got = capture(model, x, ["layer1.0.bn1"]).outputs[("layer1.0.bn1", 0)]

    assert got.min() < 0  # not overwritten by the ReLU that follows
    assert torch.equal(got, expected)


def test_activations_capture_restores_mode_and_removes_hooks_after_an_error() -> None:
    model = build_model("resnet20").train()

    with pytest.raises(RuntimeError):
        capture(model, torch.randn(1, 5, 32, 32), ["layer1.0.conv1"])  # wrong channel count

    assert hooks_left(model) == 0 and model.training


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("layer9.0", "no layer named 'layer9.0'.*resnet-viz summary MODEL"),
        ("layer1.0.relu (3)", "'layer1.0.relu' has no call 3"),
        ("layer1.0.relu (0)", "calls are counted from 1"),
        ("conv 1", "is not a layer name"),
    ],
)
def test_activations_capture_bad_names(layer: str, message: str) -> None:
    model = build_model("resnet20")

    with pytest.raises(ValueError, match=message):
        capture(model, cifar_input(), [layer])

    assert hooks_left(model) == 0


def test_activations_leaf_layers_are_the_leaves() -> None:
    leaves = leaf_layers(build_model("resnet20"))

    assert leaves[:3] == ["conv1", "bn1", "relu"] and leaves[-2:] == ["avgpool", "fc"]
    assert "layer1.0" not in leaves and "layer2.0.downsample" in leaves  # option A: a leaf


def test_activations_channel_stats_by_hand() -> None:
    fmap = torch.tensor([[[0.0, 2.0], [4.0, 0.0]], [[-1.0, -1.0], [-1.0, -1.0]]])

    first, second = channel_stats(fmap)

    assert (first.mean, first.min, first.max, first.zero_fraction) == (1.5, 0.0, 4.0, 0.5)
    assert first.std == pytest.approx(np.std([0, 2, 4, 0]))
    assert (second.mean, second.std, second.zero_fraction) == (-1.0, 0.0, 0.0)
    assert tensor_stats(fmap).mean == pytest.approx(0.25)


def test_activations_one_pixel_maps_have_zero_spread() -> None:
    stats = channel_stats(torch.ones(1, 4, 1, 1))

    assert [s.std for s in stats] == [0.0] * 4


def test_activations_top_channels_by_mean_ties_by_index() -> None:
    fmap = torch.stack([torch.full((2, 2), v) for v in (1.0, 3.0, 2.0, 3.0, 0.0)])

    assert top_channels(fmap, 3) == [1, 3, 2]
    assert top_channels(fmap, 99) == [1, 3, 2, 0, 4]


def test_activations_normalisation_per_channel_and_per_layer() -> None:
    maps = torch.stack([torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, 4.0]]), torch.zeros(1, 2)])

    per_channel = normalise_maps(maps, "channel")
    per_layer = normalise_maps(maps, "layer")

    assert per_channel.tolist() == [[[0.0, 1.0]], [[0.0, 1.0]], [[0.0, 0.0]]]
    assert per_layer.tolist() == [[[0.0, 0.25]], [[0.5, 1.0]], [[0.0, 0.0]]]


def test_activations_flat_maps_are_zeros_not_nan() -> None:
    flat = normalise_maps(torch.full((2, 3, 3), 5.0), "layer")

    assert torch.equal(flat, torch.zeros(2, 3, 3))


def test_activations_feature_grid_top_k_and_chosen() -> None:
    fmap = torch.arange(6 * 4, dtype=torch.float32).reshape(6, 2, 2)

    top = feature_grid(fmap, top_k=2)
    chosen = feature_grid(fmap, channels=[0, 5], normalisation="layer")

    assert top.channels == [5, 4] and top.maps.shape == (2, 2, 2)
    assert [s.channel for s in top.stats] == [5, 4] and top.stats[0].mean == 21.5
    assert chosen.maps[0, 0, 0] == 0.0 and chosen.maps[1, 1, 1] == 1.0
    with pytest.raises(ValueError, match="channels \\[6\\] do not exist.*0 to 5"):
        feature_grid(fmap, channels=[6])


def test_activations_feature_grid_png() -> None:
    grid = feature_grid(torch.rand(20, 7, 7), top_k=16)

    image = Image.open(io.BytesIO(png_bytes(feature_grid_image(grid, cell=50, gap=2))))

    assert image.size == (4 * 50 + 5 * 2, 4 * 50 + 5 * 2)
    assert image.getpixel((0, 0)) == (255, 255, 255)  # the gap


def test_activations_colormap_ends() -> None:
    ends = colorize(np.array([0.0, 1.0, np.nan]))

    assert ends.tolist() == [[0, 0, 4], [252, 255, 164], [0, 0, 4]]


# -- residual anatomy ---------------------------------------------------------------------


def test_activations_anatomy_of_a_projection_block() -> None:
    model = recipe_model("resnet18")
    x = torch.randn(1, 3, 64, 64)
    parts = capture(model, x, ["layer2.0.bn2", "layer2.0.downsample", "layer1", "layer2.0"])

    anatomy = residual_anatomy(model, x, "layer2.0")

    assert torch.equal(anatomy.x, parts.outputs[("layer1", 0)][0])
    assert torch.equal(anatomy.branch, parts.outputs[("layer2.0.bn2", 0)][0])
    assert anatomy.shortcut is not None and anatomy.total is not None
    assert torch.equal(anatomy.shortcut, parts.outputs[("layer2.0.downsample", 0)][0])
    assert torch.allclose(torch.relu(anatomy.total), anatomy.output, atol=1e-6)
    assert torch.equal(anatomy.output, parts.outputs[("layer2.0", 0)][0])
    assert anatomy.relu_after_sum
    assert set(anatomy.stats()) == {"x", "branch", "shortcut", "total", "output"}
    assert anatomy.stats()["output"].min >= 0


def test_activations_anatomy_of_option_a_preact_and_plain_blocks() -> None:
    x = cifar_input()

    option_a = residual_anatomy(recipe_model("resnet20"), x, "layer2.0")
    short_preact = PRESETS["preact_resnet110"].replace(blocks_per_stage=(2, 2, 2))
    preact = residual_anatomy(recipe_model(short_preact), x, "layer1.1")
    plain = residual_anatomy(recipe_model("plain20"), x, "layer3.2")

    assert option_a.shortcut is not None and option_a.shortcut.shape == (32, 16, 16)
    assert torch.equal(option_a.shortcut[:16], option_a.x[:, ::2, ::2])
    assert option_a.shortcut[16:].abs().sum() == 0  # the padded channels
    assert preact.total is not None and not preact.relu_after_sum
    assert torch.allclose(preact.total, preact.output, atol=1e-6)
    assert torch.equal(preact.shortcut, preact.x)  # type: ignore[arg-type]
    assert plain.shortcut is None and plain.total is None
    assert torch.allclose(torch.relu(plain.branch), plain.output)


def test_activations_anatomy_needs_a_block() -> None:
    with pytest.raises(ValueError, match="'layer2' is a Sequential, not a residual block"):
        residual_anatomy(build_model("resnet20"), cifar_input(), "layer2")


def test_activations_residual_response_std_per_block() -> None:
    model = recipe_model("resnet20")
    x = cifar_input()
    names = [f"layer{s}.{b}" for s in (1, 2, 3) for b in range(3)]
    branch = capture(model, x, [f"{name}.bn2" for name in names]).outputs

    spreads = residual_response_std(model, x)

    assert [name for name, _ in spreads] == names
    for name, spread in spreads:
        assert spread == pytest.approx(branch[(f"{name}.bn2", 0)].std(correction=0).item())


# -- predictions and Grad-CAM ---------------------------------------------------------------


def test_activations_predictions_say_when_weights_are_random(tmp_path: Path) -> None:
    random_model = build_model("resnet20")
    logits = torch.tensor([0.0, 3.0, 1.0, 2.0] + [-5.0] * 6)
    path = tmp_path / "r20.pt"
    torch.save(random_model.state_dict(), path)
    trained = load_checkpoint(path).model

    random = top_predictions(random_model, logits, k=3)
    real = top_predictions(trained, logits, k=3)

    assert [p.index for p in random.top] == [1, 3, 2]
    assert random.top[0].label == "class 1" and random.top[0].probability == pytest.approx(
        torch.softmax(logits, 0)[1].item()
    )
    assert random.random_weights and "mean nothing" in (random.note or "")
    assert not real.random_weights and real.note is None


def test_activations_imagenet_labels_for_1000_classes() -> None:
    logits = torch.zeros(1000)
    logits[281] = 10.0

    predictions = top_predictions(build_model("resnet18", device="meta"), logits)

    assert predictions.top[0].label == "tabby" and len(predictions.top) == 5


def test_activations_grad_cam_matches_a_direct_computation() -> None:
    model = recipe_model("resnet18")
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    top_class = int(model(x).argmax())

    result = grad_cam(model, x, "layer3", class_index=top_class)

    expected = plain_cam(model, x, "layer3", top_class)
    assert result.layer == ("layer3", 0) and result.class_index == top_class
    assert result.cam.shape == (6, 6) and result.peak > 0
    assert torch.allclose(result.cam, expected, atol=1e-5)


def test_activations_grad_cam_inplace_frozen_and_inference_mode() -> None:
    model = recipe_model("resnet20")
    x = cifar_input()
    expected = grad_cam(model, x, "layer2.1", class_index=4)
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = True
    for parameter in model.parameters():
        parameter.requires_grad_(False)

    with torch.inference_mode():
        x_inference = x.clone()
        model(x_inference)
        got = grad_cam(model, x_inference, "layer2.1", class_index=4)

    assert torch.allclose(got.cam, expected.cam, atol=1e-6)
    assert got.peak == pytest.approx(expected.peak, rel=1e-5)
    assert hooks_left(model) == 0
    assert all(p.grad is None for p in model.parameters())


def test_activations_grad_cam_defaults_to_last_stage_and_top_class() -> None:
    model = recipe_model("resnet20")
    x = cifar_input()

    result = grad_cam(model, x)

    assert result.layer == ("layer3", 0)
    assert result.class_index == int(model(x).argmax())


def test_activations_grad_cam_zero_fc_checkpoint_gives_finite_zeros(tmp_path: Path) -> None:
    model = recipe_model("resnet20")
    state = model.state_dict()
    state["fc.weight"] = torch.zeros_like(state["fc.weight"])
    path = tmp_path / "zero_fc.pth"
    torch.save({"model": state}, path)
    loaded = load_checkpoint(path).model

    result = grad_cam(loaded, cifar_input(), "layer3.2", class_index=0)

    assert torch.isfinite(result.cam).all() and torch.equal(result.cam, torch.zeros(8, 8))
    assert result.peak == 0.0


@pytest.mark.parametrize(("value", "what"), [(float("nan"), "NaN"), (float("inf"), "infinite")])
def test_activations_grad_cam_non_finite_outputs_refused(value: float, what: str) -> None:
    model = build_model("resnet20", seed=0)
    with torch.no_grad():
        model.fc.bias[3] = value

    with pytest.raises(ValueError, match=f"outputs are not finite \\({what}\\); the weights"):
        grad_cam(model, cifar_input())
    assert hooks_left(model) == 0


def test_activations_grad_cam_bad_class_and_layer() -> None:
    model = build_model("resnet20")

    with pytest.raises(ValueError, match="class 10 does not exist; .*0 to 9"):
        grad_cam(model, cifar_input(), class_index=10)
    with pytest.raises(ValueError, match="fc has no feature map"):
        grad_cam(model, cifar_input(), "fc")
    assert hooks_left(model) == 0


@pytest.mark.parametrize("size", [(451, 300), (300, 451)], ids=["landscape", "portrait"])
def test_activations_cam_overlay_has_the_photo_shape(size: tuple[int, int]) -> None:
    photo = load_image(sample_images()["chelsea"]).image.resize(size)
    prepared = prepare(photo)
    cam = torch.zeros(7, 7)
    cam[3, 3] = 1.0

    overlay = heat_overlay(photo, cam, prepared)

    assert overlay.size == photo.size
    left, top, right, bottom = (int(round(v)) for v in prepared.crop_box)
    corner_inside = (left + 2, top + 2)  # cold there: the photo unchanged
    centre = ((left + right) // 2, (top + bottom) // 2)
    assert overlay.getpixel(corner_inside) == photo.getpixel(corner_inside)
    assert overlay.getpixel(centre) != photo.getpixel(centre)
    outside = (1, 1) if left > 2 or top > 2 else None
    assert outside is not None and overlay.getpixel(outside) != photo.getpixel(outside)


def test_activations_cam_overlay_refuses_another_photo() -> None:
    prepared = prepare(Image.new("RGB", (300, 200)))

    with pytest.raises(ValueError, match="pass the same photo"):
        heat_overlay(Image.new("RGB", (200, 300)), torch.zeros(7, 7), prepared)


# -- receptive fields -------------------------------------------------------------------------


def test_activations_erf_stays_inside_the_theoretical_field() -> None:
    model = recipe_model("resnet18")
    x = torch.randn(1, 3, 64, 64)

    field = effective_receptive_field(model, x, "conv1", position=(10, 20))

    # conv1 is 7x7, stride 2, padding 3: output (10, 20) sees rows 17..23, columns 37..43.
    assert field.box == (17.0, 37.0, 23.0, 43.0) and (field.size, field.jump) == (7, 2)
    rows, cols = torch.nonzero(field.heat, as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (17, 23, 37, 43)
    assert field.heat.max() == 1.0


def test_activations_erf_is_smaller_than_the_theoretical_field() -> None:
    model = recipe_model("resnet18")
    x = torch.randn(1, 3, 96, 96)

    field = effective_receptive_field(model, x, "layer2")  # centre of a 12x12 map

    top, left, bottom, right = field.box
    rows, cols = torch.nonzero(field.heat > 0, as_tuple=True)
    assert top <= rows.min() and rows.max() <= bottom and left <= cols.min() and cols.max() <= right
    # Most of the gradient sits in the middle of the theoretical field (Luo et al. 2016).
    centre_row, centre_col = (top + bottom) / 2, (left + right) / 2
    quarter = field.size / 4
    inner = field.heat[
        int(centre_row - quarter) : int(centre_row + quarter) + 1,
        int(centre_col - quarter) : int(centre_col + quarter) + 1,
    ]
    assert inner.sum() > 0.5 * field.heat.sum()


def test_activations_erf_picture_and_bad_position() -> None:
    model = build_model("resnet20")
    prepared = prepare(Image.new("RGB", (40, 40), (90, 90, 90)), size=32)
    field = effective_receptive_field(model, prepared.tensor, "layer1.2")

    image = receptive_field_image(network_view(prepared), field)

    assert image.size == (32, 32)
    with pytest.raises(ValueError, match="outside layer1.2's 32x32 map"):
        effective_receptive_field(model, prepared.tensor, "layer1.2", position=(40, 0))
    assert hooks_left(model) == 0


def test_activations_real_photo_end_to_end() -> None:
    photo = load_image(sample_images()["rocket"])
    model = recipe_model("resnet18")
    prepared = prepare(photo)

    grid = feature_grid(capture(model, prepared.tensor, ["layer1"]).outputs[("layer1", 0)])
    cam = grad_cam(model, prepared.tensor)

    assert grid.maps.shape == (16, 56, 56) and 0 <= grid.maps.min() and grid.maps.max() == 1
    assert heat_overlay(photo.image, cam.cam, prepared).size == (640, 427)
    assert PRESETS["resnet18"] == model.config
