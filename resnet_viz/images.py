"""Photos in, tensors out: safe decoding, torchvision's preprocessing, and the bundled samples.

`load_image` turns a file, a path or uploaded bytes into an RGB picture the way a person expects
to see it (EXIF orientation applied, 16-bit and palette images converted by value, transparency
on white), and refuses what it cannot read with a message saying what to do. `prepare` makes the
network's input from it and remembers where that input sits on the photo, so that maps computed
on the input can be drawn back onto the photo as displayed.

Limitations:
    Colour profiles (ICC) are not applied: a photo in a wide-gamut space such as Display P3 is
    read as if it were sRGB, so its colours look slightly duller to the network than on screen.
    CMYK is converted with Pillow's plain formula, not a press profile.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from resnet_viz.sources import read_source

logger = logging.getLogger(__name__)

# NOTE: the assets live beside the package in the source tree, not inside it, so they are found
# in a checkout or an editable install (what `./dev` makes), not in a built wheel.
ASSETS = Path(__file__).resolve().parent.parent / "assets"

# 50 megapixels takes a 48 MP phone photo and refuses anything bigger before it is decoded; the
# decoded RGB picture is then at most 150 MB. Pillow's own guard (MAX_IMAGE_PIXELS, 89 MP) is
# global state that other code may change, so this check does not rely on it.
MAX_PIXELS = 50_000_000
# Compressed size; Streamlit's upload limit is 200 MB, and no photo worth showing is larger.
MAX_FILE_BYTES = 200 * 2**20
# 16-bit and float pictures are scaled to 8 bits this many pixels at a time (8 MB of floats).
_BAND_PIXELS = 2**20

# What the upload accepts; MPO is how many phones store a JPEG (a JPEG with a depth map after it).
FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF")

# torchvision's ImageNet weights: resize the short side to 256, crop the centre 224 x 224,
# then normalise with ImageNet's channel means and standard deviations.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_SIZE = 256
CROP_SIZE = 224
# The longest side the whole-image recipe makes; the analysis accepts up to 4096.
MAX_SIDE = 4096


@dataclass(frozen=True)
class LoadedImage:
    """A decoded photo, upright and in RGB, and what had to be done to it.

    Attributes:
        image: The photo as a person sees it: EXIF orientation applied, mode "RGB".
        format: The format found in the content ("JPEG", "PNG", ...), whatever the file name.
        original_mode: Pillow's mode before conversion ("RGBA", "I;16", "P", ...).
        notices: Sentences for the user about changes that affect what the network sees,
            such as transparency put on white; empty when nothing needed saying.
    """

    image: Image.Image
    format: str
    original_mode: str
    notices: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as displayed."""
        return self.image.size


def load_image(source: str | Path | bytes | BinaryIO, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Decode a photo safely, with the format taken from the content.

    Args:
        source: A path, the file's bytes (an upload), or an open binary file.
        max_pixels: Largest width x height accepted, checked from the header before decoding.

    Returns:
        The upright RGB photo, its format and the notices for the user.

    Raises:
        ValueError: For a missing file, a file that is not an image of a supported format, a
            truncated file, or one with too many pixels; the message says what to do.
    """
    data = read_source(
        source, "image file", "choose a photo (JPEG, PNG, WebP, BMP, TIFF or GIF)", MAX_FILE_BYTES
    )
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit; the check below gives the reason in our words.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ValueError(_not_an_image(data)) from None
    except Image.DecompressionBombError:
        raise ValueError(
            f"this image has too many pixels to decode safely (over {max_pixels:,}); "
            "scale it down first"
        ) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"this file cannot be read as an image ({err}); save it again") from None

    if image.format not in FORMATS:
        raise ValueError(
            f"{image.format} images are not supported; use JPEG, PNG, WebP, BMP, TIFF or GIF"
        )
    width, height = image.size
    if width * height > max_pixels:
        raise ValueError(
            f"this {image.format} image is {width} x {height} = {width * height:,} pixels, over "
            f"the limit of {max_pixels:,}; scale it down (to at most about "
            f"{math.isqrt(max_pixels):,} pixels a side for a square) and try again"
        )

    notices: list[str] = []
    if getattr(image, "is_animated", False):
        notices.append("this is an animated image; only its first frame is used")
        image.seek(0)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ValueError(
            f"this {image.format} file is damaged or truncated, so it cannot be decoded "
            f"({err}); download or export it again"
        ) from None

    found_format, original_mode = str(image.format), image.mode
    rgb = _to_rgb(_upright(image, notices), notices)
    logger.debug("decoded %s %s %dx%d", found_format, original_mode, *rgb.size)
    return LoadedImage(rgb, found_format, original_mode, notices)


def _not_an_image(data: bytes) -> str:
    head = data[:64]
    if head.lstrip().startswith((b"<", b"{", b"%PDF")) or all(
        32 <= b < 127 or b in b"\t\r\n" for b in head
    ):
        kind = "text (or a document), not a picture"
    else:
        kind = "not an image in a format this program reads"
    return f"this file is {kind}; choose a photo saved as JPEG, PNG, WebP, BMP, TIFF or GIF"


def _upright(image: Image.Image, notices: list[str]) -> Image.Image:
    """Apply the EXIF orientation, as photo viewers do; phones store portraits turned."""
    try:
        orientation = image.getexif().get(0x0112, 1)
        upright = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError) as err:
        # A photo with damaged metadata still has good pixels.
        notices.append(f"the photo's orientation tag could not be read ({err}); shown as stored")
        return image
    if orientation not in (1, None):
        logger.debug("applied EXIF orientation %s", orientation)
    return upright if upright is not None else image


def _to_rgb(image: Image.Image, notices: list[str]) -> Image.Image:
    """RGB by value: 16-bit and float pixels scaled rather than clipped, alpha put on white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _scaled_gray(image, notices).convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        lowest_alpha, _ = rgba.getchannel("A").getextrema()
        if isinstance(lowest_alpha, (int, float)) and lowest_alpha < 255:
            notices.append("the image has transparent parts; they are shown on white")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "CMYK":
        notices.append("the image is CMYK (print colours); converted to RGB without a profile")
    # "1", "L", "P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX": Pillow's conversions keep values.
    return image.convert("RGB")


def _scaled_gray(image: Image.Image, notices: list[str]) -> Image.Image:
    """An 8-bit gray picture from one with 16-bit, 32-bit or float pixels.

    Pillow's own conversion clips every value above 255 to white, so a 16-bit scan would come
    out almost blank; this scales instead. It works on bands of rows, each cropped from the
    picture and converted in float64 on its own, so the work arrays stay near
    `_BAND_PIXELS` x 8 bytes. What remains is the 8-bit result (1 byte a pixel) and the RGB
    picture made from it (4): a 7000 x 7000 16-bit PNG takes about 300 MB on top of its
    decoded pixels, where converting it whole took 2 GB.
    """
    width, height = image.size
    rows = max(1, _BAND_PIXELS // width)

    def bands() -> Iterator[tuple[int, np.ndarray]]:
        for top in range(0, height, rows):
            band = image.crop((0, top, width, min(top + rows, height)))
            yield top, np.asarray(band, dtype=np.float64)

    low, high = math.inf, -math.inf
    for _, values in bands():
        finite = values[np.isfinite(values)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    if low > high:  # no finite value at all
        low = high = 0.0

    if image.mode.startswith("I;16"):
        offset, divisor, factor = 0.0, 257.0, 1.0  # 0..65535 -> 0..255
    elif image.mode == "F" and 0.0 <= low and high <= 1.0:
        offset, divisor, factor = 0.0, 1.0, 255.0
    elif 0.0 <= low and high <= 255.0:
        offset, divisor, factor = 0.0, 1.0, 1.0
    elif 0.0 <= low and high <= 65535.0:
        # LIMITATION: 32-bit pixels that all fit in 16 bits are read as 16-bit data, as Pillow
        # gives some 16-bit TIFFs; a dark 16-bit picture whose values stay under 256 is read
        # as 8-bit instead and comes out brighter. The file does not say which it is.
        offset, divisor, factor = 0.0, 257.0, 1.0
    else:
        notices.append(
            f"the pixel values run from {low:g} to {high:g}; they are stretched to 0..255"
        )
        span = high - low
        offset, divisor, factor = low, (span if span > 0 else 1.0), (255.0 if span > 0 else 0.0)

    gray = np.empty((height, width), dtype=np.uint8)
    for top, values in bands():
        # The same operations, in the same order, as on the whole picture at once.
        scaled = (values - offset) / divisor * factor
        scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
        gray[top : top + len(values)] = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(gray)


# -- preprocessing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """The network's input made from a photo, and where it sits on that photo.

    Attributes:
        tensor: (1, C, H, W) float32, normalised with `mean` and `std`.
        crop_box: (left, top, right, bottom) of the region the tensor covers, in pixels of the
            photo as displayed; the whole photo unless a centre crop was taken.
        photo_size: (width, height) of the photo as displayed.
        recipe: "torchvision" (resize and centre crop) or "whole".
        mean, std: The normalisation, one value per channel.
    """

    tensor: torch.Tensor
    crop_box: tuple[float, float, float, float]
    photo_size: tuple[int, int]
    recipe: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the tensor."""
        return int(self.tensor.shape[-2]), int(self.tensor.shape[-1])


def prepare(
    photo: Image.Image | LoadedImage,
    recipe: str = "torchvision",
    size: int | tuple[int, int] | None = None,
    in_channels: int = 3,
    resize: int | None = None,
) -> Prepared:
    """The tensor a network sees for `photo`.

    Args:
        photo: An RGB picture, or what `load_image` returned.
        recipe: "torchvision": resize the short side to 256 and crop the centre 224 x 224, as
            torchvision's ImageNet weights expect (`size` then sets the crop, and the resize
            keeps torchvision's ratio 256/224 unless `resize` is given). "whole": the whole
            photo, its short side resized to `size` (224 if None) keeping its shape, or to
            exactly (height, width).
        size: See `recipe`.
        resize: The short side before the centre crop; torchvision's V2 weights use 232
            (`PublishedWeights.resize_size`).
        in_channels: 3 for colour; 1 gives a gray input normalised with the mean of
            ImageNet's statistics (0.449, 0.226), as timm does for one-channel nets.

    Returns:
        The tensor and the box of the photo it covers.
    """
    image = photo.image if isinstance(photo, LoadedImage) else photo
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    if recipe == "torchvision":
        largest = MAX_SIDE * CROP_SIZE // RESIZE_SIZE
        crop = _side(size if size is not None else CROP_SIZE, "size")
        if resize is None and crop > largest:
            raise ValueError(
                f"size {crop} is too large for the centre-crop recipe, which first resizes to "
                f"{RESIZE_SIZE}/{CROP_SIZE} of it; the largest is {largest}"
            )
        short = round(crop * RESIZE_SIZE / CROP_SIZE) if resize is None else resize
        if _side(short, "resize") < crop:
            raise ValueError(f"resize ({short}) must be at least the crop size ({crop})")
        # Only the middle is kept: a very long photo loses its far ends before the resize,
        # so that the resized picture stays within MAX_SIDE. Ordinary photos are not touched.
        source, (dx, dy) = _middle(image, short)
        resized, (new_w, new_h) = _resize_short_side(source, short)
        # Centre crop, rounding as torchvision does.
        left, top = int(round((new_w - crop) / 2)), int(round((new_h - crop) / 2))
        picture = resized.crop((left, top, left + crop, top + crop))
        sx, sy = source.width / new_w, source.height / new_h
        box = (dx + left * sx, dy + top * sy, dx + (left + crop) * sx, dy + (top + crop) * sy)
    elif recipe == "whole":
        if isinstance(size, (tuple, list)):
            target_h, target_w = (_side(s, "size") for s in size)
            picture = image.resize((target_w, target_h), Image.Resampling.BILINEAR)
        else:
            picture, _ = _resize_short_side(image, _side(size or CROP_SIZE, "size"))
        box = (0.0, 0.0, float(width), float(height))
    else:
        raise ValueError(f"recipe must be 'torchvision' or 'whole', got {recipe!r}")

    mean, std = _normalisation(in_channels)
    if in_channels == 1:
        picture = picture.convert("L")
    pixels = np.asarray(picture, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(pixels.reshape(*pixels.shape[:2], -1).copy()).permute(2, 0, 1)
    tensor = (tensor - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return Prepared(tensor.unsqueeze(0), box, (width, height), recipe, mean, std)


def network_view(prepared: Prepared) -> Image.Image:
    """The input tensor turned back into a picture: what the network actually sees."""
    mean = torch.tensor(prepared.mean)[:, None, None]
    std = torch.tensor(prepared.std)[:, None, None]
    pixels = (prepared.tensor[0].detach().cpu().float() * std + mean).clamp(0, 1)
    array = (pixels * 255).round().byte().permute(1, 2, 0).numpy()
    if array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0], mode="L").convert("RGB")
    return Image.fromarray(array, mode="RGB")


def _normalisation(in_channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if in_channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    if in_channels == 1:
        return (0.449,), (0.226,)
    raise ValueError(
        f"photos have 1 (gray) or 3 (colour) channels, but this network takes {in_channels}; "
        "use a configuration with in_channels 1 or 3"
    )


def _side(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= MAX_SIDE:
        raise ValueError(f"{name} must be a whole number of pixels from 8 to {MAX_SIDE}")
    return value


def _middle(image: Image.Image, short: int) -> tuple[Image.Image, tuple[int, int]]:
    """The middle of `image` that, resized to a short side of `short`, fits in MAX_SIDE."""
    width, height = image.size
    keep = math.floor(min(width, height) * MAX_SIDE / short)
    if max(width, height) <= keep:
        return image, (0, 0)
    if width > height:
        left = (width - keep) // 2
        return image.crop((left, 0, left + keep, height)), (left, 0)
    top = (height - keep) // 2
    return image.crop((0, top, width, top + keep)), (0, top)


def _resize_short_side(image: Image.Image, short: int) -> tuple[Image.Image, tuple[int, int]]:
    """Resize so the short side is `short`; the long side is truncated, as torchvision does."""
    width, height = image.size
    if width <= height:
        new_w, new_h = short, int(short * height / width)
    else:
        new_w, new_h = int(short * width / height), short
    if max(new_w, new_h) > MAX_SIDE:
        raise ValueError(
            f"resized to a short side of {short}, this {width} x {height} photo would be "
            f"{new_w} x {new_h}, over {MAX_SIDE} pixels a side; choose a smaller size, or the "
            "centre-crop recipe"
        )
    # Pillow's bilinear filter widens when shrinking (antialiasing), like torchvision's resize.
    return image.resize((new_w, new_h), Image.Resampling.BILINEAR), (new_w, new_h)


# -- bundled files ---------------------------------------------------------------------


def sample_images() -> dict[str, Path]:
    """The bundled sample photos by name ("chelsea", "coffee", ...), sorted by name."""
    suffixes = {".png", ".jpg", ".jpeg"}
    return {path.stem: path for path in sorted(ASSETS.iterdir()) if path.suffix.lower() in suffixes}


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names, index i for the classifier's output i."""
    labels = (ASSETS / "imagenet_classes.txt").read_text(encoding="utf-8").splitlines()
    if len(labels) != 1000:
        raise ValueError(f"assets/imagenet_classes.txt has {len(labels)} lines, expected 1000")
    return labels


__all__ = [
    "LoadedImage",
    "Prepared",
    "imagenet_labels",
    "load_image",
    "network_view",
    "prepare",
    "sample_images",
]
