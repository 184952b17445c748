"""`resnet-viz diagram`: files written whole, formats by name, errors as one line."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import needs_graphviz

from resnet_viz import analyze
from resnet_viz.cli import main
from resnet_viz.diagram import diagram


def test_dot_on_stdout_is_the_library_diagram(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", "resnet50", "--level", "layers", "--format", "dot"]) == 0
    expected = diagram(analyze("resnet50"), "layers").source
    assert capsys.readouterr().out == expected


def test_options_reach_the_diagram(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["diagram", "resnet56", "--format", "dot", "--theme", "projector", "--direction", "LR"]
    assert main([*argv, "--counts", "--no-collapse", "--highlight", "layer2"]) == 0
    out = capsys.readouterr().out
    expected = diagram(
        analyze("resnet56"),
        "blocks",
        theme="projector",
        direction="LR",
        counts=True,
        collapse=False,
        highlight="layer2",
    ).source
    assert out == expected
    assert "layer3.8" in out  # nothing collapsed


@needs_graphviz
@pytest.mark.parametrize(
    ("name", "magic"),
    [
        ("net.svg", b"<?xml"),
        ("net.png", b"\x89PNG"),
        ("net.pdf", b"%PDF-"),
        ("net.dot", b"digraph"),
    ],
)
def test_format_follows_the_file_name(tmp_path: Path, name: str, magic: bytes) -> None:
    out = tmp_path / name
    assert main(["diagram", "resnet18", "--level", "stages", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(magic)
    assert not list(tmp_path.glob("*.partial"))


@needs_graphviz
def test_svg_of_the_resnet152_layers(tmp_path: Path) -> None:
    out = tmp_path / "r152.svg"
    assert main(["diagram", "resnet152", "--level", "layers", "-o", str(out)]) == 0
    titles = [t.text for t in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}title")]
    assert "layer3.0.downsample.0#0" in titles and "layer3.1.conv2#0" in titles
    assert "layer3.7.conv2#0" not in titles  # layer3.1 - layer3.35 drawn once


def test_comparison_names_both_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", "resnet18", "--compare", "resnet34", "--format", "dot"]) == 0
    out = capsys.readouterr().out
    assert "resnet18 vs resnet34" in out and "only in resnet34" in out


def test_3d_view_is_a_self_contained_page(tmp_path: Path) -> None:
    out = tmp_path / "net.html"
    assert main(["diagram", "resnet20", "--3d", "-o", str(out)]) == 0
    page = out.read_text()
    assert page.startswith("<!doctype html>") and "plotly" in page and "layer3.0" in page
    assert '<script src="http' not in page  # works offline, in a lecture hall without network


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--level", "block"], "invalid choice: 'block'"),
        (["--highlight", "layer7"], "nothing named 'layer7'"),
        (["--3d", "-o", "x.svg"], "the 3D view is an interactive HTML page"),
        (["--format", "html"], "HTML is for the 3D view"),
        (["-o", "/no/such/folder/x.svg"], "the folder /no/such/folder does not exist"),
    ],
)
def test_errors_are_one_line_and_leave_files_alone(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep = tmp_path / "keep.svg"
    keep.write_text("the user's own file")
    if "-o" not in argv:
        argv = [*argv, "-o", str(keep)]
    try:
        status = main(["diagram", "resnet18", *argv])
    except SystemExit as stop:  # argparse's own errors
        status = int(stop.code or 0)
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert keep.read_text() == "the user's own file"


def test_without_graphviz_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "net.svg"
    assert main(["diagram", "resnet18", "-o", str(out)]) == 1
    assert "apt-get install graphviz" in capsys.readouterr().err
    assert not out.exists()
    assert main(["diagram", "resnet18", "-o", str(tmp_path / "net.dot")]) == 0
