from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from generations.media.images import (
    MAX_IMAGE_PIXELS,
    ImageError,
    cover_crop,
    image_extension,
    load_image,
    sniff_format,
)


def _encode(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_claiming(width, height):
    """A tiny PNG whose header claims a huge size (a decompression bomb's calling card)."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _code(data):
    with pytest.raises(ImageError) as info:
        load_image(data)
    assert info.value.message
    return info.value.code


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_supported_formats_decode_to_rgb(fmt):
    img = Image.new("RGB", (64, 48), (200, 30, 30))
    out = load_image(_encode(img, fmt))
    assert (out.mode, out.size) == ("RGB", (64, 48))
    assert sniff_format(_encode(img, fmt)) == fmt
    assert image_extension(fmt).startswith(".")


def test_a_bomb_header_is_refused_before_decoding():
    assert _code(_png_claiming(30_000, 30_000)) == "image_too_large"


def test_a_picture_just_over_the_pixel_cap_is_refused():
    side = int(MAX_IMAGE_PIXELS**0.5) + 2
    assert _code(_png_claiming(side, side)) == "image_too_large"


def test_a_truncated_file_is_invalid():
    rng = np.random.default_rng(0)
    noisy = Image.fromarray((rng.random((200, 200, 3)) * 255).astype(np.uint8))
    data = _encode(noisy, "PNG")
    assert _code(data[: len(data) // 2]) == "invalid_image"
    jpeg = _encode(noisy, "JPEG")
    assert _code(jpeg[: len(jpeg) // 3]) == "invalid_image"


def test_text_and_svg_are_refused():
    assert _code(b"hello, I am not an image") == "invalid_image"
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>'
    assert _code(svg) == "unsupported_image_format"
    assert _code(b"") == "invalid_image"


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_other_formats_are_unsupported(fmt):
    img = Image.new("RGB", (16, 16))
    assert _code(_encode(img, fmt)) == "unsupported_image_format"


def test_too_many_bytes_is_refused():
    img = Image.new("RGB", (16, 16))
    with pytest.raises(ImageError) as info:
        load_image(_encode(img, "PNG"), max_bytes=10)
    assert info.value.code == "image_too_large"


def test_an_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (32, 32), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    out = load_image(data)
    assert out.getpixel((5, 5)) == (255, 0, 0)


def test_transparency_becomes_black():
    img = Image.new("RGBA", (16, 16), (255, 255, 255, 0))
    img.putpixel((0, 0), (255, 255, 255, 255))
    out = load_image(_encode(img, "PNG"))
    assert out.getpixel((8, 8)) == (0, 0, 0)
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (10, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    out = load_image(_encode(img, "JPEG", exif=exif))
    assert out.size == (20, 40)


def test_cover_crop_fills_the_frame_and_keeps_the_centre():
    img = Image.new("RGB", (400, 100), (0, 0, 255))
    # A red vertical stripe in the middle must stay in the middle of a square crop.
    for x in range(190, 210):
        for y in range(100):
            img.putpixel((x, y), (255, 0, 0))
    out = cover_crop(img, 200, 200)
    assert out.shape == (200, 200, 3)
    assert out[100, 100, 0] > 200
    assert out[100, 10, 2] > 200
