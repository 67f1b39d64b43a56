"""A visible label burnt into the frames: a small "AI-generated" in a corner, for deployers
who must disclose deepfake-like content visibly (EU AI Act Art. 50(4)). Off unless the
operator sets VIDEOGEN_VISIBLE_LABEL; applied in Mp4Writer, so every engine's frames get it.

White text on a translucent dark box in the bottom-right corner, sized to the frame (its
height about 1/28 of the short side, at least 12 px). The box and the text are drawn once
per video, as blend masks over the Y plane and the two chroma planes; each frame costs one
blend of a small region."""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

DEFAULT_TEXT = "AI-generated"
# Box opacity (how much the content under the box is darkened) and the text's luma.
BOX_OPACITY = 0.55
TEXT_LUMA = 235.0
MARGIN_FRACTION = 0.025

Plane = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Masks:
    x: int
    y: int
    box: Mask  # 0..1 over the region: the dark box
    text: Mask  # 0..1: the letters


class Label:
    def __init__(self, text: str, width: int, height: int) -> None:
        self.text = text
        short = min(width, height)
        size = max(12, round(short / 28))
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = (int(v) for v in font.getbbox(text))
        pad = max(3, size // 3)
        w = min(width, (right - left) + 2 * pad) // 2 * 2
        h = min(height, (bottom - top) + 2 * pad) // 2 * 2
        margin = max(2, round(short * MARGIN_FRACTION)) // 2 * 2
        x, y = max(0, width - w - margin), max(0, height - h - margin)
        canvas = Image.new("L", (w, h), 0)
        ImageDraw.Draw(canvas).text((pad - left, pad - top), text, fill=255, font=font)
        letters = np.asarray(canvas, dtype=np.float32) / 255.0
        self.luma = _Masks(x, y, np.full((h, w), BOX_OPACITY, np.float32), letters)
        half = np.asarray(canvas.resize((w // 2, h // 2), Image.Resampling.BOX), np.float32)
        half /= np.float32(255)
        self.chroma = _Masks(x // 2, y // 2, np.zeros_like(half), half)

    def planes(self, y: Plane, u: Plane, v: Plane) -> None:
        """Burn the label into the three planes of a yuv420p frame, in place."""
        _blend(y, self.luma, 16.0, TEXT_LUMA)
        _blend(u, self.chroma, 128.0, 128.0)
        _blend(v, self.chroma, 128.0, 128.0)

    def frame(self, frame: av.VideoFrame) -> None:
        """Burn the label into a PyAV yuv420p frame's own planes."""
        views = []
        for index, plane in enumerate(frame.planes[:3]):
            rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
            width = frame.width if index == 0 else frame.width // 2
            height = frame.height if index == 0 else frame.height // 2
            views.append(rows[:height, :width])
        self.planes(*views)


def _blend(plane: Plane, masks: _Masks, dark: float, bright: float) -> None:
    h, w = masks.text.shape
    region = plane[masks.y : masks.y + h, masks.x : masks.x + w]
    if region.shape != (h, w):
        return  # a frame smaller than the label: left alone
    values = region.astype(np.float32)
    values += (dark - values) * masks.box  # the box: towards black (or neutral chroma)
    values += (bright - values) * masks.text  # the letters: white
    np.clip(values + 0.5, 0, 255, out=values)
    region[...] = values.astype(np.uint8)
