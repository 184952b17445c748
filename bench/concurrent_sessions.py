"""Time and memory of many app sessions at once on the Activations page's computations.

Each scenario runs in a fresh process, so that its peak resident set is its own: N sessions as
threads, all at once, each doing what the page does for one user through the page's cached
functions (app_pages/activation_data.py): decode a sample photo, prepare it, take the network
(the shared random one, or a network of its own from its own checkpoint), capture the default
layer and compute Grad-CAM. Scenarios: 1 session, and N sessions, with the shared network and
with a checkpoint each. Printed: wall time, peak RSS, and the RSS each extra session costs.

    .venv/bin/python bench/concurrent_sessions.py [--model resnet18] [--sessions 20]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _session(index: int, model: str, own: bool) -> None:
    import torch

    from app_pages.activation_data import (
        Preprocessing,
        cam_for,
        capture_layer,
        checkpoint_network,
        decode_photo,
        digest,
        prepare_input,
        random_network,
    )
    from resnet_viz import build_model
    from resnet_viz.images import sample_images

    samples = sorted(sample_images())
    data = sample_images()[samples[index % len(samples)]].read_bytes()
    sha = digest(data)
    how = Preprocessing("torchvision", 224, None, 3)
    x = prepare_input(sha, how, decode_photo(sha, data)).tensor
    net = random_network(model)
    if own:
        buffer = io.BytesIO()
        torch.save(build_model(model, seed=100 + index).state_dict(), buffer)
        weights = buffer.getvalue()
        net = checkpoint_network(digest(weights), model, f"mine{index}.pth", weights)
    key = f"{sha}:{how.key()}"
    capture_layer(net.key, key, "layer3", net, x)
    cam_for(net.key, key, "layer4", None, net, x)


def _child(model: str, sessions: int, own: bool) -> None:
    """One scenario, in this process; prints its figures as JSON."""
    sys.path.insert(0, str(ROOT))
    import streamlit  # noqa: F401  (imported before the clock starts, as in a running server)

    from app_pages import activation_data
    from resnet_viz.activations import capture  # noqa: F401

    # The page's cache keeps 4 uploaded networks, but 20 sessions computing at once hold 20.
    start = time.perf_counter()
    with ThreadPoolExecutor(sessions) as pool:
        list(pool.map(lambda i: _session(i, model, own), range(sessions)))
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps({"wall": wall, "peak": peak, "runs": dict(activation_data.RUNS)}))


def _run(model: str, sessions: int, own: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", "--model", model, "--sessions", str(sessions)]
    if own:
        command.append("--own")
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--own", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.model, args.sessions, args.own)
        return

    n = args.sessions
    one = _run(args.model, 1, own=False)
    shared = _run(args.model, n, own=False)
    one_own = _run(args.model, 1, own=True)
    own = _run(args.model, n, own=True)
    mb = 2**20
    print(f"{args.model}, 224x224, capture of layer3 + Grad-CAM at layer4 per session")
    for label, figures in (
        ("1 session, shared random network", one),
        (f"{n} sessions, shared random network", shared),
        ("1 session, own checkpoint", one_own),
        (f"{n} sessions, own checkpoint each", own),
    ):
        print(
            f"  {label:42s} wall {figures['wall']:6.2f} s   peak RSS {figures['peak'] / mb:7.0f} MB"
        )
    per_shared = (shared["peak"] - one["peak"]) / (n - 1) / mb
    per_own = (own["peak"] - one_own["peak"]) / (n - 1) / mb
    print(f"  RSS per extra session: shared network {per_shared:.1f} MB, own {per_own:.1f} MB")


if __name__ == "__main__":
    main()
