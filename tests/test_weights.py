"""Reading checkpoints safely, the configuration they hold, strict loading, published weights."""

from __future__ import annotations

import io
import os
import pathlib
import pickle
import socket
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import deterministic_state_dict, preset_of, reference, reference_index
from safetensors.torch import save as save_safetensors

from resnet_viz import FAMILIES, PRESETS, build_model, weights
from resnet_viz.weights import (
    MAX_WRAPPER_DEPTH,
    PublishedWeights,
    WeightsMismatchError,
    cached_weights_path,
    compare_state_dict,
    config_for_checkpoint,
    fetch_published_weights,
    infer_config,
    load_checkpoint,
    load_state_dict,
    published_weights,
    read_checkpoint,
)

EXPORT_HINT = "torch.save(model.state_dict(), path)"


def recipe_weights(preset: str) -> dict[str, torch.Tensor]:
    """The reference recipe's weights for one of our presets (its keys in our order)."""
    entries = [[k, list(v.shape)] for k, v in build_model(preset, "meta").state_dict().items()]
    return deterministic_state_dict(entries)


def torch_bytes(obj: Any, legacy: bool = False) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


WRAPPERS = {
    "bare": lambda sd: sd,
    "state_dict": lambda sd: {"state_dict": sd, "epoch": 90, "arch": "resnet20"},
    "model": lambda sd: {"model": sd, "optimizer": {"lr": 0.1}},
    "model_state_dict": lambda sd: {"model_state_dict": sd},
}
PREFIXES = ["", "module.", "_orig_mod.", "module._orig_mod."]


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_weights_every_wrapper_prefix_and_format_reads_back(
    wrapper: str, prefix: str, legacy: bool
) -> None:
    weights = recipe_weights("resnet20")
    saved = WRAPPERS[wrapper]({prefix + key: value for key, value in weights.items()})

    checkpoint = read_checkpoint(torch_bytes(saved, legacy))

    assert checkpoint.format == ("pytorch legacy" if legacy else "pytorch zip")
    assert list(checkpoint.state_dict) == list(weights)
    assert all(torch.equal(checkpoint.state_dict[k], v) for k, v in weights.items())
    assert any(wrapper in n for n in checkpoint.notices) == (wrapper != "bare")
    assert len([n for n in checkpoint.notices if "prefix" in n]) == prefix.count(".")


def test_weights_safetensors_read_by_content(tmp_path: Path) -> None:
    weights = recipe_weights("resnet20")
    path = tmp_path / "weights.pth"  # a misleading name: the content decides
    path.write_bytes(save_safetensors(weights))

    checkpoint = read_checkpoint(path)

    assert checkpoint.format == "safetensors"
    assert all(torch.equal(checkpoint.state_dict[k], v) for k, v in weights.items())


def test_weights_extension_does_not_decide(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    path.write_bytes(torch_bytes(recipe_weights("resnet20"), legacy=True))

    assert read_checkpoint(path).format == "pytorch legacy"


def test_weights_reference_checkpoint_loads_into_its_network(tmp_path: Path) -> None:
    weights = deterministic_state_dict(reference("resnet18")["state_dict"])
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in weights.items()}}, path)

    loaded = load_checkpoint(path)

    assert loaded.config == PRESETS["resnet18"] == loaded.inferred
    assert loaded.model.weights_source == str(path)
    assert torch.equal(
        loaded.model.get_parameter("layer3.1.conv2.weight"), weights["layer3.1.conv2.weight"]
    )
    assert torch.equal(loaded.model.fc.bias, weights["fc.bias"])
    assert not loaded.model.training


class _Payload:
    """Unpickling this creates a file: the proof that a loader ran a stored callable."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


@pytest.mark.parametrize("form", ["zip", "legacy", "wrapped", "plain-pickle"])
def test_weights_malicious_pickle_leaves_no_file(tmp_path: Path, form: str) -> None:
    target = tmp_path / "pwned"
    payload = _Payload(target)
    data = {
        "zip": lambda: torch_bytes({"x": payload}),
        "legacy": lambda: torch_bytes({"x": payload}, legacy=True),
        "wrapped": lambda: torch_bytes({"state_dict": {"conv1.weight": payload}}),
        "plain-pickle": lambda: pickle.dumps({"x": payload}),
    }[form]()
    assert not target.exists()

    with pytest.raises(ValueError, match="not (loaded|opened), because unpickling"):
        read_checkpoint(data)

    assert not target.exists()


class _Mentions:
    """Unpickles to a harmless call whose argument mentions torch.nn.modules."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.path.exists, ("torch.nn.modules.conv",))


class _Blocked:
    """Unpickles to a call into a module PyTorch blocks outright (posix on Linux)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.getcwd, ())


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize(
    ("payload", "name"),
    [(_Mentions(), f"{os.path.exists.__module__}.exists"), (_Blocked(), f"{os.name}.getcwd")],
    ids=["mentions-torch-nn", "blocked-module"],
)
def test_weights_refused_global_is_named_and_no_model_is_invented(
    payload: Any, name: str, legacy: bool
) -> None:
    data = torch_bytes({"conv1.weight": torch.zeros(1), "x": payload}, legacy)

    with pytest.raises(ValueError) as error:
        read_checkpoint(data)

    assert f"holds Python objects besides tensors (it refers to {name})" in str(error.value)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_weights_whole_model_says_how_to_export(legacy: bool) -> None:
    data = torch_bytes(build_model("resnet20"), legacy)

    with pytest.raises(ValueError) as error:
        read_checkpoint(data)

    assert "whole pickled model (resnet_viz.model.ResNet)" in str(error.value)
    assert EXPORT_HINT in str(error.value)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_weights_torchscript_says_how_to_export() -> None:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buffer)

    with pytest.raises(ValueError, match="TorchScript archive.*state_dict"):
        read_checkpoint(buffer.getvalue())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"just some text", "neither a PyTorch file"),
        (b"PK\x03\x04 not really a zip", "damaged or not a checkpoint"),
        (b"", "empty"),
    ],
)
def test_weights_unreadable_files_have_clear_messages(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_checkpoint(data)


def test_weights_truncated_safetensors() -> None:
    data = save_safetensors(recipe_weights("resnet20"))

    with pytest.raises(ValueError, match="safetensors file is damaged"):
        read_checkpoint(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("saved", "message"),
    [
        ([1, 2, 3], "holds a list, not a dict of named tensors"),
        ({"epoch": 3, "arch": "x"}, "no tensors at its top level"),
    ],
)
def test_weights_containers_without_tensors(saved: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_checkpoint(torch_bytes(saved))


@pytest.mark.parametrize(
    "saved",
    [
        # PyTorch's ImageNet example: a tensor (best_acc1) beside the wrapped weights.
        lambda sd: {
            "epoch": 5,
            "arch": "resnet20",
            "state_dict": {"module." + k: v for k, v in sd.items()},
            "best_acc1": torch.tensor(76.1),
            "optimizer": {"state": {}, "param_groups": []},
        },
        lambda sd: {"epoch": torch.tensor(5), "state_dict": sd},
        lambda sd: {"model": {"model": {"model": {"state_dict": {"model": sd}}}}},
        lambda sd: {"state_dict_ema": sd, "epoch": 3},
    ],
    ids=["imagenet-example", "tensor-epoch", "nested", "ema"],
)
def test_weights_wrapper_wins_over_stray_tensors_and_nests(saved: Any) -> None:
    weights = recipe_weights("resnet20")

    checkpoint = read_checkpoint(torch_bytes(saved(weights)))

    assert list(checkpoint.state_dict) == list(weights)
    assert any(n.startswith("took the weights from") for n in checkpoint.notices)


def test_weights_stray_tensors_beside_a_wrapper_are_named() -> None:
    saved = {"state_dict": recipe_weights("resnet20"), "best_acc1": torch.tensor(76.1)}

    notices = read_checkpoint(torch_bytes(saved)).notices

    assert "the tensors beside it (best_acc1) are not weights" in notices[0]


def test_weights_wrappers_deeper_than_the_limit_are_refused() -> None:
    saved: Any = {"conv1.weight": torch.zeros(1)}
    for _ in range(MAX_WRAPPER_DEPTH + 1):
        saved = {"model": saved}

    with pytest.raises(ValueError, match=f"{MAX_WRAPPER_DEPTH} levels deep at most"):
        read_checkpoint(torch_bytes(saved))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda sd: build_model("resnet20", device="meta").state_dict(), "no values \\(meta"),
        (lambda sd: {**sd, "fc.weight": sd["fc.weight"].to_sparse()}, "sparse tensors"),
        (lambda sd: {k: v.to(torch.complex64) for k, v in sd.items()}, "complex values"),
    ],
    ids=["meta", "sparse", "complex"],
)
def test_weights_unloadable_tensors_refused_before_loading(change: Any, message: str) -> None:
    data = torch_bytes(change(build_model("resnet20", seed=0).state_dict()))

    with pytest.raises(ValueError, match=message) as error:
        load_checkpoint(data)

    assert len(str(error.value).splitlines()) == 1


def _zip_of_zeros(path: Path, megabytes: int) -> None:
    """A deflated zip, shaped like torch.save's, whose one entry inflates to `megabytes` MB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("archive/data/0", "w", force_zip64=True) as entry:
            chunk = bytes(2**20)
            for _ in range(megabytes):
                entry.write(chunk)


def test_weights_zip_bomb_refused_by_compression_ratio(tmp_path: Path) -> None:
    path = tmp_path / "bomb.pth"
    _zip_of_zeros(path, 60)  # about 60 KB on disk

    with pytest.raises(ValueError, match="unpacks to 60 MB .* more than 100:1"):
        read_checkpoint(path)


def test_weights_unpacked_size_over_the_limit_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights, "MAX_CHECKPOINT_BYTES", 2 * 2**20)
    path = tmp_path / "big.pth"
    _zip_of_zeros(path, 3)

    with pytest.raises(ValueError, match="unpacks to 3 MB .* over the limit of 2 MB"):
        read_checkpoint(path)


def test_weights_file_over_the_limit_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights, "MAX_CHECKPOINT_BYTES", 2**20)
    path = tmp_path / "big.pth"
    path.write_bytes(torch_bytes({"x": torch.zeros(2**19)}))  # 2 MB

    with pytest.raises(ValueError, match="over the limit of 1 MB"):
        read_checkpoint(path)


def test_weights_safetensors_offsets_past_the_end_refused() -> None:
    data = bytearray(save_safetensors({"x": torch.zeros(4)}))
    header_length = int.from_bytes(data[:8], "little")
    header = data[8 : 8 + header_length].replace(b"[0,16]", b"[0,99]")

    with pytest.raises(ValueError, match="safetensors file is damaged"):
        read_checkpoint(bytes(data[:8] + header + data[8 + header_length :]))


# -- configuration inference ------------------------------------------------------------


@pytest.mark.parametrize("key", list(reference_index()))
def test_weights_infer_config_of_every_reference_model(key: str) -> None:
    # Shapes only (meta tensors): the inference reads shapes, never values.
    shapes = {k: torch.empty(s, device="meta") for k, s in reference(key)["state_dict"]}

    assert infer_config(shapes) == PRESETS[preset_of(key)]


# What the weights cannot show, and what is assumed instead (see weights.py).
UNSEEN = {
    "resnet50_v1": {"stride_in_1x1": False},
    "plain18": {"shortcut": "A", "residual": True},
    "plain20": {"residual": True},
}


@pytest.mark.parametrize(
    "preset",
    [
        "resnet20",
        "resnet110",
        "preact_resnet18",
        "preact_resnet164",
        "resnet10t",
        "resnet50t",
        "seresnext50_32x4d",
        "wide_resnet50_2",
        *UNSEEN,
    ],
)
def test_weights_infer_config_round_trips(preset: str) -> None:
    config = PRESETS[preset]
    state = build_model(config, device="meta").state_dict()

    assert infer_config(state) == config.replace(**UNSEEN.get(preset, {}))


@pytest.mark.parametrize(
    "changes",
    [
        {"shortcut": "C"},
        {"shortcut": "D", "se": True},
        {"num_classes": 7, "in_channels": 1},
        {"blocks_per_stage": (1, 2, 3), "widths": (8, 16, 32), "stem_width": 8},
    ],
)
def test_weights_infer_config_custom_networks(changes: dict[str, Any]) -> None:
    config = PRESETS["resnet20"].replace(shortcut="B").replace(**changes)

    assert infer_config(build_model(config, device="meta").state_dict()) == config


def test_weights_not_a_resnet_says_so() -> None:
    vgg_like = {
        "features.0.weight": torch.zeros(8, 3, 3, 3),
        "classifier.weight": torch.zeros(2, 8),
    }

    with pytest.raises(ValueError, match="not those of a ResNet this program builds"):
        infer_config(vgg_like)


# -- mismatches and strict loading ------------------------------------------------------


def test_weights_mismatch_is_reported_by_key_and_nothing_is_loaded() -> None:
    model = build_model("resnet20")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    weights = recipe_weights("resnet20")
    del weights["layer1.0.bn1.weight"]
    weights["head.weight"] = torch.zeros(3)
    weights["fc.weight"] = torch.zeros(5, 64)

    with pytest.raises(WeightsMismatchError) as error:
        load_state_dict(model, weights, "bad.pth")

    mismatch = error.value.mismatch
    assert mismatch.missing == ("layer1.0.bn1.weight",)
    assert mismatch.unexpected == ("head.weight",)
    assert mismatch.wrong_shape == (("fc.weight", (5, 64), (10, 64)),)
    assert "1 missing (layer1.0.bn1.weight)" in str(error.value)
    assert "fc.weight: checkpoint (5, 64), network (10, 64)" in str(error.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.weights_source is None


def test_weights_missing_batch_counters_are_no_mismatch() -> None:
    # Checkpoints from before PyTorch 0.4.1 have no num_batches_tracked.
    weights = {k: v for k, v in recipe_weights("resnet20").items() if "num_batches" not in k}
    model = build_model("resnet20")

    assert not compare_state_dict(model, weights)
    load_state_dict(model, weights, "old.pth")
    assert torch.equal(model.conv1.weight, weights["conv1.weight"])


def test_weights_requested_config_with_other_classes_is_adopted() -> None:
    weights = recipe_weights("resnet20")  # 10 classes

    config, inferred, notices = config_for_checkpoint(
        weights, PRESETS["resnet20"].replace(num_classes=100)
    )

    assert config == PRESETS["resnet20"] and inferred == PRESETS["resnet20"]
    assert notices == ["the checkpoint has 10 classes, not 100; using 10"]


def test_weights_requested_config_that_differs_names_the_checkpoints() -> None:
    with pytest.raises(WeightsMismatchError) as error:
        config_for_checkpoint(recipe_weights("resnet20"), "resnet32")

    message = str(error.value)
    assert message.startswith("the checkpoint holds resnet20 (token resnet20), not resnet32")
    assert "blocks_per_stage=(3, 3, 3)" in message
    assert error.value.mismatch.unexpected == () and error.value.mismatch.missing


def test_weights_requested_config_settles_what_weights_cannot_show() -> None:
    config, inferred, notices = config_for_checkpoint(recipe_weights("plain20"), "plain20")

    assert config == PRESETS["plain20"] and inferred == PRESETS["resnet20"] and notices == []


# -- torchvision's published weights ---------------------------------------------------


def test_weights_published_table() -> None:
    resnet50 = {entry.name: entry for entry in published_weights("resnet50")}

    assert set(resnet50) == {"IMAGENET1K_V1", "IMAGENET1K_V2"}
    assert resnet50["IMAGENET1K_V2"].resize_size == 232
    assert resnet50["IMAGENET1K_V2"].acc1 == pytest.approx(80.858)
    assert resnet50["IMAGENET1K_V1"].hash_prefix == "0676ba61"
    assert published_weights("resnet20") == []
    assert {e.preset for e in published_weights()} == set(FAMILIES["torchvision"])


def test_weights_published_found_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = published_weights("resnet18")[0]
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    weights = deterministic_state_dict(reference("resnet18")["state_dict"])
    torch.save(weights, cached)

    path = fetch_published_weights(entry, download=False)
    loaded = load_checkpoint(path, "resnet18")

    assert path == cached == cached_weights_path(entry)
    assert torch.equal(loaded.model.conv1.weight, weights["conv1.weight"])


def test_weights_published_offline_without_cache_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = published_weights("resnet18")[0]

    with pytest.raises(ValueError) as error:
        fetch_published_weights(entry, download=False)

    message = str(error.value)
    assert "resnet18 IMAGENET1K_V1 is not in the torch hub cache" in message
    assert entry.url in message and str(tmp_path / "hub" / "checkpoints") in message


def test_weights_failed_download_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A closed port on this machine stands in for an unreachable server: no network is used.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    entry = PublishedWeights(
        "resnet18",
        "IMAGENET1K_V1",
        f"http://127.0.0.1:{port}/resnet18-f37072fd.pth",
        0,
        0,
        256,
        224,
    )

    with pytest.raises(ValueError, match="the download failed .*not in the torch hub cache"):
        fetch_published_weights(entry, progress=False)

    assert not list((tmp_path / "hub" / "checkpoints").iterdir())
