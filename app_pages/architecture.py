"""Architecture: the block diagram at three levels, the 3D view, Table 1 and every layer."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_pages.diagram_view import diagram_file, diagram_source, draw_diagram
from app_pages.shared import current_analysis, current_config, current_token, load_analysis
from resnet_viz import PRESETS
from resnet_viz.analysis import Analysis, shape_arithmetic
from resnet_viz.diagram import GRAPHVIZ_MISSING, LEVELS, THEMES, graphviz_available
from resnet_viz.paper_table import to_csv, to_latex, to_markdown
from resnet_viz.presets import describe
from resnet_viz.view3d import figure_3d

LEVEL_HELP = {
    "stages": "input, stem, one box per stage with its block and repeat count, head",
    "blocks": "every residual block with its skip connection into an addition",
    "layers": "every conv, norm, activation, pool and addition, grouped by block and stage",
}
NONE = "(none)"


@st.cache_data(show_spinner=False, max_entries=32)
def figure_3d_cached(token: str, level: str, theme: str, collapse: bool) -> go.Figure:
    return figure_3d(load_analysis(token), level=level, theme=theme, collapse=collapse)


def _exact(value: int | None) -> int | str | None:
    return str(value) if value is not None and abs(value) >= 2**53 else value


def layer_rows(analysis: Analysis) -> pd.DataFrame:
    rows = []
    for r in sorted(analysis.records, key=lambda record: record.start_order):
        rows.append(
            {
                "layer": r.name + (f" ({r.call_index + 1})" if r.call_index else ""),
                "type": r.type,
                "output shape": " x ".join(map(str, r.output_shape[1:])),
                "params": r.params,
                "mult-adds": r.mult_adds,
                # Past 2**53 (sixty-odd stride-2 stages) numbers travel as text: the table's
                # columns are 64-bit.
                "receptive field": _exact(r.receptive_field),
                "jump": _exact(r.jump),
                "leaf": r.is_leaf,
            }
        )
    return pd.DataFrame(rows)


def diagram_controls(analysis: Analysis) -> tuple[str, str | None, dict[str, object]]:
    top = st.columns([3, 2, 2, 2])
    level = top[0].segmented_control(
        "Level",
        LEVELS,
        default="blocks",
        key="arch_level",
        bind="query-params",  # a link or a reload keeps the level
        help="\n\n".join(f"**{name}**: {text}" for name, text in LEVEL_HELP.items()),
    )
    level = level or "blocks"
    theme = top[1].selectbox(
        "Theme", list(THEMES), key="arch_theme", help="projector: high contrast, large type"
    )
    direction = top[2].selectbox(
        "Direction",
        ["TB", "LR"],
        key="arch_direction",
        format_func=lambda d: "top to bottom" if d == "TB" else "left to right",
    )
    stages = [r.name for r in analysis.records if r.depth == 1 and r.name.startswith("layer")]
    highlight = top[3].selectbox("Highlight", [NONE, "stem", *stages, "head"], key="arch_hl")
    row = st.columns([2, 2, 3])
    counts = row[0].toggle("Parameters and mult-adds", key="arch_counts")
    comparing = st.session_state.get("arch_compare", NONE) != NONE
    collapse = row[1].toggle(
        "Collapse identical blocks",
        value=True,
        key="arch_collapse",
        disabled=comparing,
        help="a difference draws every block, so that each can be matched by name"
        if comparing
        else "draw each run of three or more identical blocks once, with its count",
    )
    compare = row[2].selectbox(
        "Difference with",
        [NONE, *PRESETS],
        key="arch_compare",
        help="marks blocks and layers present in one network only, and shapes that differ",
    )
    options: dict[str, object] = {
        "level": level,
        "theme": theme,
        "direction": direction,
        "counts": counts,
        "collapse": collapse,
        "highlight": None if highlight == NONE else highlight,
    }
    return level, None if compare == NONE else PRESETS[compare].to_url_token(), options


def diagram_ui(analysis: Analysis) -> None:
    token = current_token()
    level, compare, options = diagram_controls(analysis)
    key = tuple(sorted(options.items()))
    shown = draw_diagram(token, compare, key, retry="try another level")
    if shown is None:
        return

    export = st.columns([1, 1, 4])
    fmt = export[0].selectbox("Export as", ["svg", "png", "pdf", "dot"], key="arch_fmt")
    # The download is what the page shows, the stages level too after a fallback.
    name = f"{token}_{dict(shown)['level']}.{fmt}"
    if fmt == "dot":
        dot = diagram_source(token, compare, shown)
        export[1].download_button("Download", dot, file_name=name, mime="text/vnd.graphviz")
    elif graphviz_available():
        try:
            with st.spinner(f"Preparing the {fmt.upper()}..."):
                data = diagram_file(token, compare, shown, fmt)
        except (RuntimeError, ValueError) as err:
            export[2].warning(f"{fmt.upper()} could not be made: {err}.")
            return
        mime = {"svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf"}[fmt]
        export[1].download_button("Download", data, file_name=name, mime=mime)
    else:
        export[2].info(f"{fmt.upper()} needs Graphviz: {GRAPHVIZ_MISSING}.")


def view_3d_ui() -> None:
    cols = st.columns([2, 2, 3])
    level = cols[0].segmented_control(
        "Boxes for", ["blocks", "layers"], default="blocks", key="v3d_level"
    )
    theme = cols[1].selectbox("Theme ", list(THEMES), key="v3d_theme")
    collapse = cols[2].toggle("Collapse identical blocks", value=True, key="v3d_collapse")
    try:
        figure = figure_3d_cached(current_token(), level or "blocks", theme, collapse)
    except ValueError as err:
        st.warning(str(err))
        return
    st.plotly_chart(figure, width="stretch")
    st.caption(
        "Each box is one output, C deep, H high and W wide, on log scales so that 3x224x224 and "
        "2048x7x7 both read. With boxes for blocks, arcs are skip connections (one for a "
        "collapsed run); dashed ones go through a shortcut layer (a projection, or option A's "
        "zero-padding). "
        "Drag to turn, scroll to zoom."
    )


def table_ui(analysis: Analysis) -> None:
    st.markdown(to_markdown(analysis, titles=["layers"]), unsafe_allow_html=True)
    token = current_token()
    cols = st.columns(3)
    cols[0].download_button("CSV", to_csv([analysis]), f"{token}_table1.csv", "text/csv")
    cols[1].download_button(
        "Markdown", to_markdown(analysis, titles=["layers"]), f"{token}_table1.md"
    )
    cols[2].download_button("LaTeX", to_latex([analysis]), f"{token}_table1.tex", "text/x-tex")


def layers_ui(analysis: Analysis) -> None:
    rows = layer_rows(analysis)
    query = st.text_input("Search layers", key="layer_query", placeholder="layer3.1, Conv2d, ...")
    leaves_only = st.toggle("Leaves only", value=True, key="layer_leaves")
    shown = rows[rows["leaf"]] if leaves_only else rows
    if query:
        needle = query.strip().lower()
        shown = shown[
            shown["layer"].str.lower().str.contains(needle, regex=False)
            | shown["type"].str.lower().str.contains(needle, regex=False)
        ]
    st.dataframe(shown.drop(columns="leaf"), hide_index=True, width="stretch")
    st.caption(f"{len(shown)} of {len(rows)} module calls.")

    windows = [
        r.name
        for r in sorted(analysis.records, key=lambda record: record.start_order)
        if r.is_leaf and shape_arithmetic(r) and r.call_index == 0
    ]
    chosen = st.selectbox("Shape arithmetic of", windows, key="arith_layer")
    if chosen:
        record = analysis.find(chosen)
        st.code("\n".join(shape_arithmetic(record)), language="text")
        # In code spans, so that Markdown leaves the formula's asterisks alone.
        st.caption(
            f"{record.type}: kernel {record.kernel_size}, stride {record.stride}, padding "
            f"{record.padding}, dilation {record.dilation}; output size = "
            "`floor((in + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1`."
        )


st.subheader(describe(current_config()))
analysis = current_analysis()
diagram_tab, view_tab, table_tab, layers_tab = st.tabs(
    ["Block diagram", "3D view", "Table 1", "Layers"]
)
with diagram_tab:
    diagram_ui(analysis)
with view_tab:
    view_3d_ui()
with table_tab:
    table_ui(analysis)
with layers_tab:
    layers_ui(analysis)
