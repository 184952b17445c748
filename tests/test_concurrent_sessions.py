"""Twenty sessions at once, as a class would use the Activations page.

Each session is a thread that does what the page does for one user, through the page's own
cached functions (app_pages/activation_data.py), all at the same time on the same caches:
twelve look at a photo through the shared random network, eight bring their own checkpoint
of the same architecture. Each must get exactly what the library computes for its own photo
and weights alone, and the shared network must come out untouched and never copied.

NOTE: the sessions are threads calling the page's functions, not AppTest instances: AppTest
installs a process-wide mock of Streamlit's runtime for each run and removes it at the end, so
two AppTests running at once in one process break each other ("Runtime hasn't been created").
bench/concurrent_sessions.py measures the same scenario's time and memory.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import streamlit as st
import torch

from app_pages.activation_data import (
    RANDOM_SEED,
    Network,
    Preprocessing,
    cam_for,
    capture_layer,
    checkpoint_network,
    decode_photo,
    digest,
    plan_checkpoint,
    prepare_input,
    random_network,
)
from resnet_viz import build_model
from resnet_viz.activations import capture, grad_cam
from resnet_viz.images import load_image, prepare, sample_images

NETWORK = "resnet20"
LAYER = "layer3.2.relu (2)"
SAMPLES = ["chelsea", "coffee", "astronaut", "rocket"]
SESSIONS = 20
OWN_CHECKPOINT = range(12, 20)  # these sessions bring their own weights
HOW = Preprocessing("torchvision", 32, None, 3)


def _checkpoint(seed: int) -> bytes:
    buffer = io.BytesIO()
    torch.save(build_model(NETWORK, seed=seed).state_dict(), buffer)
    return buffer.getvalue()


@dataclass
class Seen:
    """What one session was shown: maps, logits and Grad-CAM (which hooks and differentiates)."""

    maps: torch.Tensor
    logits: torch.Tensor
    cam: torch.Tensor
    weights: str


def _session(index: int) -> Seen:
    """One user's requests, in the page's order, through the page's cached functions."""
    data = sample_images()[SAMPLES[index % len(SAMPLES)]].read_bytes()
    sha = digest(data)
    x = prepare_input(sha, HOW, decode_photo(sha, data)).tensor
    net: Network = random_network(NETWORK)
    if index in OWN_CHECKPOINT:
        weights = _checkpoint(seed=100 + index)
        plan = plan_checkpoint(digest(weights), NETWORK, weights)
        assert plan.error is None and plan.token == NETWORK
        net = checkpoint_network(digest(weights), NETWORK, f"mine{index}.pth", weights)
    input_key = f"{sha}:{HOW.key()}"
    maps, logits = capture_layer(net.key, input_key, LAYER, net, x)
    cam = cam_for(net.key, input_key, "layer3", None, net, x)
    return Seen(maps, logits, cam.cam, net.label)


def _alone(index: int) -> Seen:
    """The same requests by the library alone, on a network of the session's own."""
    own = index in OWN_CHECKPOINT
    return _computed_alone(SAMPLES[index % len(SAMPLES)], 100 + index if own else RANDOM_SEED)


@cache
def _computed_alone(sample: str, seed: int) -> Seen:
    x = prepare(load_image(sample_images()[sample]), "torchvision", 32)
    model = build_model(NETWORK, seed=seed)
    result = capture(model, x.tensor, [LAYER])
    label = "random initialisation" if seed == RANDOM_SEED else f"mine{seed - 100}.pth"
    return Seen(
        result.outputs[("layer3.2.relu", 1)][0],
        result.logits[0],
        grad_cam(model, x.tensor, "layer3").cam,
        label,
    )


def test_twenty_sessions_get_their_own_results_and_share_one_model() -> None:
    st.cache_data.clear()  # every pass really runs, concurrently, on the shared model
    st.cache_resource.clear()
    shared = random_network(NETWORK)
    before = {k: v.clone() for k, v in shared.model.state_dict().items()}

    with ThreadPoolExecutor(SESSIONS) as pool:
        seen = list(pool.map(_session, range(SESSIONS)))

    for index, got in enumerate(seen):
        alone = _alone(index)
        assert got.weights == alone.weights, index
        assert torch.equal(got.maps, alone.maps), index
        assert torch.equal(got.logits, alone.logits), index
        assert torch.equal(got.cam, alone.cam), index
    # Different photos and weights gave different results, so equality above means something.
    assert len({tuple(s.logits.tolist()) for s in seen}) == len(SAMPLES) + len(OWN_CHECKPOINT)

    # One shared model for everyone, never copied, changed or left with a hook.
    after = random_network(NETWORK)
    assert after is shared
    assert all(torch.equal(before[k], v) for k, v in after.model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in after.model.modules())
    assert not after.model.training and after.model.weights_source is None
