"""Pictures of maps: feature-map grids, heat overlays on the photo, receptive-field views.

Everything returns Pillow images or PNG bytes, so the app and the command line show the same
pictures and nothing here needs a plotting library.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from resnet_viz.activations import EffectiveField, FeatureGrid
from resnet_viz.images import Prepared

# Stops of a dark-to-bright map close to matplotlib's "inferno" (at 0, 1/4, 1/2, 3/4, 1):
# brightness rises steadily, so a map reads correctly in gray too and to most colour-blind eyes.
_STOPS = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64
)
# Outside the crop the network sees, the photo is faded towards gray by this much.
_FADE = 0.6


def colorize(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """Values in [0, 1], any shape, to RGB uint8 of that shape plus 3."""
    array = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0).clip(0, 1)
    position = array * (len(_STOPS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_STOPS) - 2)
    frac = (position - low)[..., None]
    rgb = _STOPS[low] * (1 - frac) + _STOPS[low + 1] * frac
    return np.rint(rgb).astype(np.uint8)


def map_image(values: torch.Tensor, size: tuple[int, int] | None = None) -> Image.Image:
    """One map in [0, 1], coloured, enlarged to `size` (width, height) with visible pixels."""
    image = Image.fromarray(colorize(values.detach().cpu()), mode="RGB")
    if size is not None:
        # Nearest neighbour: a 7x7 map should look like 49 cells, not a blur.
        image = image.resize(size, Image.Resampling.NEAREST)
    return image


def feature_grid_image(
    grid: FeatureGrid, columns: int | None = None, cell: int = 96, gap: int = 4
) -> Image.Image:
    """The maps of a `FeatureGrid` in rows, each labelled with its channel number."""
    count = len(grid.channels)
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    height, width = grid.maps.shape[-2:]
    # The longer side of each cell is `cell`; the other keeps the map's shape.
    scale = cell / max(height, width)
    cell_w, cell_h = max(1, round(width * scale)), max(1, round(height * scale))
    canvas = Image.new(
        "RGB",
        (columns * cell_w + (columns + 1) * gap, rows * cell_h + (rows + 1) * gap),
        (255, 255, 255),
    )
    draw = ImageDraw.Draw(canvas)
    for index, (channel, values) in enumerate(zip(grid.channels, grid.maps, strict=True)):
        left = gap + (index % columns) * (cell_w + gap)
        top = gap + (index // columns) * (cell_h + gap)
        canvas.paste(map_image(values, (cell_w, cell_h)), (left, top))
        label = str(channel)
        box = draw.textbbox((left + 2, top + 1), label)
        draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
        draw.text((left + 2, top + 1), label, fill=(255, 255, 255))
    return canvas


def titled(image: Image.Image, lines: list[str]) -> Image.Image:
    """The image under a white band with these lines, so that a saved picture says what it is."""
    font = ImageFont.load_default(size=13)
    draw = ImageDraw.Draw(image)
    line_height = int(max(draw.textbbox((0, 0), line, font=font)[3] for line in lines)) + 4
    band = len(lines) * line_height + 8
    width = max(
        image.width, *(int(draw.textbbox((0, 0), line, font=font)[2]) + 12 for line in lines)
    )
    canvas = Image.new("RGB", (width, image.height + band), (255, 255, 255))
    canvas.paste(image, (0, band))
    pen = ImageDraw.Draw(canvas)
    for index, line in enumerate(lines):
        pen.text((6, 4 + index * line_height), line, fill=(20, 20, 20), font=font)
    return canvas


def heat_overlay(
    photo: Image.Image, heat: torch.Tensor, prepared: Prepared, alpha: float = 0.5
) -> Image.Image:
    """A map in [0, 1] laid over the photo as displayed, on the part the network saw.

    Args:
        photo: The photo as displayed (what `load_image` returned, upright), any orientation.
        heat: (h, w) in [0, 1], over the network's input.
        prepared: How the input was made from the photo; its crop box places the map.
        alpha: Weight of the colours over the photo where the map is hot.

    Returns:
        An RGB picture of exactly the photo's size. Outside the centre crop the photo is faded,
        since the network never saw it.
    """
    photo = photo.convert("RGB")
    if photo.size != prepared.photo_size:
        raise ValueError(
            f"the photo is {photo.size[0]}x{photo.size[1]} but the input was made from a "
            f"{prepared.photo_size[0]}x{prepared.photo_size[1]} one; pass the same photo"
        )
    left, top, right, bottom = (int(round(v)) for v in prepared.crop_box)
    box_w, box_h = max(1, right - left), max(1, bottom - top)
    values = heat.detach().float().cpu().nan_to_num(0.0).clamp(0, 1)
    # Bilinear: Grad-CAM's maps are coarse by nature, and a smooth map is how they are shown.
    gray = Image.fromarray(np.rint(values.numpy() * 255).astype(np.uint8), mode="L")
    smooth = np.asarray(gray.resize((box_w, box_h), Image.Resampling.BILINEAR)) / 255.0

    base = np.asarray(photo, dtype=np.float64)
    out = base * (1 - _FADE) + 128 * _FADE
    region = base[top:bottom, left:right]
    smooth = smooth[: region.shape[0], : region.shape[1]]
    weight = alpha * smooth[..., None]
    out[top:bottom, left:right] = region * (1 - weight) + colorize(smooth) * weight
    return Image.fromarray(np.rint(out).clip(0, 255).astype(np.uint8), mode="RGB")


def receptive_field_image(
    view: Image.Image, field: EffectiveField, alpha: float = 0.6
) -> Image.Image:
    """The effective field as heat on the network's view, the theoretical one as a box."""
    if view.size != (field.heat.shape[1], field.heat.shape[0]):
        raise ValueError("the view must be the network's input (images.network_view)")
    base = np.asarray(view.convert("RGB"), dtype=np.float64)
    # Gradients fall off fast; a square root shows the tail as well as the peak.
    values = field.heat.clamp(0, 1).sqrt().numpy()
    weight = alpha * values[..., None]
    out = base * (1 - weight) + colorize(values) * weight
    image = Image.fromarray(np.rint(out).clip(0, 255).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(image)
    top, left, bottom, right = field.box
    draw.rectangle((left, top, right, bottom), outline=(0, 255, 255), width=2)
    return image


def png_bytes(image: Image.Image) -> bytes:
    """The picture as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


__all__ = [
    "colorize",
    "feature_grid_image",
    "heat_overlay",
    "map_image",
    "png_bytes",
    "receptive_field_image",
]
