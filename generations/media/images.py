"""Decoding user-supplied images safely, and fitting them to a video frame.

User bytes are hostile until decoded: the format is checked by its magic bytes, the pixel
count is checked on the header before any pixel is decoded, and Pillow's decompression-bomb
warning is an error here. Only the first frame of an animation is ever decoded.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

# Bytes accepted from a client or a URL before decoding (a 40 MP JPEG is rarely above this).
MAX_IMAGE_BYTES = 25 * 1024 * 1024
# Decoded pixels allowed (width * height); 40 MP is more than any phone camera writes.
MAX_IMAGE_PIXELS = 40_000_000
# Animations with more frames are refused (only the first frame is ever decoded).
MAX_ANIMATION_FRAMES = 2_000

SUPPORTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp"}
_MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}

# Formats we recognise only to name them in a refusal.
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"%PDF", "PDF"),
)

RGBArray = npt.NDArray[np.uint8]


class ImageError(Exception):
    """A user image that cannot be used; `code` is stable, `message` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sniff_format(data: bytes) -> str | None:
    """The supported format the bytes start with ("JPEG", "PNG", "GIF", "WEBP"), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _name_unsupported(data: bytes) -> str | None:
    for signature, name in _OTHER_SIGNATURES:
        if data.startswith(signature):
            return name
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
        if brand in (b"avif", b"avis"):
            return "AVIF"
        return "a video"
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096]):
        return "SVG"
    return None


def image_extension(fmt: str) -> str:
    """File extension (with the dot) for a supported format name."""
    try:
        return _EXTENSIONS[fmt.upper()]
    except KeyError:
        raise ValueError(f"unsupported format {fmt!r}") from None


def image_mime_type(fmt: str) -> str:
    try:
        return _MIME_TYPES[fmt.upper()]
    except KeyError:
        raise ValueError(f"unsupported format {fmt!r}") from None


def load_image(data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES) -> Image.Image:
    """Decode user bytes into an RGB image (first frame, EXIF orientation applied).

    Raises ImageError with code `invalid_image`, `unsupported_image_format` or
    `image_too_large`.
    """
    if len(data) > max_bytes:
        raise ImageError(
            "image_too_large",
            f"The image is {len(data) / 1_048_576:.1f} MB; the limit is "
            f"{max_bytes / 1_048_576:.0f} MB.",
        )
    if not data:
        raise ImageError("invalid_image", "The image is empty.")
    fmt = sniff_format(data)
    if fmt is None:
        other = _name_unsupported(data)
        if other is not None:
            raise ImageError(
                "unsupported_image_format",
                f"{other} images are not supported; use JPEG, PNG, GIF or WebP.",
            )
        raise ImageError(
            "invalid_image", "The file is not an image (expected JPEG, PNG, GIF or WebP)."
        )
    with warnings.catch_warnings():
        # Pillow only warns between its own limit and twice that; for user input a warning
        # is as bad as the error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _decode(data, fmt)
        except ImageError:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ImageError("image_too_large", _too_many_pixels_message()) from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
            # Truncated data, corrupt chunks, bad headers: Pillow's messages are technical.
            raise ImageError(
                "invalid_image", f"The {fmt} image is damaged or incomplete and cannot be read."
            ) from exc


def _too_many_pixels_message() -> str:
    return (
        f"The image has too many pixels; the limit is {MAX_IMAGE_PIXELS / 1_000_000:.0f} "
        "megapixels."
    )


def _decode(data: bytes, fmt: str) -> Image.Image:
    img = Image.open(io.BytesIO(data), formats=[fmt])
    width, height = img.size
    # img.size comes from the header: nothing has been decoded yet.
    if width <= 0 or height <= 0:
        raise ImageError("invalid_image", "The image has no pixels.")
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError("image_too_large", _too_many_pixels_message())
    if fmt in ("WEBP", "PNG", "GIF"):
        # WebP and APNG state their frame count in a header. For GIF Pillow's `n_frames`
        # would decode every frame, so the blocks are walked without decoding any pixel.
        frames = gif_frame_count(data) if fmt == "GIF" else int(getattr(img, "n_frames", 1))
        if frames > MAX_ANIMATION_FRAMES:
            raise ImageError(
                "image_too_large",
                f"The animation has {frames} frames; the limit is {MAX_ANIMATION_FRAMES}.",
            )
    img.load()  # first frame only; raises on truncated or corrupt data
    oriented = ImageOps.exif_transpose(img)
    return _to_rgb(oriented if oriented is not None else img)


def gif_frame_count(data: bytes, *, limit: int = MAX_ANIMATION_FRAMES) -> int:
    """Frames in a GIF, counted from its block structure (no LZW decoding), stopping once
    past `limit`. A damaged structure counts what was seen; decoding reports the damage."""
    frames = 0
    pos = 13  # signature and logical screen descriptor
    if len(data) < pos:
        return 0
    if data[10] & 0x80:
        pos += 3 << ((data[10] & 0x07) + 1)  # global colour table
    while pos < len(data) and frames <= limit:
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x2C:  # image descriptor
            frames += 1
            if pos + 10 > len(data):
                break
            packed = data[pos + 9]
            pos += 10
            if packed & 0x80:
                pos += 3 << ((packed & 0x07) + 1)  # local colour table
            pos += 1  # LZW minimum code size
        elif block == 0x21:  # extension: introducer and label
            pos += 2
        else:
            break
        while pos < len(data) and data[pos]:  # data sub-blocks up to the terminator
            pos += data[pos] + 1
        pos += 1
    return frames


def _to_rgb(img: Image.Image) -> Image.Image:
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        # Transparent areas become black, like the letterboxing a video player draws.
        background = Image.new("RGB", rgba.size, (0, 0, 0))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale PNGs: Pillow's direct convert clips, scale to 8 bits first.
        arr = np.asarray(img, dtype=np.uint32) >> 8
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L").convert("RGB")
    return img.convert("RGB") if img.mode != "RGB" else img.copy()


def cover_crop(img: Image.Image, width: int, height: int) -> RGBArray:
    """Scale `img` to cover width x height, centre-crop, and return an HxWx3 uint8 array.

    Resampling uses Lanczos over the exact sub-pixel crop box, so nothing is cropped twice
    and the result is as sharp as the source allows.
    """
    if width <= 0 or height <= 0:
        raise ValueError("width and height must be positive")
    src_w, src_h = img.size
    scale = max(width / src_w, height / src_h)
    # min() guards against float error making the box a hair larger than the image.
    box_w = min(src_w, width / scale)
    box_h = min(src_h, height / scale)
    left = max(0.0, (src_w - box_w) / 2)
    top = max(0.0, (src_h - box_h) / 2)
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    resized = rgb.resize(
        (width, height),
        Image.Resampling.LANCZOS,
        box=(left, top, left + box_w, top + box_h),
        # Shrinking a big photo: a cheap box reduction first, Lanczos for the last factor.
        reducing_gap=3.0,
    )
    return np.asarray(resized, dtype=np.uint8)
