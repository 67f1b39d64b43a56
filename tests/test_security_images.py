"""Hostile images: bombs, truncation, lying names and types, SVG, endless GIFs, huge sizes.

Each is a clear 400 naming `image_url` through the API; the worst cases are decoded in a
subprocess that reports its peak RSS growth, which must stay under a stated bound."""

from __future__ import annotations

import base64
import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile

from generations.media.images import (
    MAX_ANIMATION_FRAMES,
    ImageError,
    gif_frame_count,
    load_image,
)
from generations.models import Generation
from tests.conftest import Account

# Refused inputs may not grow the process by more than this (their pixels are never decoded).
REFUSED_RSS_BOUND_MB = 40
# An image just under the 40-megapixel cap: the decode, its RGB copy and slack.
ACCEPTED_RSS_BOUND_MB = 400


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return struct.pack(">I", len(body)) + kind + body + crc


def png_bomb(width: int, height: int) -> bytes:
    """A real zlib bomb: valid rows of zeros for the whole claimed size, compressed."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + one greyscale byte per pixel
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def png_header_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def gif_frames(count: int, screen: tuple[int, int] = (1, 1)) -> bytes:
    """A GIF of `count` 1x1 frames, written by hand (Pillow would take minutes for 10,000)."""
    header = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    # Image descriptor, no local table, LZW min code 2: clear(4), index 0, end(5) = 0x44 0x01.
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return header + frame * count + b"\x3b"


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(_encode(Image.new("RGB", (16, 16), (9, 9, 9)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    """A VP8X header stating a canvas of width x height (up to 16,777,216 per side)."""
    vp8x = (
        b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    )
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _encode(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _noisy(fmt: str) -> bytes:
    img = Image.effect_noise((256, 256), 64).convert("RGB")
    return _encode(img, fmt)


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
    b'<image href="file:///etc/passwd"/></svg>'
)

HOSTILE: dict[str, tuple[bytes, str]] = {
    "zlib bomb 8000x8000": (png_bomb(8000, 8000), "image_too_large"),
    "PNG header 30000x30000": (png_header_claiming(30_000, 30_000), "image_too_large"),
    "PNG 1 x 2^31-1": (png_header_claiming(1, 2**31 - 1), "image_too_large"),
    "JPEG header 65500x65500": (jpeg_claiming(65_500, 65_500), "image_too_large"),
    "GIF screen 65535x65535": (gif_frames(1, (65_535, 65_535)), "image_too_large"),
    "WebP canvas 16383x16383": (webp_claiming(16_383, 16_383), "image_too_large"),
    "10,000-frame GIF": (gif_frames(10_000), "image_too_large"),
    "truncated PNG": (_noisy("PNG")[:2000], "invalid_image"),
    "truncated JPEG": (_noisy("JPEG")[:2000], "invalid_image"),
    "truncated GIF": (_noisy("GIF")[:2000], "invalid_image"),
    "truncated WebP": (_noisy("WEBP")[:2000], "invalid_image"),
    "PNG signature only": (b"\x89PNG\r\n\x1a\n", "invalid_image"),
    "SVG": (SVG, "unsupported_image_format"),
    "bare SVG": (b"  <svg><script>alert(1)</script></svg>", "unsupported_image_format"),
    "HTML": (b"<!doctype html><script>alert(1)</script>", "invalid_image"),
    "PDF": (b"%PDF-1.7\n...", "unsupported_image_format"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_each_hostile_image_is_refused_with_a_clear_code(name: str) -> None:
    data, code = HOSTILE[name]
    with pytest.raises(ImageError) as info:
        load_image(data)
    assert info.value.code == code
    assert info.value.message and "Traceback" not in info.value.message


def test_pillow_is_not_told_to_accept_truncated_images() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def test_each_is_a_400_naming_image_url_through_the_api(owner: Account) -> None:
    api = owner.client()
    for name, (data, code) in HOSTILE.items():
        response = api.post(
            "/api/v1/generate",
            {"model": "local", "prompt": "x", "image_url": _data_url(data, "image/png")},
        )
        assert response.status_code == 400, name
        error = response.json()["error"]
        assert (error["field"], error["code"]) == ("image_url", code), name
    assert not Generation.objects.exists()


def test_the_bytes_decide_the_format_not_the_name_or_the_declared_type(owner: Account) -> None:
    # A JPEG declared as a GIF, a PNG whose data URL says JPEG: accepted as what they are,
    # and stored under the extension of the real format.
    jpeg = _encode(Image.new("RGB", (64, 48), (200, 10, 10)), "JPEG")
    png = _encode(Image.new("RGB", (64, 48), (10, 200, 10)), "PNG")
    api = owner.client()
    for data, mime, extension in ((jpeg, "image/gif", ".jpg"), (png, "image/jpeg", ".png")):
        response = api.post(
            "/api/v1/generate",
            {"model": "local", "prompt": "x", "image_url": _data_url(data, mime)},
        )
        assert response.status_code in (200, 201, 202), response.content
        gen = Generation.objects.get(generation_id=response.json()["generation_id"])
        assert gen.input_image.name.endswith(extension)


def test_a_png_named_jpg_on_a_server_is_stored_as_png(
    owner: Account, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from generations.net import fetch

    png = _encode(Image.new("RGB", (32, 32)), "PNG")
    monkeypatch.setattr(fetch, "fetch_image_bytes", lambda url, **kw: png)
    response = owner.client().post(
        "/api/v1/generate",
        {"model": "local", "prompt": "x", "image_url": "https://img.example.com/photo.jpg"},
    )
    assert response.status_code in (200, 201, 202), response.content
    assert Generation.objects.get().input_image.name.endswith(".png")


def test_gif_frames_are_counted_without_decoding_and_capped() -> None:
    assert gif_frame_count(gif_frames(3)) == 3
    assert gif_frame_count(gif_frames(10_000)) == MAX_ANIMATION_FRAMES + 1  # stops early
    assert load_image(gif_frames(MAX_ANIMATION_FRAMES)).size == (1, 1)


MEASURE = r"""
import json, resource, sys
from generations.media.images import ImageError, load_image
data = sys.stdin.buffer.read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_image(data)
    outcome = "ok"
except ImageError as exc:
    outcome = exc.code
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "growth_mb": (after - before) / 1024}))
"""


def _peak_growth(data: bytes) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE], input=data, capture_output=True, timeout=60,
        check=True, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_refused_worst_cases_use_bounded_memory() -> None:
    # One subprocess for all: each input's growth is measured against the peak so far,
    # so run the cheapest first (ru_maxrss only rises).
    worst = b"".join(
        HOSTILE[name][0]
        for name in ("zlib bomb 8000x8000",)  # 64 MP of real zeros behind a 30 kB file
    )
    result = _peak_growth(worst)
    assert result["outcome"] == "image_too_large"
    assert result["growth_mb"] < REFUSED_RSS_BOUND_MB, result
    for name in ("10,000-frame GIF", "JPEG header 65500x65500", "WebP canvas 16383x16383"):
        result = _peak_growth(HOSTILE[name][0])
        assert result["outcome"] == "image_too_large", name
        assert result["growth_mb"] < REFUSED_RSS_BOUND_MB, (name, result)


def test_an_image_at_the_pixel_cap_decodes_within_the_bound() -> None:
    result = _peak_growth(png_bomb(6300, 6300))  # 39.7 MP, just under the cap
    assert result["outcome"] == "ok"
    assert result["growth_mb"] < ACCEPTED_RSS_BOUND_MB, result
