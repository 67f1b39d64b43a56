"""Helpers shared by the media and engine tests."""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from generations.media.watermark import Mark


def animation_ms(path: Path) -> int:
    """Total display time of an animated image (e.g. the WebP preview), in milliseconds."""
    total = 0
    with Image.open(path) as img:
        for i in range(getattr(img, "n_frames", 1)):
            img.seek(i)
            img.load()
            total += int(img.info["duration"])
    return total


# Synthetic clips whose frames say who they are: a band of 8 blocks for the frame index and
# one for the shot number (white = 1) over a panning multi-scale texture, so that x264 has
# real detail to keep. Sizes divisible by 8 blocks: 320 or 256 wide.
ID_BAND = 16


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 arrays, in dB (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


@functools.cache
def _texture(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    big_w, big_h = width * 3, height + 8
    texture = np.zeros((big_h, big_w, 3), np.float32)
    for scale, weight in ((2, 30.0), (8, 50.0), (32, 80.0), (128, 90.0)):
        noise = rng.random((big_h // scale + 2, big_w // scale + 2, 3)).astype(np.float32)
        texture += cv2.resize(noise, (big_w, big_h), interpolation=cv2.INTER_CUBIC) * weight
    return np.clip(texture, 0, 255).astype(np.uint8)


def id_frame(shot: int, index: int, width: int = 320, height: int = 180) -> np.ndarray:
    """Frame `index` of shot `shot`: the texture panned by 2 px a frame, the ids on top."""
    x = (2 * index + 97 * shot) % (2 * width)
    frame = _texture(width, height, 7)[:height, x : x + width].copy()
    block = width // 8
    for row, value in enumerate((index, shot)):
        for bit in range(8):
            on = (value >> (7 - bit)) & 1
            frame[row * ID_BAND : (row + 1) * ID_BAND, bit * block : (bit + 1) * block] = (
                235 if on else 20
            )
    return frame


def read_id(frame_yuv: np.ndarray, width: int = 320) -> tuple[int, int]:
    """(shot, index) from a decoded frame (the Y plane of a yuv420p ndarray, or RGB)."""
    luma = frame_yuv if frame_yuv.ndim == 2 else frame_yuv.mean(axis=2)
    block = width // 8
    values = []
    for row in range(2):
        value = 0
        for bit in range(8):
            cell = luma[
                row * ID_BAND + 4 : (row + 1) * ID_BAND - 4, bit * block + 4 : (bit + 1) * block - 4
            ]
            value = value * 2 + int(cell.mean() > 128)
        values.append(value)
    return values[1], values[0]


def tone(seconds: float, freq: float, *, phase: float = 0.0, amp: float = 0.3) -> np.ndarray:
    """A stereo sine at 48 kHz, shape (n, 2) float32."""
    t = np.arange(round(seconds * 48_000)) / 48_000
    wave = (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)
    return np.stack([wave, wave], axis=1)


def make_clip(
    path: Path,
    frames: int,
    shot: int,
    *,
    width: int = 320,
    height: int = 180,
    fps: int = 30,
    audio: np.ndarray | None = None,
    first: np.ndarray | None = None,
    crf: int | None = None,
) -> Path:
    """A clip of `frames` id frames of `shot` (frame 0 replaced by `first` when given)."""
    from generations.media.encode import X264_CRF, Mp4Writer

    with Mp4Writer(path, width, height, fps, audio, crf=crf or X264_CRF) as writer:
        for index in range(frames):
            if index == 0 and first is not None:
                writer.write(first)
            else:
                writer.write(id_frame(shot, index, width, height))
    return path


def decode_yuv(path: Path) -> list[np.ndarray]:
    """Every frame of the video as a yuv420p ndarray (height * 3 / 2, width)."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]


def decode_audio(path: Path) -> np.ndarray:
    """The first audio stream as float32 (n, 2)."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
    return np.concatenate(frames, axis=1).T.astype(np.float32)


def transcode(
    src: Path,
    dst: Path,
    *,
    crf: int = 23,
    scale: float = 1.0,
    start: float = 0.0,
    seconds: float | None = None,
    preset: str = "medium",
) -> Path:
    """What a platform does to an upload: decode, keep `seconds` from `start` (all by
    default), scale by `scale` (to even sizes, aspect kept) and encode with libx264 at `crf`
    (ffmpeg's defaults: crf 23, preset medium). Every attack re-encodes, a cut included."""
    with av.open(str(src)) as source, av.open(str(dst), mode="w") as out:
        video = source.streams.video[0]
        video.thread_type = "AUTO"
        rate = video.average_rate or 30
        width = 2 * round(video.codec_context.width * scale / 2)
        height = 2 * round(video.codec_context.height * scale / 2)
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        stream.codec_context.thread_type = "FRAME"
        written = 0
        for frame in source.decode(video):
            t = frame.time or 0.0
            if t < start - 1e-6:
                continue
            if seconds is not None and t >= start + seconds - 1e-6:
                break
            scaled = frame.reformat(width=width, height=height, format="yuv420p")
            scaled.pts = written
            scaled.time_base = Fraction(1) / Fraction(rate)
            out.mux(stream.encode(scaled))
            written += 1
        out.mux(stream.encode(None))
    return dst


def local_video(
    path: Path,
    prompt: str,
    *,
    width: int,
    height: int,
    seconds: float,
    seed: int = 1,
    fps: int = 30,
    mark: Mark | None = None,
) -> Path:
    """A local-engine text-to-video clip (frames only, no audio), through Mp4Writer, marked
    with `mark` when given."""
    from generations.media.encode import Mp4Writer, new_i420
    from generations.rendering.local.procedural import TextVideo
    from generations.spec import GenerationSpec

    frames = round(seconds * fps)
    spec = GenerationSpec(
        model="local",
        mode="text-to-video",
        prompt=prompt,
        negative_prompt="",
        image_url="",
        duration=math.ceil(seconds),
        resolution=f"{min(width, height)}p",
        aspect_ratio="16:9",
        width=width,
        height=height,
        fps=fps,
        num_frames=frames,
        seed=seed,
        camera_fixed=False,
        add_audio=False,
        audio_prompt="",
        style="",
        cfg_scale=None,
        guidance_scale=None,
        enable_safety_checker=False,
    )
    source = TextVideo(spec)
    buffer = new_i420(width, height)
    with Mp4Writer(path, width, height, fps, mark=mark) as writer:
        for index in range(frames):
            source.i420(index, buffer)
            writer.write_i420(buffer)
    return path
