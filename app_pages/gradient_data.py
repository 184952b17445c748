"""The gradient lab's measurements as cached data, for the Gradient lab page and the lecture."""

from __future__ import annotations

import streamlit as st

from resnet_viz import ResNetConfig
from resnet_viz.gradients import gradient_flow, lab_batch, variants
from resnet_viz.model import build_model


@st.cache_data(show_spinner=False, max_entries=32)
def load_flows(
    token: str, batch: int, seed: int
) -> dict[str, tuple[float, list[tuple[str, float]]]]:
    """First/last ratio and per-layer weight-gradient norms of the four variants (cached)."""
    results = {}
    images, labels = lab_batch(ResNetConfig.from_url_token(token), batch, seed)
    for label, config in variants(ResNetConfig.from_url_token(token)).items():
        # The lab's own model, built from the seed: never a shared cached one.
        flow = gradient_flow(build_model(config, seed=seed), images, labels, name=label)
        norms = [(layer.name, layer.weight_grad_norm) for layer in flow.layers]
        results[label] = (flow.first_last_ratio, norms)
    return results
