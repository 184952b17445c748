"""Architecture: the block diagram at three levels, the 3D view, Table 1 and every layer."""

from __future__ import annotations

import json
import re

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_pages.shared import current_analysis, current_config, current_token, load_analysis
from resnet_viz import PRESETS
from resnet_viz.analysis import Analysis, shape_arithmetic
from resnet_viz.diagram import (
    FALLBACK_TIMEOUT,
    GRAPHVIZ_MISSING,
    LEVELS,
    THEMES,
    LayoutTimeout,
    diagram,
    diff_diagram,
    graphviz_available,
    render,
)
from resnet_viz.paper_table import to_csv, to_latex, to_markdown
from resnet_viz.presets import describe
from resnet_viz.view3d import figure_3d

LEVEL_HELP = {
    "stages": "input, stem, one box per stage with its block and repeat count, head",
    "blocks": "every residual block with its skip connection into an addition",
    "layers": "every conv, norm, activation, pool and addition, grouped by block and stage",
}
NONE = "(none)"
# Seconds Graphviz may spend on a layout in the page before the stages level stands in.
LAYOUT_LIMIT = 5.0
# Taller diagrams scroll inside their panel.
MAX_PANEL_HEIGHT = 1100
# About the width of the page's main column on a 1400-pixel screen, in the wide layout.
PANEL_WIDTH = 1100


@st.cache_data(show_spinner=False, max_entries=128)
def diagram_source(token: str, compare: str | None, options: tuple[tuple[str, object], ...]) -> str:
    """The DOT text; `options` are sorted (name, value) pairs, so that they can be a cache key."""
    kwargs = dict(options)
    level = str(kwargs.pop("level"))
    analysis = load_analysis(token)
    if compare is None:
        return diagram(analysis, level, **kwargs).source  # type: ignore[arg-type]
    kwargs.pop("collapse")  # a difference draws every block, to match them by name
    return diff_diagram(
        analysis,
        load_analysis(compare),
        level,
        names=(token, compare),
        **kwargs,  # type: ignore[arg-type]
    ).source


@st.cache_data(show_spinner=False, max_entries=128)
def diagram_file(
    token: str, compare: str | None, options: tuple[tuple[str, object], ...], fmt: str
) -> bytes:
    """SVG, PNG or PDF of exactly these options, under the page's time limit.

    A layout that runs out of time raises, and an exception is never cached: one slow moment
    on a busy server must not leave the stages level standing in for good.
    """
    stages = dict(options)["level"] == "stages"
    limit = max(LAYOUT_LIMIT, FALLBACK_TIMEOUT) if stages else LAYOUT_LIMIT
    return render(diagram_source(token, compare, options), fmt, timeout=limit)


def laid_out(
    token: str, compare: str | None, options: tuple[tuple[str, object], ...], fmt: str
) -> tuple[bytes, tuple[tuple[str, object], ...], str | None]:
    """The picture, the options it was drawn with, and a notice if the stages level stood in."""
    try:
        return diagram_file(token, compare, options, fmt), options, None
    except LayoutTimeout:
        level = dict(options)["level"]
        if level == "stages":
            raise
    stages = tuple(sorted({**dict(options), "level": "stages"}.items()))
    notice = (
        f"The {level}-level diagram took Graphviz longer than {LAYOUT_LIMIT:g} s, so the stages "
        "level is shown instead (and offered for download)."
    )
    return diagram_file(token, compare, stages, fmt), stages, notice


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


def show_svg(
    svg: str,
    panel_width: int = PANEL_WIDTH,
    max_height: int = MAX_PANEL_HEIGHT,
    focus: str | None = None,
    fit: bool = False,
) -> None:
    """The SVG at its own size (labels readable at 100%), in a panel that scrolls.

    A frame rather than Markdown: Streamlit's Markdown and st.html sanitise SVG away, and the
    frame keeps Graphviz's tooltips, which name every layer on hover.

    Args:
        svg: Graphviz's SVG.
        panel_width: About the width of the column it goes in, in pixels.
        max_height: The panel's height past which it scrolls.
        focus: A highlight colour ("#D55E00"): the panel scrolls to the first node or cluster
            outlined in it (the Lecture page's current part).
        fit: Shrink the diagram to fit `max_height` too, so that all of it shows at once.
    """
    found = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    height = 800
    style = "svg {max-width: 100%; height: auto;}"
    if found:
        width_px, height_px = (float(found.group(i)) * 4 / 3 for i in (1, 2))
        # A diagram wider than the panel is shrunk to fit (left to right, or a difference
        # with its key), so that nothing is cut off at the right.
        scale = min(1.0, panel_width / width_px)
        if fit:
            scale = min(scale, (max_height - 24) / height_px)
            # The viewBox keeps the proportions if the column is narrower than planned.
            style = f"svg {{width: {width_px * scale:.0f}px; height: {height_px * scale:.0f}px;}}"
        height = int(height_px * scale) + 24
    page = (
        f"<html><head><style>{style}</style></head>"
        "<body style='margin:0'><div style='overflow:auto; text-align:center'>"
        f"{svg[svg.find('<svg') :]}</div>{_focus_script(focus) if focus else ''}</body></html>"
    )
    # Safe in a frame: the SVG is Graphviz's own output, which escapes the text it carries.
    st.iframe(page, height=min(height, max_height))


def _focus_script(colour: str) -> str:
    """Scrolls the frame (only the frame: scrollIntoView would move the app too) to the part
    outlined in `colour`, centred, or to its top when it is taller than the frame."""
    return (
        "<script>(() => {"
        f"const colour = {json.dumps(colour.lower())};"
        "const lit = [...document.querySelectorAll('g.node, g.cluster')].find(g => "
        "[...g.querySelectorAll('path, polygon, ellipse')].some(s => "
        "(s.getAttribute('stroke') || '').toLowerCase() === colour));"
        "if (!lit) return;"
        "const box = lit.getBoundingClientRect();"
        "const margin = Math.max(0, (window.innerHeight - box.height) / 2);"
        "window.scrollTo(0, window.scrollY + box.top - margin);"
        "})();</script>"
    )


def diagram_controls(analysis: Analysis) -> tuple[str, str | None, dict[str, object]]:
    top = st.columns([3, 2, 2, 2])
    level = top[0].segmented_control(
        "Level",
        LEVELS,
        default="blocks",
        key="arch_level",
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
    try:
        source = diagram_source(token, compare, key)
    except ValueError as err:
        st.error(str(err))
        return

    shown = key
    if graphviz_available():
        try:
            with st.spinner("Laying out the diagram..."):
                svg, shown, notice = laid_out(token, compare, key, "svg")
        except (RuntimeError, ValueError) as err:  # LayoutTimeout is a RuntimeError
            st.error(f"{err}. Graphviz did not produce this diagram; try another level.")
            return
        if notice:
            st.info(notice)
        show_svg(svg.decode())
    else:
        st.caption(f"Drawn by your browser. {GRAPHVIZ_MISSING[0].upper()}{GRAPHVIZ_MISSING[1:]}.")
        st.graphviz_chart(source, width="stretch")

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


# The page itself; a page runs as __main__, so that the Lecture page can import the helpers
# above without drawing this page.
if __name__ == "__main__":
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
