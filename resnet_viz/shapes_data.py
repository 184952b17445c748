"""A small image classification task generated from a seed: coloured shapes and textures.

The gradient lab needs real images with real labels that need no download and come out the same
on every machine. Each image is one shape or texture (the class) in a random colour, at a random
place and size, on a random background colour, with pixel noise; colour and position carry no
information about the class, so a network has to learn the form.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Textures first: a task of the first few classes is one a small CNN learns in a few dozen steps.
CLASSES = (
    "horizontal stripes",
    "vertical stripes",
    "checkerboard",
    "disc",
    "square",
    "diamond",
    "ring",
    "plus",
    "triangle",
    "x",
)
MAX_IMAGES = 100_000
MAX_SIZE = 512


def _masks(dx: Tensor, dy: Tensor, r: Tensor) -> Tensor:
    """(classes, N, H, W) foreground masks of every class for each image's placement."""
    ax, ay = dx.abs(), dy.abs()
    box = torch.maximum(ax, ay) < r
    dist = torch.sqrt(dx * dx + dy * dy)
    # Stripes and squares of checkerboard are r / 2.5 wide, so every texture shows a few periods.
    period = r / 2.5
    bands_y = torch.remainder(dy / period, 2.0) < 1.0
    bands_x = torch.remainder(dx / period, 2.0) < 1.0
    return torch.stack(
        [
            box & bands_y,
            box & bands_x,
            box & (bands_x ^ bands_y),
            dist < r,
            box,
            ax + ay < r,
            (dist < r) & (dist > 0.55 * r),
            ((ax < r / 3) & (ay < r)) | ((ay < r / 3) & (ax < r)),
            (dy > -r) & (dy < r) & (ax < (dy + r) / 2),
            box & ((ax - ay).abs() < r / 4),
        ]
    )


def make_shapes(
    count: int, seed: int = 0, size: int = 32, num_classes: int = len(CLASSES)
) -> tuple[Tensor, Tensor]:
    """`count` images and their labels, the same for the same arguments on every machine.

    Args:
        count: Number of images. Classes take turns (0, 1, 2, ...), so they are balanced.
        seed: Seed of the private random generator; the global random state is not touched.
        size: Height and width in pixels.
        num_classes: Use the first this many classes of `CLASSES` (2 to 10).

    Returns:
        Images (count, 3, size, size), float32, roughly zero mean and unit spread per channel as
        normalised photos are; labels (count,), int64.
    """
    if not 1 <= count <= MAX_IMAGES:
        raise ValueError(f"count must be between 1 and {MAX_IMAGES:,}, got {count}")
    if not 8 <= size <= MAX_SIZE:
        raise ValueError(f"size must be between 8 and {MAX_SIZE} pixels, got {size}")
    if not 2 <= num_classes <= len(CLASSES):
        raise ValueError(f"num_classes must be between 2 and {len(CLASSES)}, got {num_classes}")
    gen = torch.Generator().manual_seed(seed)

    def uniform(low: float, high: float, *shape: int) -> Tensor:
        return low + (high - low) * torch.rand(*shape, generator=gen)

    labels = torch.arange(count) % num_classes
    # Pixel centres in [-1, 1]; a shape's radius is 0.35 to 0.75 of the half-width.
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    r = uniform(0.35, 0.75, count, 1, 1)
    cx = uniform(-1, 1, count, 1, 1) * (1 - r)
    cy = uniform(-1, 1, count, 1, 1) * (1 - r)
    dx = axis.view(1, 1, size) - cx
    dy = axis.view(1, size, 1) - cy
    mask = _masks(dx, dy, r)[labels, torch.arange(count)].unsqueeze(1)  # (N, 1, H, W)

    # Background colour 0.25 to 0.75 away from the foreground's in every channel (around the
    # colour circle), so every shape shows against its background.
    foreground = uniform(0, 1, count, 3, 1, 1)
    background = torch.remainder(foreground + uniform(0.5, 1.5, count, 3, 1, 1) * 0.5, 1.0)
    images = torch.where(mask, foreground, background)
    images = images + 0.1 * torch.randn(images.shape, generator=gen)
    return ((images - 0.5) / 0.3).float(), labels
