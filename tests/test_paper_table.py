"""Table 1 of the paper, for any configuration."""

from __future__ import annotations

import csv
import io

import pytest

from resnet_viz import PRESETS
from resnet_viz.analysis import analyze
from resnet_viz.paper_table import Bracket, human, table_rows, to_csv, to_latex, to_markdown

# He et al. 2015, Table 1: the bracket of each stage, as the paper prints it.
PAPER = {
    "resnet18": [
        "[3x3, 64; 3x3, 64] x 2",
        "[3x3, 128; 3x3, 128] x 2",
        "[3x3, 256; 3x3, 256] x 2",
        "[3x3, 512; 3x3, 512] x 2",
    ],
    "resnet34": [
        "[3x3, 64; 3x3, 64] x 3",
        "[3x3, 128; 3x3, 128] x 4",
        "[3x3, 256; 3x3, 256] x 6",
        "[3x3, 512; 3x3, 512] x 3",
    ],
    "resnet50": [
        "[1x1, 64; 3x3, 64; 1x1, 256] x 3",
        "[1x1, 128; 3x3, 128; 1x1, 512] x 4",
        "[1x1, 256; 3x3, 256; 1x1, 1024] x 6",
        "[1x1, 512; 3x3, 512; 1x1, 2048] x 3",
    ],
    "resnet101": [
        "[1x1, 64; 3x3, 64; 1x1, 256] x 3",
        "[1x1, 128; 3x3, 128; 1x1, 512] x 4",
        "[1x1, 256; 3x3, 256; 1x1, 1024] x 23",
        "[1x1, 512; 3x3, 512; 1x1, 2048] x 3",
    ],
    "resnet152": [
        "[1x1, 64; 3x3, 64; 1x1, 256] x 3",
        "[1x1, 128; 3x3, 128; 1x1, 512] x 8",
        "[1x1, 256; 3x3, 256; 1x1, 1024] x 36",
        "[1x1, 512; 3x3, 512; 1x1, 2048] x 3",
    ],
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_table_reads_like_the_paper(name: str) -> None:
    rows = table_rows(analyze(name))

    assert [row.name for row in rows] == [
        "conv1",
        "conv2_x",
        "conv3_x",
        "conv4_x",
        "conv5_x",
        "head",
    ]
    assert [row.output_size for row in rows] == ["112x112", "56x56", "28x28", "14x14", "7x7", "1x1"]
    assert rows[0].layers == ("7x7, 64, stride 2",)
    assert rows[1].layers[0] == "3x3 max pool, stride 2"
    assert [str(row.layers[-1]) for row in rows[1:5]] == PAPER[name]
    assert rows[-1].layers == ("average pool", "1000-d fc", "softmax")


@pytest.mark.parametrize(
    "name",
    ["resnet50", "resnext50_32x4d", "seresnet50", "resnet56", "preact_resnet164", "resnet10t"],
)
def test_paper_table_rows_add_up_to_totals(name: str) -> None:
    size = 32 if PRESETS[name].stem == "cifar" else 224
    analysis = analyze(name, input_size=size)

    rows = table_rows(analysis)

    assert sum(row.params for row in rows) == analysis.total_params
    assert sum(row.mult_adds for row in rows) == analysis.mult_adds


def test_paper_table_variants() -> None:
    resnext = table_rows(analyze("seresnext50_32x4d"))
    deep = table_rows(analyze("resnet50d"))
    cifar = table_rows(analyze("resnet56", input_size=32))
    preact = table_rows(analyze("preact_resnet164", input_size=32))

    assert resnext[1].layers[-1] == Bracket(
        ("1x1, 128", "3x3, 128, C=32", "1x1, 256", "SE fc, [16, 256]"), 3
    )
    assert deep[0].layers == ("3x3, 32, stride 2", "3x3, 32", "3x3, 64")
    assert [row.output_size for row in cifar] == ["32x32", "32x32", "16x16", "8x8", "1x1"]
    assert cifar[1].layers == (Bracket(("3x3, 16", "3x3, 16"), 9),)
    assert preact[-1].layers[0] == "BN, ReLU"


def test_paper_table_markdown_side_by_side() -> None:
    text = to_markdown([analyze("resnet18"), analyze("resnet50")])

    lines = text.splitlines()
    assert lines[0] == "| layer name | output size | resnet18 | resnet50 |"
    assert (
        "| conv4_x | 14x14 | [3x3, 256; 3x3, 256] x 2 | [1x1, 256; 3x3, 256; 1x1, 1024] x 6 |"
        in lines
    )
    assert lines[-2] == "| params |  | 11.7M | 25.6M |"
    assert lines[-1] == "| mult-adds |  | 1.81G | 4.09G |"


def test_paper_table_markdown_sizes_differ_per_model() -> None:
    text = to_markdown([analyze("resnet18"), analyze("resnet20", input_size=32)])

    assert "output size" not in text.splitlines()[0]
    assert "*32x32*" in text and "*112x112*" in text


def test_paper_table_latex_is_booktabs() -> None:
    text = to_latex(analyze("resnet50"))

    assert text.count(r"\toprule") == text.count(r"\bottomrule") == 1
    assert r"\begin{tabular}{lcc}" in text
    assert (
        r"\left[\begin{array}{c}\text{1$\times$1, 64} \\ \text{3$\times$3, 64} \\ "
        r"\text{1$\times$1, 256}\end{array}\right]\times3" in text
    )
    assert "conv2\\_x" in text
    # Every row of the table has the same number of cells.
    body = [line for line in text.splitlines() if line.endswith(r"\\") and "&" in line]
    assert len(body) == 1 + 6 + 2
    assert all(line.count(" & ") == 2 for line in body)


def test_paper_table_csv_has_exact_counts() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(analyze("resnet18")))))

    assert [row["layer name"] for row in rows][-1] == "head"
    assert sum(int(row["params"]) for row in rows) == 11_689_512
    assert sum(int(row["mult_adds"]) for row in rows) == 1_814_083_944
    assert rows[0]["model"] == "resnet18"


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (999, "999"),
        (9408, "9.41K"),
        (118_013_952, "118M"),
        (1_814_083_944, "1.81G"),
        (11_513_779_048, "11.5G"),
    ],
)
def test_paper_table_human_numbers(count: int, text: str) -> None:
    assert human(count) == text


def test_paper_table_brackets_show_no_stride_but_show_dilation() -> None:
    one_block = table_rows(analyze("resnet10t"))
    dilated = table_rows(analyze(PRESETS["resnet50"].replace(dilated_stages=(3, 4))))

    assert one_block[3].layers == (Bracket(("3x3, 256", "3x3, 256"), 1),)
    assert dilated[3].layers[-1].lines[1] == "3x3, 256, dilation 2"
    assert dilated[4].layers[-1].lines[1] == "3x3, 512, dilation 4"
    assert dilated[4].output_size == "28x28"
