"""`resnet-viz diagram`: files written whole, formats by name, errors as one line."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import cli_status, needs_graphviz

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
        (["--format", "html", "-o", "x.html"], "HTML is for the 3D view"),
        (["-o", "/no/such/folder/x.svg"], "the folder /no/such/folder does not exist"),
        (["-o", "x.jpeg"], "cannot tell a format from .jpeg"),
        (["--format", "svg", "-o", "x.png"], "--format svg would write SVG into a .png file"),
        (["-o", "x.html"], "HTML is for the 3D view"),
        (["--timeout", "inf"], "'inf' is not a number of seconds above 0"),
        (["--timeout", "nan"], "'nan' is not a number of seconds above 0"),
        (["--timeout", "-1"], "'-1' is not a number of seconds above 0"),
        (["--3d", "--level", "stages", "-o", "x.html"], "--level blocks or layers"),
        (["--3d", "--compare", "resnet34", "-o", "x.html"], "--compare is for diagrams"),
    ],
)
def test_errors_are_one_line_and_leave_files_alone(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep = tmp_path / "keep.svg"
    keep.write_text("the user's own file")
    if "-o" not in argv:
        argv = [*argv, "-o", str(keep)]
    status = cli_status(["diagram", "resnet18", *argv])
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


def test_output_into_a_folder_or_nowhere_is_one_line_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for target in (str(tmp_path), ""):
        assert main(["diagram", "resnet18", "--format", "dot", "-o", target]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_output_through_a_link_keeps_the_link(tmp_path: Path) -> None:
    target = tmp_path / "real.dot"
    target.write_text("old")
    link = tmp_path / "link.dot"
    link.symlink_to(target)
    assert main(["diagram", "resnet18", "--level", "stages", "-o", str(link)]) == 0
    assert link.is_symlink() and target.read_text().startswith("digraph")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.dot", "real.dot"]


def test_output_to_a_device_writes_into_it() -> None:
    assert (
        main(["diagram", "resnet18", "--level", "stages", "--format", "dot", "-o", "/dev/null"])
        == 0
    )
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_output_to_a_full_device_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    argv = ["diagram", "resnet18", "--level", "stages", "--format", "dot", "-o", "/dev/full"]
    assert main(argv) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_two_writers_of_one_file_do_not_collide(tmp_path: Path) -> None:
    out = tmp_path / "same.dot"
    argv = [sys.executable, "-m", "resnet_viz.cli", "diagram", "resnet18", "--level", "stages"]
    runs = [subprocess.Popen([*argv, "-o", str(out)]) for _ in range(3)]
    assert [run.wait(timeout=120) for run in runs] == [0, 0, 0]
    assert out.read_text().startswith("digraph") and [p.name for p in tmp_path.iterdir()] == [
        "same.dot"
    ]


def test_3d_layers_level(tmp_path: Path) -> None:
    out = tmp_path / "layers.html"
    assert main(["diagram", "resnet20", "--3d", "--level", "layers", "-o", str(out)]) == 0
    assert "layer3.0.conv2" in out.read_text()
