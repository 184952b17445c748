"""resnet-viz in the browser: `streamlit run app.py`.

The sidebar picks the network (kept in the link, so a bookmark reopens it); the pages show it:
Build (headline figures, stages, configuration), Architecture (block diagrams at three
levels, a 3D view, Table 1 and every layer) and Activations (what each stage does to a photo).
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
    st.Page("app_pages/activations.py", title="Activations"),
    st.Page("app_pages/gradients.py", title="Gradient lab"),
]
page = st.navigation(pages)
st.sidebar.title("resnet-viz")
choose_model()
page.run()
