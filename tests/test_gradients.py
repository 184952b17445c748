"""The gradient lab's library: gradient norms, the generated task, the race, Fig. 7."""

from __future__ import annotations

import functools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import cli_status
from torch import nn

from resnet_viz import build_model
from resnet_viz.gradients import (
    GradientFlow,
    LayerGradient,
    gradient_flow,
    lab_batch,
    measure,
    response_std,
    variants,
)
from resnet_viz.presets import get_preset
from resnet_viz.race import RaceSettings, TrainingRace
from resnet_viz.shapes_data import CLASSES, make_shapes

# Batch 16 instead of the lab's 64 keeps depth 110 quick on two cores; the direction of every
# effect below holds at 16 as at 64 (README, "Gradient lab", has the batch-64 table).
BATCH = 16


@functools.lru_cache
def _ratio(name: str, **changes: object) -> float:
    return measure(get_preset(name).replace(**changes), batch=BATCH, seed=0).first_last_ratio


def test_gradient_flow_matches_autograd_on_a_tiny_net() -> None:
    config = get_preset("resnet20").replace(
        blocks_per_stage=(1, 1, 1), widths=(4, 8, 8), stem_width=4
    )
    model = build_model(config, seed=3)
    x, labels = lab_batch(config, 8, seed=3)

    flow = gradient_flow(model, x, labels)

    # Independently: the same loss in train mode on a copy, gradients by torch.autograd.grad.
    copy = build_model(config, seed=3).train()
    named = dict(copy.named_modules())
    expected = torch.autograd.grad(
        F.cross_entropy(copy(x), labels), [named[layer.name].weight for layer in flow.layers]
    )
    for layer, grad in zip(flow.layers, expected, strict=True):
        assert layer.weight_grad_norm == pytest.approx(grad.norm().item(), rel=1e-5)


def test_gradient_flow_output_grad_of_fc_is_softmax_minus_onehot() -> None:
    config = get_preset("resnet20").replace(
        blocks_per_stage=(1, 1, 1), widths=(4, 8, 8), stem_width=4
    )
    model = build_model(config, seed=1)
    x, labels = lab_batch(config, 8, seed=1)

    flow = gradient_flow(model, x, labels)

    model.train()
    logits = model(x).detach()
    model.eval()
    # d(mean cross-entropy)/d(logits) = (softmax - one_hot) / N
    expected = (logits.softmax(1) - F.one_hot(labels, 10)) / len(labels)
    assert flow.layers[-1].name == "fc"
    assert flow.layers[-1].output_grad_norm == pytest.approx(expected.norm().item(), rel=1e-4)


def test_gradient_flow_leaves_the_model_as_it_was() -> None:
    model = build_model("resnet20", seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, labels = lab_batch(model.config, 4, seed=0)

    gradient_flow(model, x, labels)

    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks for m in model.modules())


def test_gradient_flow_layers_in_forward_order() -> None:
    model = build_model("resnet20", device="meta")
    weighted = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    flow = measure(get_preset("resnet20"), batch=4)

    assert [layer.name for layer in flow.layers] == weighted
    assert flow.layers[0].name == "conv1" and flow.layers[-1].kind == "fc"


def test_batchnorm_plain_ratio_explodes_with_depth_residual_does_not() -> None:
    plain20, plain110 = _ratio("plain20"), _ratio("plain110")
    res20, res110 = _ratio("resnet20"), _ratio("resnet110")

    assert plain110 / plain20 > 1e3
    assert plain110 > 1e4
    assert res110 / res20 < 30
    assert res110 < plain110 / 1e3


def test_without_norm_gradients_do_not_explode() -> None:
    # Measured (README, "Gradient lab"): with Kaiming init and no normalisation the plain net's
    # ratio is below 1 at depth 20 and wanders around 1 with the seed at 56 and 110; it never
    # comes near the BatchNorm plain net's explosion.
    assert _ratio("plain20", norm="none") < 1
    assert _ratio("resnet20", norm="none") < 1
    assert 1e-2 < _ratio("plain110", norm="none") < 1e2
    assert _ratio("plain110") / _ratio("plain110", norm="none") > 1e3


def test_variants_differ_in_residual_and_norm_only() -> None:
    found = variants(get_preset("resnet56").replace(zero_init_residual=True))

    assert {(c.residual, c.norm) for c in found.values()} == {
        (True, "batch"),
        (False, "batch"),
        (True, "none"),
        (False, "none"),
    }
    assert all(
        c.replace(residual=True, norm="batch") == get_preset("resnet56") for c in found.values()
    )


# -- the generated task --------------------------------------------------------------------


def test_make_shapes_is_deterministic_and_seeded() -> None:
    a, la = make_shapes(40, seed=5)
    b, lb = make_shapes(40, seed=5)
    c, _ = make_shapes(40, seed=6)

    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(a, c)
    assert a.shape == (40, 3, 32, 32) and a.dtype == torch.float32


def test_make_shapes_classes_are_balanced_and_distinct() -> None:
    images, labels = make_shapes(200, seed=0)

    assert torch.bincount(labels).tolist() == [20] * len(CLASSES)
    # Stripes across change from row to row, stripes down from column to column.
    rows = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().mean(dim=(1, 2, 3))
    cols = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))
    across, down = CLASSES.index("horizontal stripes"), CLASSES.index("vertical stripes")
    assert (rows[labels == across] > cols[labels == across]).all()
    assert (cols[labels == down] > rows[labels == down]).all()


def test_make_shapes_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="count must be between"):
        make_shapes(0)
    with pytest.raises(ValueError, match="size must be between"):
        make_shapes(4, size=4)


def test_make_shapes_is_learnable_by_a_linear_probe() -> None:
    images, labels = make_shapes(600, seed=0)
    probe = nn.Linear(3 * 32 * 32, len(CLASSES))
    optimiser = torch.optim.Adam(probe.parameters(), lr=1e-3)

    for _ in range(60):
        optimiser.zero_grad()
        F.cross_entropy(probe(images.flatten(1)), labels).backward()
        optimiser.step()

    accuracy = (probe(images.flatten(1)).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.3  # chance is 0.1


# -- the race ------------------------------------------------------------------------------


def _tiny_race(steps: int) -> TrainingRace:
    return TrainingRace(
        RaceSettings(deep=32, shallow=20, steps=steps, batch=8, train_images=64, widths=(4, 4, 8))
    )


def test_race_respects_its_step_bound() -> None:
    race = _tiny_race(3)

    steps = list(race.run())

    assert [s.step for s in steps] == [1, 2, 3]
    assert set(steps[0].losses) == {"plain-32", "ResNet-32", "plain-20"}
    assert list(race.run()) == []


def test_race_stops_between_steps_and_resumes() -> None:
    race = _tiny_race(5)

    for step in race.run():
        if step.step == 2:
            break

    assert race.steps_done == 2
    assert [s.step for s in race.run()] == [3, 4, 5]


def test_race_is_reproducible() -> None:
    first = [s.losses for s in _tiny_race(2).run()]
    second = [s.losses for s in _tiny_race(2).run()]

    assert first == second


def test_default_race_shows_the_degradation_problem() -> None:
    # The race the page starts, run to the end (about 40 s on one thread): the deep plain net
    # is still at chance (ln 3 = 1.10) when its residual twin and the shallower plain net are
    # well below it. Seeds 1 and 2 hold too (bench/race.py); one seed keeps the suite short.
    history = [step.losses for step in TrainingRace(RaceSettings(seed=0)).run()]

    assert len(history) == RaceSettings().steps
    last = {name: sum(h[name] for h in history[-5:]) / 5 for name in history[0]}
    assert last["plain-56"] > 1.0
    assert last["ResNet-56"] < last["plain-56"] - 0.25
    assert last["plain-20"] < last["plain-56"] - 0.25


def test_race_settings_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="depth must be one of"):
        RaceSettings(deep=57)
    with pytest.raises(ValueError, match="steps must be between"):
        RaceSettings(steps=0)


# -- Fig. 7 --------------------------------------------------------------------------------


def test_response_std_one_value_per_3x3_layer_after_bn() -> None:
    model = build_model("resnet20", seed=0)
    x, _ = make_shapes(16, seed=0)

    spreads = response_std(model, x)

    assert len(spreads) == 18
    assert spreads[0][0] == "layer1.0.conv1"
    # In eval mode at initialisation BatchNorm is the identity (running mean 0, variance 1),
    # so the first response is the conv output's own spread.
    direct = model.layer1[0].conv1(torch.relu(model.conv1(x))).std(correction=0).item()
    assert spreads[0][1] == pytest.approx(direct, rel=1e-4)
    assert not any(m._forward_hooks for m in model.modules())


# -- command line --------------------------------------------------------------------------


def test_cli_gradients_json_schema_and_order(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli_status(["gradients", "resnet20", "--batch", "4"])

    data = json.loads(capsys.readouterr().out)
    assert status == 0
    assert data["model"] == "resnet20" and data["twin"]["model"] == "plain20"
    names = [
        n
        for n, m in build_model("resnet20", device="meta").named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    for part in (data, data["twin"]):
        assert [layer["name"] for layer in part["layers"]] == names
        for layer in part["layers"]:
            assert {"name", "weight_grad_norm", "output_grad_norm"} <= set(layer)
            assert layer["weight_grad_norm"] > 0


def test_cli_gradients_png(tmp_path: pytest.TempPathFactory) -> None:
    target = tmp_path / "g.png"  # type: ignore[operator]

    status = cli_status(["gradients", "resnet20", "--batch", "4", "--no-norm", "-o", str(target)])

    assert status == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_gradients_bad_batch(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli_status(["gradients", "resnet20", "--batch", "0"])

    assert status == 2
    assert "--batch must be between" in capsys.readouterr().err


# -- the page ------------------------------------------------------------------------------


def test_gradient_lab_page_shows_ratios_and_runs_a_race() -> None:
    from conftest import open_page

    at = open_page("app_pages/gradients.py", "resnet20", timeout=180)
    at.selectbox(key="gradient_lab_model").select("resnet20")
    at.number_input(key="gradient_lab_batch_cifar").set_value(8).run()

    assert not at.exception
    ratios = {m.label: float(m.value) for m in at.metric}
    assert set(ratios) == {"residual, BN", "plain, BN", "residual, no norm", "plain, no norm"}
    expected = measure(get_preset("plain20"), batch=8, seed=0).first_last_ratio
    assert ratios["plain, BN"] == pytest.approx(expected, rel=1e-2)

    at.selectbox(key="gradient_lab_deep").select(32)
    at.number_input(key="gradient_lab_steps").set_value(2)
    at.button(key="race_go").click().run()

    assert not at.exception
    losses = at.session_state["gradient_lab_race"]["losses"]
    assert {name: len(values) for name, values in losses.items()} == {
        "plain-32": 2,
        "ResNet-32": 2,
        "plain-20": 2,
    }
    assert not at.info  # Fig. 7 is drawn once the race has run


def test_first_last_ratio_when_no_gradient_reaches_the_last_conv() -> None:
    # PyTorch's default init kills the signal of a plain 110-layer net without normalisation:
    # the last conv's weight gradient is exactly 0, and the ratio is infinite, null in JSON.
    flow = GradientFlow(
        model="dead",
        config=None,
        layers=[
            LayerGradient("conv1", "conv", True, 0.5, 1.0),
            LayerGradient("layer1.0.conv1", "conv", True, 0.0, 0.0),
        ],
        loss=2.3,
    )

    assert flow.first_last_ratio == math.inf
    assert flow.to_dict()["first_last_ratio"] is None
    json.dumps(flow.to_dict(), allow_nan=False)
