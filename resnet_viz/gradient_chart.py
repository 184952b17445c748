"""The gradient lab's chart as a PNG, drawn with Pillow so the command line needs no browser.

Plotly draws the same chart in the app, but writing a PNG from plotly needs Kaleido and a
Chromium; Pillow is already a dependency and works anywhere, offline.
"""

from __future__ import annotations

import math

from PIL import Image, ImageDraw, ImageFont

from resnet_viz.gradients import GradientFlow
from resnet_viz.rendering import png_bytes

# Colour-blind-safe pairs (Okabe-Ito): residual nets blue/sky, plain nets vermillion/orange.
SERIES_COLOURS = ((0, 114, 178), (213, 94, 0), (86, 180, 233), (230, 159, 0))
_WIDTH, _HEIGHT = 1000, 560
_LEFT, _RIGHT, _TOP, _BOTTOM = 80, 24, 64, 110


def _decades(values: list[float]) -> tuple[int, int]:
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return -1, 1
    low, high = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    return low, max(high, low + 1)


def gradient_chart_png(flows: list[GradientFlow], title: str) -> bytes:
    """Weight-gradient norm per weighted layer (forward order), log scale, one line per net.

    A zero or non-finite norm (a layer that got no gradient) is left out of its line.
    """
    font = ImageFont.load_default(size=14)
    small = ImageFont.load_default(size=12)
    image = Image.new("RGB", (_WIDTH, _HEIGHT), (255, 255, 255))
    pen = ImageDraw.Draw(image)
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    low, high = _decades([layer.weight_grad_norm for flow in flows for layer in flow.layers])
    longest = max(len(flow.layers) for flow in flows)

    def to_xy(index: int, value: float) -> tuple[float, float]:
        x = _LEFT + plot_w * index / max(1, longest - 1)
        y = _TOP + plot_h * (high - math.log10(value)) / (high - low)
        return x, y

    pen.text((_LEFT, 14), title, fill=(20, 20, 20), font=font)
    pen.text((_LEFT, 36), "norm of the weight gradient, log scale", fill=(60, 60, 60), font=small)
    # One labelled grid line per decade; thin out the labels when there are many decades.
    step = max(1, math.ceil((high - low) / 12))
    for decade in range(low, high + 1):
        _, y = to_xy(0, 10.0**decade)
        pen.line([(_LEFT, y), (_LEFT + plot_w, y)], fill=(225, 225, 225))
        if (decade - low) % step == 0:
            pen.text((_LEFT - 8, y), f"1e{decade}", fill=(60, 60, 60), font=small, anchor="rm")
    pen.rectangle([_LEFT, _TOP, _LEFT + plot_w, _TOP + plot_h], outline=(120, 120, 120))
    # Layer numbers from 1 (the first conv) along the bottom, about ten of them.
    every = max(1, math.ceil(longest / 10))
    for index in range(0, longest, every):
        x, _ = to_xy(index, 10.0**low)
        pen.line([(x, _TOP + plot_h), (x, _TOP + plot_h + 4)], fill=(120, 120, 120))
        pen.text((x, _TOP + plot_h + 6), str(index + 1), fill=(60, 60, 60), font=small, anchor="mt")
    pen.text(
        (_LEFT + plot_w / 2, _TOP + plot_h + 28),
        "weighted layer, input -> output (forward order)",
        fill=(60, 60, 60),
        font=small,
        anchor="mm",
    )

    for number, flow in enumerate(flows):
        colour = SERIES_COLOURS[number % len(SERIES_COLOURS)]
        points = [
            to_xy(index, layer.weight_grad_norm)
            for index, layer in enumerate(flow.layers)
            if layer.weight_grad_norm > 0 and math.isfinite(layer.weight_grad_norm)
        ]
        if len(points) > 1:
            pen.line(points, fill=colour, width=3)
        legend_y = _TOP + plot_h + 56 + 18 * (number // 2)
        legend_x = _LEFT + (plot_w / 2) * (number % 2)
        pen.line([(legend_x, legend_y), (legend_x + 28, legend_y)], fill=colour, width=4)
        label = f"{flow.model}: first/last = {flow.first_last_ratio:.3g}"
        pen.text((legend_x + 36, legend_y), label, fill=(20, 20, 20), font=small, anchor="lm")
    return png_bytes(image)
