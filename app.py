"""resnet-viz in the browser: `streamlit run app.py`.

The sidebar picks the network (kept in the link, so a bookmark reopens it); the pages show it:
Build (headline figures and an editor of every setting), Architecture (block diagrams at
three levels, a 3D view, Table 1 and every layer), Parameters & compute (where the parameters,
mult-adds and memory go), Activations (what each stage does to a photo), Compare (two to four
networks side by side), Gradient lab (plain versus residual: gradients at initialisation and
a training race) and Lecture (a presenter view: one part of the network per step, in large
type).
The pages live in app_pages/.
"""

from __future__ import annotations

import logging

import streamlit as st

from app_pages.shared import choose_model
from resnet_viz.devices import keep_freed_memory

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


@st.cache_resource
def _allocator() -> bool:
    # Once per server: captured activations then reuse warm memory (see keep_freed_memory).
    return keep_freed_memory()


_allocator()
st.set_page_config(page_title="resnet-viz", layout="wide")
pages = [
    st.Page("app_pages/build.py", title="Build", default=True),
    st.Page("app_pages/architecture.py", title="Architecture"),
    st.Page("app_pages/compute.py", title="Parameters & compute"),
    st.Page("app_pages/activations.py", title="Activations"),
    st.Page("app_pages/compare.py", title="Compare"),
    st.Page("app_pages/gradients.py", title="Gradient lab"),
    st.Page("app_pages/lecture.py", title="Lecture"),
]
page = st.navigation(pages)
st.sidebar.title("resnet-viz")
choose_model()
page.run()
