"""The ONNX export: a real file that ONNX's checker accepts and ONNX Runtime runs like PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from resnet_viz import PRESETS, ResNetConfig, build_model
from resnet_viz.export import ONNX_LIMIT_BYTES, check_onnx_size, export_onnx, onnx_weight_bytes


def _dims(value: onnx.ValueInfoProto) -> list[object]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_onnx_export_is_valid_and_computes_what_pytorch_computes() -> None:
    ort = pytest.importorskip("onnxruntime")
    config = PRESETS["resnet20"].replace(num_classes=7, se=True)

    data = export_onnx(config, seed=3)

    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    assert [(v.name, _dims(v)) for v in model.graph.input] == [("image", ["batch", 3, 32, 32])]
    assert [(v.name, _dims(v)) for v in model.graph.output] == [("logits", ["batch", 7])]
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = build_model(config, seed=3)(x).numpy()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"image": x.numpy()})
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_onnx_weight_bytes_and_the_2_gib_refusal() -> None:
    # resnet18: 11,689,512 parameters and 9,600 running statistics, 4 bytes each.
    assert onnx_weight_bytes(PRESETS["resnet18"]) == 4 * (11_689_512 + 9_600)
    wide = ResNetConfig(
        block="bottleneck", blocks_per_stage=(3, 4, 6, 3), widths=(64, 128, 256, 4096)
    )
    assert onnx_weight_bytes(wide) > ONNX_LIMIT_BYTES
    with pytest.raises(ValueError, match="protobuf's 2 GiB limit"):
        check_onnx_size(wide)
