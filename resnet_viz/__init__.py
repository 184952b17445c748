"""resnet-viz: build any ResNet variant from one faithful implementation and look inside it."""

from resnet_viz.analysis import analyze
from resnet_viz.config import ResNetConfig
from resnet_viz.devices import available_devices
from resnet_viz.model import ResNet, build_model, count_parameters
from resnet_viz.presets import FAMILIES, PRESETS, get_preset

__all__ = [
    "FAMILIES",
    "PRESETS",
    "ResNet",
    "ResNetConfig",
    "analyze",
    "available_devices",
    "build_model",
    "count_parameters",
    "get_preset",
]

__version__ = "0.1.0"
