"""Decoding photos safely, preprocessing them as torchvision does, and the bundled samples."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_viz import images
from resnet_viz.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    imagenet_labels,
    load_image,
    network_view,
    prepare,
    sample_images,
)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose data is a few bytes: decoding it
    would fail as truncated, so a refusal that names the pixel count came from the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_images_samples_are_the_four_credited_photos() -> None:
    samples = sample_images()

    assert list(samples) == ["astronaut", "chelsea", "coffee", "rocket"]
    credits = (samples["chelsea"].parent / "README.md").read_text()
    assert all(path.name in credits for path in samples.values())
    assert "CC0" in credits and "NASA" in credits and "SpaceX" in credits


@pytest.mark.parametrize(
    ("name", "size", "fmt"),
    [
        ("chelsea", (451, 300), "PNG"),
        ("coffee", (600, 400), "PNG"),
        ("astronaut", (512, 512), "PNG"),
        ("rocket", (640, 427), "JPEG"),
    ],
)
def test_images_sample_photos_decode(name: str, size: tuple[int, int], fmt: str) -> None:
    photo = load_image(sample_images()[name])

    assert photo.size == size and photo.format == fmt
    assert photo.image.mode == "RGB" and photo.notices == []


def test_images_imagenet_labels_are_in_classifier_order() -> None:
    labels = imagenet_labels()

    assert len(labels) == 1000
    assert labels[0] == "tench" and labels[281] == "tabby" and labels[999] == "toilet tissue"


def _rgba_half_red() -> Image.Image:
    return Image.new("RGBA", (8, 6), (255, 0, 0, 128))


def _palette_with_transparency() -> bytes:
    image = Image.new("P", (8, 6), 0)
    image.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    return encode(image, "PNG", transparency=0)


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (8, 6), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


def _sixteen_bit(fmt: str) -> bytes:
    values = np.full((6, 8), 51400, dtype=np.uint16)  # 51400 / 257 = 200
    return encode(Image.fromarray(values), fmt)


# (name, file bytes, format found, pixel (0, 0) expected, words of a notice or None)
IMAGE_MATRIX: list[tuple[str, Callable[[], bytes], str, tuple[int, int, int], str | None]] = [
    ("gray", lambda: encode(Image.new("L", (8, 6), 124), "PNG"), "PNG", (124, 124, 124), None),
    ("one-bit", lambda: encode(Image.new("1", (8, 6), 1), "PNG"), "PNG", (255, 255, 255), None),
    (
        "palette",
        lambda: encode(Image.new("RGB", (8, 6), (204, 102, 51)).convert("P"), "PNG"),
        "PNG",
        (204, 102, 51),
        None,
    ),
    ("palette-transparent", _palette_with_transparency, "PNG", (255, 255, 255), "transparent"),
    ("16-bit-png", lambda: _sixteen_bit("PNG"), "PNG", (200, 200, 200), None),
    ("16-bit-tiff", lambda: _sixteen_bit("TIFF"), "TIFF", (200, 200, 200), None),
    (
        "float-tiff",
        lambda: encode(Image.fromarray(np.full((6, 8), 0.5, dtype=np.float32)), "TIFF"),
        "TIFF",
        (128, 128, 128),
        None,
    ),
    ("rgba", lambda: encode(_rgba_half_red(), "PNG"), "PNG", (255, 127, 127), "transparent"),
    (
        "gray-alpha",
        lambda: encode(Image.new("LA", (8, 6), (0, 0)), "PNG"),
        "PNG",
        (255, 255, 255),
        "transparent",
    ),
    (
        "opaque-rgba",
        lambda: encode(Image.new("RGBA", (8, 6), (9, 8, 7, 255)), "PNG"),
        "PNG",
        (9, 8, 7),
        None,
    ),
    (
        "cmyk-jpeg",
        lambda: encode(Image.new("CMYK", (8, 6), (0, 255, 255, 0)), "JPEG", quality=100),
        "JPEG",
        (255, 0, 0),
        "CMYK",
    ),
    (
        "webp",
        lambda: encode(Image.new("RGB", (8, 6), (0, 200, 0)), "WEBP", lossless=True),
        "WEBP",
        (0, 200, 0),
        None,
    ),
    ("bmp", lambda: encode(Image.new("RGB", (8, 6), (1, 2, 3)), "BMP"), "BMP", (1, 2, 3), None),
    ("tiff", lambda: encode(Image.new("RGB", (8, 6), (4, 5, 6)), "TIFF"), "TIFF", (4, 5, 6), None),
    ("animated-gif", _animated_gif, "GIF", (255, 0, 0), "first frame"),
]


@pytest.mark.parametrize(
    ("make", "fmt", "pixel", "notice"),
    [case[1:] for case in IMAGE_MATRIX],
    ids=[case[0] for case in IMAGE_MATRIX],
)
def test_images_modes_and_formats_decode_by_value(
    make: Callable[[], bytes], fmt: str, pixel: tuple[int, int, int], notice: str | None
) -> None:
    photo = load_image(make())

    assert photo.format == fmt
    assert photo.image.mode == "RGB" and photo.size == (8, 6)
    assert all(abs(a - b) <= 2 for a, b in zip(photo.image.getpixel((0, 0)), pixel, strict=True))
    if notice is None:
        assert photo.notices == []
    else:
        assert any(notice in text for text in photo.notices), photo.notices


def test_images_exif_orientation_is_applied() -> None:
    # 40 wide, 20 high, white on the left; orientation 6 means "turn 90 degrees clockwise".
    stored = Image.new("RGB", (40, 20), (0, 0, 0))
    stored.paste((255, 255, 255), (0, 0, 10, 20))
    exif = Image.Exif()
    exif[0x0112] = 6

    photo = load_image(encode(stored, "JPEG", exif=exif, quality=95))

    assert photo.size == (20, 40)
    assert min(photo.image.getpixel((10, 3))) > 230  # the white band is now on top
    assert max(photo.image.getpixel((10, 36))) < 25


@pytest.mark.parametrize("name", ["PHOTO.JPG", "photo.png.txt", "no_extension"])
def test_images_format_comes_from_content_not_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(encode(Image.new("RGB", (8, 6), (10, 20, 30)), "PNG"))

    photo = load_image(path)

    assert photo.format == "PNG" and photo.image.getpixel((0, 0)) == (10, 20, 30)


def test_images_truncated_file_has_a_clear_message() -> None:
    data = (Path(__file__).parent.parent / "assets" / "chelsea.png").read_bytes()

    with pytest.raises(ValueError, match="damaged or truncated.*download or export it again"):
        load_image(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"name,score\nada,3\n", "text \\(or a document\\), not a picture"),
        (b"\x00\x9f\x13" * 40, "not an image in a format this program reads"),
        (b"", "empty"),
    ],
    ids=["text", "binary", "empty"],
)
def test_images_non_images_have_a_clear_message(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_image(data)


@pytest.mark.parametrize("side", [8_000, 100_000])
def test_images_bomb_is_refused_from_the_header(side: int) -> None:
    # Both sizes are refused before decoding: the file holds far too little data to decode.
    with pytest.raises(ValueError, match="too many pixels|over the limit of 50,000,000"):
        load_image(png_with_header(side, side))


def test_images_pixel_limit_is_a_parameter() -> None:
    data = encode(Image.new("RGB", (100, 100)), "PNG")

    with pytest.raises(ValueError, match="10,000 pixels, over the limit of 9,999"):
        load_image(data, max_pixels=9_999)
    assert load_image(data, max_pixels=10_000).size == (100, 100)


def _whole_picture_gray(values: np.ndarray, divisor: float, factor: float) -> np.ndarray:
    """The conversion applied to the whole picture at once, as it was before bands."""
    finite = values[np.isfinite(values)]
    low = float(finite.min())
    scaled = np.nan_to_num((values - low) / divisor * factor, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def test_images_wide_range_pixels_are_stretched_band_by_band_as_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(images, "_BAND_PIXELS", 40)  # 4 rows of 11 pixels: 6 bands
    values = np.linspace(-3.0, 5.0, 23 * 11, dtype=np.float32).reshape(23, 11)
    values[0, 0], values[5, 3], values[22, 10] = np.nan, np.inf, -np.inf
    finite = values[np.isfinite(values)]
    span = float(finite.max()) - float(finite.min())

    photo = load_image(encode(Image.fromarray(values), "TIFF"))

    gray = np.asarray(photo.image)[:, :, 0]
    assert np.array_equal(gray, _whole_picture_gray(values.astype(np.float64), span, 255.0))
    assert any("stretched to 0..255" in notice for notice in photo.notices)


def test_images_sixteen_bit_gradient_scaled_by_value_in_bands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(images, "_BAND_PIXELS", 64)
    values = np.linspace(0, 65535, 31 * 17).astype(np.uint16).reshape(31, 17)

    gray = np.asarray(load_image(encode(Image.fromarray(values), "PNG")).image)[:, :, 0]

    assert np.array_equal(gray, np.rint(values / 257.0).astype(np.uint8))


def test_images_sixteen_bit_conversion_works_in_small_bands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 1000 x 1000 16-bit pixels: converted whole in float64, the work arrays took 8 MB each.
    monkeypatch.setattr(images, "_BAND_PIXELS", 10_000)
    picture = Image.fromarray(np.full((1000, 1000), 51400, dtype=np.uint16))

    tracemalloc.start()
    try:
        gray = images._scaled_gray(picture, [])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert gray.getpixel((0, 0)) == 200
    assert peak < 1_000_000 + 10 * 10_000 * 8  # the 8-bit result and a few bands' floats


def test_images_missing_path_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")


def test_images_prepare_follows_torchvision_recipe() -> None:
    photo = load_image(sample_images()["chelsea"])  # 451 x 300

    prepared = prepare(photo)

    assert prepared.tensor.shape == (1, 3, 224, 224) and prepared.tensor.dtype == torch.float32
    # Short side 300 -> 256, long side int(256 * 451 / 300) = 384; the crop starts at 80.
    left, top, right, bottom = prepared.crop_box
    assert left == pytest.approx(80 * 451 / 384) and right == pytest.approx(304 * 451 / 384)
    assert top == pytest.approx(16 * 300 / 256) and bottom == pytest.approx(240 * 300 / 256)


def test_images_normalisation_and_network_view_round_trip() -> None:
    colour = (124, 116, 104)
    solid = Image.new("RGB", (300, 260), colour)

    prepared = prepare(solid)
    view = network_view(prepared)

    expected = [
        (c / 255 - m) / s for c, m, s in zip(colour, IMAGENET_MEAN, IMAGENET_STD, strict=True)
    ]
    assert prepared.tensor[0, :, 100, 100].tolist() == pytest.approx(expected, abs=1e-5)
    assert view.size == (224, 224) and view.getpixel((100, 100)) == colour


@pytest.mark.parametrize(("size", "expected"), [((451, 300), (224, 336)), ((300, 451), (336, 224))])
def test_images_whole_recipe_keeps_the_shape(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    prepared = prepare(Image.new("RGB", size), recipe="whole", size=224)

    assert prepared.input_size == expected
    assert prepared.crop_box == (0.0, 0.0, float(size[0]), float(size[1]))


def test_images_v2_resize_and_gray_input() -> None:
    photo = Image.new("RGB", (400, 300), (255, 255, 255))

    v2 = prepare(photo, resize=232)
    gray = prepare(photo, in_channels=1)

    # Short side 300 -> 232, so the 224 crop covers 224/232 of the height.
    assert v2.crop_box[3] - v2.crop_box[1] == pytest.approx(300 * 224 / 232)
    assert gray.tensor.shape == (1, 1, 224, 224)
    assert gray.tensor[0, 0, 0, 0].item() == pytest.approx((1 - 0.449) / 0.226, abs=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"recipe": "squash"}, "recipe must be 'torchvision' or 'whole'"),
        ({"size": 4}, "size must be a whole number of pixels from 8"),
        ({"in_channels": 4}, "this network takes 4"),
        ({"resize": 200}, "must be at least the crop size"),
    ],
)
def test_images_prepare_rejects_bad_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        prepare(Image.new("RGB", (300, 300)), **kwargs)  # type: ignore[arg-type]


def test_images_a_very_long_photo_keeps_its_middle_for_the_centre_crop() -> None:
    from PIL import Image

    from resnet_viz.images import prepare

    photo = Image.new("RGB", (100, 2000), (10, 20, 30))
    photo.paste((200, 0, 0), (0, 990, 100, 1010))  # a red band across the middle
    prepared = prepare(photo)
    assert prepared.tensor.shape == (1, 3, 224, 224)
    left, top, right, bottom = prepared.crop_box
    assert (left, right) == pytest.approx((6.25, 93.75)) and (top + bottom) / 2 == 1000
    # The band is in the middle rows of what the network sees.
    middle = prepared.tensor[0, 0, 112]
    assert float(middle.mean()) > float(prepared.tensor[0, 0, 0].mean())


@pytest.mark.parametrize(
    ("recipe", "size", "message"),
    [
        ("whole", 4096, "would be 5461 x 4096, over 4096 pixels a side; choose a smaller size"),
        ("torchvision", 4000, "size 4000 is too large for the centre-crop recipe"),
    ],
)
def test_images_sizes_too_large_say_which(recipe: str, size: int, message: str) -> None:
    from PIL import Image

    from resnet_viz.images import prepare

    with pytest.raises(ValueError, match=message):
        prepare(Image.new("RGB", (400, 300)), recipe, size)
