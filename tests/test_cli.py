"""The `resnet-viz` command line."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import cli_status
from PIL import Image

from resnet_viz import PRESETS, ResNetConfig, build_model
from resnet_viz.cli import main


def test_cli_presets_lists_every_preset_with_its_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0

    table = capsys.readouterr().out.split("\n\n")[0]
    rows = {line.split()[0]: line for line in table.splitlines()[2:]}

    assert set(rows) == set(PRESETS)
    assert rows["resnet50"].endswith("25,557,032")
    assert rows["resnet20"].endswith("269,722")
    assert rows["resnet1202"].endswith("19,421,274")
    assert " 50 " in rows["resnet50"]  # depth column


def test_cli_presets_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets", "--format", "json", "--family", "timm"]) == 0

    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}

    assert len(rows) == 11
    assert rows["resnet50d"]["params"] == 25_576_264
    assert rows["resnet10t"]["blocks_per_stage"] == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["presets", "--family", "vgg"], "argument --family: invalid choice: 'vgg'"),
        (["summary", "resnet18", "--batch", "1e3"], "invalid int value: '1e3'"),
        (["summary"], "the following arguments are required: MODEL"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["summary", "resnet18", "--format", "xml"], "invalid choice: 'xml'"),
    ],
)
def test_cli_usage_errors_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)

    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and err.startswith("resnet-viz: error: ")
    assert message in err and "--help" in err


def test_cli_quiet_when_the_reader_goes_away() -> None:
    script = Path(sys.executable).parent / "resnet-viz"
    process = subprocess.Popen(
        [str(script), "summary", "resnet1202", "--input", "32"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None

    first = process.stdout.readline()
    process.stdout.close()  # like `| head -1`
    errors = process.stderr.read()
    process.wait(timeout=120)

    assert first.startswith(b"resnet1202 at 1 x 32 x 32")
    assert errors == b""
    assert process.returncode == 1


def test_cli_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "resnet-viz"

    result = subprocess.run(
        [str(script), "presets", "--family", "torchvision"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "wide_resnet101_2" in result.stdout and "126,886,696" in result.stdout


def test_cli_summary_json_has_the_documented_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet50", "--input", "160x192", "--format", "json"]) == 0

    data = json.loads(capsys.readouterr().out)

    assert {
        "config",
        "input_size",
        "total_params",
        "trainable_params",
        "mult_adds",
        "flops",
        "memory",
        "layers",
    } <= set(data)
    assert data["input_size"] == [160, 192]
    assert data["total_params"] == 25_557_032
    assert data["flops"] == 2 * data["mult_adds"]
    layer = data["layers"][0]
    assert {
        "name",
        "call_index",
        "type",
        "input_shapes",
        "output_shape",
        "params",
        "mult_adds",
        "receptive_field",
        "jump",
    } <= set(layer)
    assert layer["name"] == "conv1" and layer["output_shape"] == [1, 64, 80, 96]
    # The config in the JSON is the form MODEL accepts, so it can be passed back.
    assert ResNetConfig.from_dict(data["config"]) == PRESETS["resnet50"]


def test_cli_summary_takes_json_file_and_inline_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = PRESETS["resnet56"].replace(se=True)
    path = tmp_path / "net.json"
    path.write_text(config.to_json())

    assert main(["summary", str(path), "--input", "32", "--format", "json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert main(["summary", config.to_json(), "--input", "32", "--format", "json"]) == 0
    inline = json.loads(capsys.readouterr().out)

    assert from_file["total_params"] == inline["total_params"] > 853_018
    assert ResNetConfig.from_dict(from_file["config"]) == config


def test_cli_summary_table_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet18"]) == 0

    out = capsys.readouterr().out

    assert "mult-adds:   1,814,083,944" in out
    assert "parameters:  11,689,512" in out
    assert "layer4.1.relu (2)" in out
    assert "435 / 32" in out


def test_cli_summary_csv_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet20", "--input", "32", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert main(["summary", "resnet20", "--input", "32", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out

    assert rows[0]["name"] == "conv1" and rows[0]["receptive_field"] == "3"
    # By hand: convs 442,368 + 6 x 2,359,296 + 2 x (1,179,648 + 5 x 2,359,296); BatchNorms
    # count 2C once per image: 32 + 6 x 32 + 6 x 64 + 6 x 128; the fc 64 x 10 + 10.
    assert sum(int(r["mult_adds"]) for r in rows if r["is_leaf"] == "True") == 40_552_426
    assert markdown.splitlines()[0].startswith("| layer | type |")


def test_cli_table_latex_for_the_paper_family(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "resnet18", "resnet34", "resnet50", "--format", "latex"]) == 0

    out = capsys.readouterr().out

    assert r"\toprule" in out and "resnet34" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["summary", "resnet18", "--device", "cuda"], "device 'cuda' is not available"),
        (["summary", "resnet18", "--input", "0"], "input size 0x0 is out of range"),
        (["summary", "resnet18", "--dtype", "int8"], "dtype 'int8' is not supported"),
        (
            ["summary", "resnet18", "--device", "cpu", "--input", "4096", "--batch", "4096"],
            "GiB is free",
        ),
        (["summary", '{"se": ' + "[" * 50_000 + "]" * 50_000 + "}"], "nested too deeply"),
        (["summary", "resnet18", "--batch", "0"], "batch must be an integer from 1"),
        (["summary", "resnet5O"], "unknown preset 'resnet5O'"),
        (["summary", "missing.json"], "configuration file 'missing.json' does not exist"),
        (["summary", '{"blocks_per_stage": [2, 0]}'], "blocks_per_stage must be positive"),
        (["table", "resnet18", "--format", "latex", "--input", "huge"], "is not a size"),
    ],
)
def test_cli_bad_input_is_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")

    assert main(argv) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("resnet-viz: error: ")
    assert message in err


def test_cli_small_input_warns_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet18", "--input", "7", "--format", "json"]) == 0

    captured = capsys.readouterr()

    assert "resnet-viz: warning: input 7x7 leaves layer2" in captured.err
    assert json.loads(captured.out)["warnings"]


def test_cli_cifar_nets_default_to_32(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet56", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert main(["table", "resnet20", "resnet50"]) == 0
    table = capsys.readouterr().out

    assert data["input_size"] == [32, 32]
    assert "*32x32*" in table and "*112x112*" in table


def test_cli_table_names_the_model_that_failed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "resnet18", "resnet5O"]) == 2

    assert capsys.readouterr().err.startswith("resnet-viz: error: 'resnet5O': unknown preset")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("[]", "must be a JSON object of fields, got list"),
        ("resnet50~se-2", "se='2'; that field takes 0 or 1"),
        ("resnet50~n-3.4", "blocks_per_stage"),
    ],
)
def test_cli_model_messages(model: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", model]) == 2

    assert message in capsys.readouterr().err


def test_cli_folder_is_not_a_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "configs.json"
    folder.mkdir()

    assert main(["summary", str(folder)]) == 2

    assert "is a folder; give a configuration JSON file" in capsys.readouterr().err


def test_cli_summary_markdown_ends_with_totals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet18", "--format", "markdown"]) == 0

    out = capsys.readouterr().out

    assert "parameters:  11,689,512" in out and "RF / jump" in out


# -- activations and cam -------------------------------------------------------------------

ASSETS = Path(__file__).parent.parent / "assets"


@pytest.fixture(scope="module")
def resnet20_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A resnet20 checkpoint with the reference recipe's weights, wrapped as Lightning does."""
    from conftest import deterministic_state_dict

    from resnet_viz import build_model

    entries = [[k, list(v.shape)] for k, v in build_model("resnet20", "meta").state_dict().items()]
    path = tmp_path_factory.mktemp("weights") / "resnet20.ckpt"
    torch.save({"state_dict": deterministic_state_dict(entries), "epoch": 3}, path)
    return path


def test_cli_activations_json_statistics(
    resnet20_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["activations", str(ASSETS / "coffee.png"), "--weights", str(resnet20_checkpoint)]

    assert main([*argv, "--layer", "layer2.0.relu (2)", "--top-k", "4", "--format", "json"]) == 0

    captured = capsys.readouterr()
    report = json.loads(captured.out)
    stats = report["channels"]
    assert report["layer"] == "layer2.0.relu (2)" and report["shape"] == [1, 32, 16, 16]
    assert report["input_size"] == [32, 32]  # a CIFAR net's natural size
    assert [s["channel"] for s in stats] == list(range(32))
    means = sorted(range(32), key=lambda c: -stats[c]["mean"])
    assert report["shown_channels"] == means[:4]
    assert all(s["min"] >= 0 and 0 <= s["zero_fraction"] <= 1 for s in stats)  # after a ReLU
    assert report["weights"] == str(resnet20_checkpoint)
    assert "took the weights from the checkpoint's 'state_dict' entry" in captured.err


def test_cli_activations_grid_png_with_random_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grid.png"

    assert (
        main(["activations", str(ASSETS / "chelsea.png"), "--layer", "layer4", "-o", str(out)]) == 0
    )

    captured = capsys.readouterr()
    grid = Image.open(out)
    # The 4 x 4 grid of 96-pixel maps, under a band that says what it shows.
    assert grid.format == "PNG" and grid.width >= 4 * 96 + 5 * 4
    assert 4 * 96 + 5 * 4 + 20 < grid.height < 4 * 96 + 5 * 4 + 80
    assert "random weights (seed 0" in captured.err
    assert captured.out.startswith("layer4 1 x 512 x 7 x 7: channels ")


def test_cli_random_weights_are_the_apps_every_time(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["activations", str(ASSETS / "chelsea.png"), "--layer", "layer3", "--size", "64"]
    shown = []
    for _ in range(2):
        assert main([*argv, "--format", "json"]) == 0
        shown.append(json.loads(capsys.readouterr().out)["shown_channels"])
    # The app's random network: resnet18 drawn from seed 0.
    from resnet_viz.activations import capture, top_channels
    from resnet_viz.images import load_image, prepare

    model = build_model("resnet18", seed=0)
    x = prepare(load_image(ASSETS / "chelsea.png"), "torchvision", 64).tensor
    expected = top_channels(capture(model, x, ["layer3"]).outputs[("layer3", 0)], 16)
    assert shown[0] == shown[1] == expected
    assert main([*argv, "--format", "json", "--seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["shown_channels"] != expected


@pytest.mark.parametrize(
    ("size", "name"), [((360, 240), "landscape.jpg"), ((240, 360), "portrait.JPG")]
)
def test_cli_cam_overlay_at_the_photos_size(
    resnet20_checkpoint: Path,
    tmp_path: Path,
    size: tuple[int, int],
    name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    photo = tmp_path / name
    Image.open(ASSETS / "chelsea.png").resize(size).save(photo, "PNG")  # content wins over name
    out = tmp_path / "cam.png"

    status = main(
        ["cam", str(photo), "--weights", str(resnet20_checkpoint), "--class", "3", "-o", str(out)]
    )

    assert status == 0
    assert Image.open(out).size == size
    assert capsys.readouterr().out.startswith("Grad-CAM of class 3, probability ")


def test_cli_cam_model_with_other_classes_is_adopted(
    resnet20_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["cam", str(ASSETS / "rocket.jpg"), "--weights", str(resnet20_checkpoint)]

    assert main([*argv, "--model", "resnet20~nc-100", "-o", str(tmp_path / "c.png")]) == 0

    assert "note: the checkpoint has 10 classes, not 100; using 10" in capsys.readouterr().err


def test_cli_cam_model_that_differs_is_an_error(
    resnet20_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["cam", str(ASSETS / "rocket.jpg"), "--weights", str(resnet20_checkpoint)]

    assert main([*argv, "--model", "resnet56", "-o", str(tmp_path / "c.png")]) == 2

    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("resnet-viz: error: the checkpoint holds resnet20 (token resnet20)")
    assert not (tmp_path / "c.png").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--layer", "layer3.9"], "no layer named 'layer3.9' in this network; did you mean"),
        (["--layer", "fc"], "fc has no feature map to explain"),
        (["--class", "10"], "class 10 does not exist"),
    ],
)
def test_cli_cam_bad_options_are_one_line(
    resnet20_checkpoint: Path,
    tmp_path: Path,
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["cam", str(ASSETS / "rocket.jpg"), "--weights", str(resnet20_checkpoint)]

    assert main([*argv, *extra, "-o", str(tmp_path / "c.png")]) == 2

    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0]


def test_cli_unknown_layer_says_where_to_find_names(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["activations", str(ASSETS / "rocket.jpg"), "--model", "resnet20", "--layer", "stem"]

    assert main([*argv, "--format", "json"]) == 2

    assert "`resnet-viz summary MODEL` lists every layer's name" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cam", "x.png", "-o", "c.png"], "cam needs trained weights: --weights FILE"),
        (["activations", "x.png", "-o", "g.png"], "the following arguments are required: --layer"),
    ],
)
def test_cli_image_commands_usage(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli_status(argv)

    assert status == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("image", "weights", "message"),
    [
        ("README.md", None, "this file is text"),
        ("rocket.jpg", "chelsea.png", "is not a checkpoint this program reads"),
        ("missing.jpg", None, "image file .*missing.jpg' does not exist"),
    ],
)
def test_cli_bad_files_are_one_line(
    image: str,
    weights: str | None,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["cam", str(ASSETS / image), "--weights", str(ASSETS / (weights or "x.pth"))]
    if weights is None:
        argv = ["activations", str(ASSETS / image), "--model", "resnet20", "--layer", "conv1"]

    assert main([*argv, "-o", str(tmp_path / "out.png")]) == 2

    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("resnet-viz: error: ")
    assert re.search(message, err)


def test_cli_published_weights_come_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import deterministic_state_dict, reference

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(deterministic_state_dict(reference("resnet18")["state_dict"]), cached)
    argv = ["activations", str(ASSETS / "astronaut.png"), "--model", "resnet18"]

    assert main([*argv, "--weights", "IMAGENET1K_V1", "--layer", "conv1", "--format", "json"]) == 0

    assert json.loads(capsys.readouterr().out)["weights"] == str(cached)
    assert main([*argv, "--weights", "IMAGENET1K_V2", "--layer", "conv1", "--format", "json"]) == 2
    assert "publishes no IMAGENET1K_V2 weights for 'resnet18'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def nan_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """resnet20 whose first convolution is NaN: every map and output after it is NaN."""
    state = build_model("resnet20", seed=0).state_dict()
    state["conv1.weight"] = torch.full_like(state["conv1.weight"], float("nan"))
    path = tmp_path_factory.mktemp("weights") / "nan.pth"
    torch.save(state, path)
    return path


def _no_nan_constant(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


def test_cli_activations_json_has_null_for_non_finite_values(
    nan_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["activations", str(ASSETS / "coffee.png"), "--weights", str(nan_checkpoint)]

    assert main([*argv, "--layer", "conv1", "--format", "json"]) == 0

    captured = capsys.readouterr()
    report = json.loads(captured.out, parse_constant=_no_nan_constant)
    assert report["channels"][0]["mean"] is None
    assert "the network output non-finite values (NaN or infinity)" in captured.err


def test_cli_cam_with_non_finite_outputs_is_an_error(
    nan_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["cam", str(ASSETS / "coffee.png"), "--weights", str(nan_checkpoint)]

    assert main([*argv, "-o", str(tmp_path / "cam.png")]) == 2

    err = capsys.readouterr().err.splitlines()[-1]
    assert err == (
        "resnet-viz: error: the network's outputs are not finite (NaN); the weights are broken"
    )
    assert not (tmp_path / "cam.png").exists()


@pytest.mark.parametrize("command", ["activations", "cam"])
def test_cli_png_on_standard_output_carries_nothing_else(
    command: str, resnet20_checkpoint: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    argv = [command, str(ASSETS / "coffee.png"), "--weights", str(resnet20_checkpoint)]
    if command == "activations":
        argv += ["--layer", "conv1"]

    assert main([*argv, "-o", "-"]) == 0

    captured = capsysbinary.readouterr()
    assert captured.out.startswith(b"\x89PNG\r\n\x1a\n") and captured.out.endswith(
        b"IEND\xaeB`\x82"
    )
    assert b"-> -" in captured.err


def test_cli_png_and_json_cannot_share_standard_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["activations", str(ASSETS / "coffee.png"), "--model", "resnet20", "--layer", "conv1"]

    assert main([*argv, "--format", "json", "-o", "-"]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[-1].startswith(
        "resnet-viz: error: standard output can carry the PNG or the JSON, not both"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--channels", "a"], "--channels takes channel numbers separated by commas"),
        (["--channels", "1,,2"], "--channels takes channel numbers separated by commas"),
        (["--channels", "1.5"], "--channels takes channel numbers separated by commas"),
        (["--device", "meta"], "meta holds no values"),
        (["--top-k", "0"], "top-k must be a positive whole number"),
        (["--layer", "layer9"], "no layer named 'layer9'"),
    ],
)
def test_cli_activations_bad_options_are_one_line(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["activations", str(ASSETS / "chelsea.png"), "--layer", "layer1", "--size", "64"]
    status = cli_status([*argv, "--format", "json", *extra])

    assert status == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1  # the random-weights note waits for success


@pytest.mark.parametrize("alpha", ["nan", "-5", "10", "inf"])
def test_cli_cam_alpha_is_a_strength(alpha: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["cam", str(ASSETS / "chelsea.png"), "--weights", "x.pth", "--alpha", alpha])
    assert "is not a strength from 0 to 1" in capsys.readouterr().err


def test_cli_activations_channels_once_each_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["activations", str(ASSETS / "chelsea.png"), "--layer", "layer1", "--size", "64"]
    assert main([*argv, "--format", "json", "--channels", "3,3,1"]) == 0
    assert json.loads(capsys.readouterr().out)["shown_channels"] == [3, 1]
