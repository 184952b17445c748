"""Drawing a block diagram in a page: Graphviz's layout under a time limit, cached, and the SVG
shown at its own size. Shared by the Architecture and Compare pages; no widgets here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import streamlit as st

from app_pages.shared import load_analysis
from resnet_viz.diagram import (
    FALLBACK_TIMEOUT,
    GRAPHVIZ_MISSING,
    LayoutTimeout,
    diagram,
    diff_diagram,
    graphviz_available,
    render,
)

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


def draw_diagram(
    token: str,
    compare: str | None,
    options: tuple[tuple[str, object], ...],
    retry: str = "try the stages level",
    **frame: Any,
) -> tuple[tuple[str, object], ...] | None:
    """The diagram in the page: Graphviz's SVG in a frame (`frame` goes to `show_svg`), or the
    browser's own layout of the DOT text without Graphviz. Failures are messages in the page.

    Returns:
        The options of what is shown (the stages level after a fallback), or None if nothing is.
    """
    try:
        source = diagram_source(token, compare, options)
    except ValueError as err:
        st.error(str(err))
        return None
    if not graphviz_available():
        st.caption(f"Drawn by your browser. {GRAPHVIZ_MISSING[0].upper()}{GRAPHVIZ_MISSING[1:]}.")
        st.graphviz_chart(source, width="stretch")
        return options
    try:
        with st.spinner("Laying out the diagram..."):
            svg, shown, notice = laid_out(token, compare, options, "svg")
    except (RuntimeError, ValueError) as err:  # LayoutTimeout is a RuntimeError
        st.error(f"{err}. Graphviz did not produce this diagram; {retry}.")
        return None
    if notice:
        st.info(notice)
    show_svg(svg.decode(), **frame)
    return shown


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
