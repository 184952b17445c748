"""Every torchvision and timm preset is its namesake: keys, shapes, counts and logits.

The facts come from tests/data/reference, measured from torchvision 0.29.1 and timm 1.0.31;
neither library is needed to run these tests.
"""

from __future__ import annotations

import pytest
import torch
from conftest import (
    deterministic_state_dict,
    expected_outputs,
    preset_of,
    reference,
    reference_index,
    reference_input,
)

from resnet_viz import PRESETS, build_model, count_parameters

REFERENCE_KEYS = sorted(reference_index())
LOGIT_CASES = [(case["model"], tuple(case["input_hw"])) for case in expected_outputs()]
CIFAR_PARAMS = {
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet1202": 19_421_274,
}


def test_fidelity_reference_covers_every_torchvision_and_timm_preset() -> None:
    from resnet_viz.presets import FAMILIES

    covered = {preset_of(key) for key in REFERENCE_KEYS}

    assert covered == set(FAMILIES["torchvision"]) | set(FAMILIES["timm"])


@pytest.mark.parametrize("key", REFERENCE_KEYS)
def test_fidelity_state_dict_keys_and_shapes(key: str) -> None:
    model = build_model(preset_of(key), device="meta")

    ours = [[name, list(t.shape)] for name, t in model.state_dict().items()]

    assert ours == reference(key)["state_dict"]


@pytest.mark.parametrize("key", REFERENCE_KEYS)
def test_fidelity_parameter_count(key: str) -> None:
    model = build_model(preset_of(key), device="meta")

    assert count_parameters(model) == reference(key)["num_params"]


@pytest.mark.parametrize("key", REFERENCE_KEYS)
def test_fidelity_strict_load(key: str) -> None:
    # Built on meta and loaded with assign=True: the same strict key and shape check as a load
    # into a CPU model, without first initialising weights that are thrown away.
    model = build_model(preset_of(key), device="meta")

    result = model.load_state_dict(
        deterministic_state_dict(reference(key)["state_dict"]), strict=True, assign=True
    )

    assert not result.missing_keys and not result.unexpected_keys
    assert all(t.device.type == "cpu" for t in model.state_dict().values())


@pytest.mark.parametrize(("key", "input_hw"), LOGIT_CASES)
def test_fidelity_logits(key: str, input_hw: tuple[int, int]) -> None:
    expected = next(
        case
        for case in expected_outputs()
        if case["model"] == key and tuple(case["input_hw"]) == input_hw
    )
    model = build_model(preset_of(key), device="cpu")
    model.load_state_dict(deterministic_state_dict(reference(key)["state_dict"]), strict=True)

    with torch.no_grad():
        logits = model(reference_input(*input_hw))[0]

    torch.testing.assert_close(
        logits[:5], torch.tensor(expected["logits_first5"]), rtol=1e-4, atol=1e-4
    )
    assert logits.sum().item() == pytest.approx(expected["logits_sum"], rel=1e-4, abs=1e-3)
    assert logits.norm().item() == pytest.approx(expected["logits_l2"], rel=1e-4)
    assert logits.argmax().item() == expected["argmax"]


@pytest.mark.parametrize(("name", "params"), sorted(CIFAR_PARAMS.items()))
def test_fidelity_cifar_parameter_count(name: str, params: int) -> None:
    assert count_parameters(build_model(name, device="meta")) == params


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_fidelity_cifar_plain_twin_has_same_count(depth: int) -> None:
    # Option A shortcuts hold no parameters, so the plain net counts exactly the same.
    plain = build_model(f"plain{depth}", device="meta")

    assert count_parameters(plain) == CIFAR_PARAMS[f"resnet{depth}"]


@pytest.mark.parametrize("depth", [50, 101, 152])
def test_fidelity_v1_shares_keys_but_not_outputs(depth: int) -> None:
    key = f"resnet{depth}"
    weights = deterministic_state_dict(reference(key)["state_dict"])
    v15 = build_model(key)
    v1 = build_model(f"{key}_v1")
    v15.load_state_dict(weights, strict=True)
    v1.load_state_dict(weights, strict=True)

    with torch.no_grad():
        x = reference_input(160, 160)
        difference = (v1(x) - v15(x)).abs().max().item()

    assert PRESETS[f"{key}_v1"].stride_in_1x1 and not PRESETS[key].stride_in_1x1
    assert difference > 1e-2
    # The stride moves from the 3x3 to the first 1x1 of each stage's first block.
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
