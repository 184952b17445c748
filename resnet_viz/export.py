"""The network as an ONNX file, to open in Netron or run with ONNX Runtime.

Uses PyTorch's TorchScript-based exporter (`dynamo=False`): on this project's networks it was
faster than the torch.export-based one (resnet152 on this shared 2-core machine: 30 s against
47 s in one run, 62 s against 112 s in a busier one) and writes the same operators. It needs
the `onnx` package, a dependency of this project.
LIMITATION: PyTorch has deprecated that exporter; when it is removed, switch to `dynamo=True`,
which needs `onnxscript` as well.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import torch

from resnet_viz.analysis import natural_input_size, parse_input_size
from resnet_viz.config import ResNetConfig
from resnet_viz.model import build_model

logger = logging.getLogger(__name__)

# A single ONNX file is one protobuf message, which cannot exceed 2 GiB. The graph itself
# (node names, shapes) needs room beside the weights, so refuse a little before the limit.
ONNX_LIMIT_BYTES = 2**31
_GRAPH_ROOM_BYTES = 64 * 2**20
OPSET = 17


def onnx_weight_bytes(config: ResNetConfig) -> int:
    """Bytes of float32 weights and buffers the file would hold, counted on `meta`."""
    skeleton = build_model(config, device="meta")
    return sum(t.numel() * 4 for t in skeleton.state_dict().values() if t.is_floating_point())


def check_onnx_size(config: ResNetConfig) -> int:
    """The weight bytes, or ValueError when they would not fit in one ONNX file."""
    needed = onnx_weight_bytes(config)
    if needed > ONNX_LIMIT_BYTES - _GRAPH_ROOM_BYTES:
        raise ValueError(
            f"this network has {needed / 2**30:.2f} GiB of float32 weights, more than one ONNX "
            "file can hold (protobuf's 2 GiB limit); export a narrower or shallower network, "
            "or save it from Python with torch.onnx.export(..., external_data=True)"
        )
    return needed


def export_onnx(config: ResNetConfig, input_size: object = None, seed: int = 0) -> bytes:
    """The network with its random initialisation (from `seed`) as ONNX bytes, in eval mode.

    The input is named "image" (batch x in_channels x height x width, the batch dynamic) and
    the output "logits". `input_size` is the size traced, 224x224 (32x32 for CIFAR) by default;
    the network itself accepts other sizes, but ONNX records the traced one.
    """
    check_onnx_size(config)
    height, width = parse_input_size(
        natural_input_size(config) if input_size is None else input_size
    )
    model = build_model(config, seed=seed).eval()
    example = torch.zeros(1, config.in_channels, height, width)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        # The exporter's deprecation and tracer notes are about PyTorch, not about this network.
        warnings.simplefilter("ignore")
        path = Path(folder) / "model.onnx"
        torch.onnx.export(
            model,
            (example,),
            path,
            dynamo=False,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
        )
        data = path.read_bytes()
    logger.info("exported %d bytes of ONNX", len(data))
    return data
