"""Helpers shared by the media and engine tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def animation_ms(path: Path) -> int:
    """Total display time of an animated image (e.g. the WebP preview), in milliseconds."""
    total = 0
    with Image.open(path) as img:
        for i in range(getattr(img, "n_frames", 1)):
            img.seek(i)
            img.load()
            total += int(img.info["duration"])
    return total
