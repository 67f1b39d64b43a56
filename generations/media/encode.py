"""Streaming MP4 (H.264 + AAC) writer, poster and preview images, and a probe for checks.

Frames go to the encoder one at a time, so a 60 s 4K render never holds more than a frame
or two in memory. Outputs follow the contract (section 5): H.264 yuv420p, BT.709 both in
the pixel conversion and in the stream tags, `faststart`, exact frame count and duration.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.video.stream import VideoStream
from PIL import Image

AUDIO_SAMPLE_RATE = 48_000
AUDIO_CHANNELS = 2
# AAC frames hold 1024 samples; feeding the encoder whole frames avoids a resampler.
AAC_FRAME_SAMPLES = 1024
AUDIO_BITRATE = 160_000

VIDEO_CODEC = "libx264"
X264_PRESET = "veryfast"
X264_CRF = 20

POSTER_QUALITY = 88
PREVIEW_WIDTH = 480
PREVIEW_FPS = 12
PREVIEW_MAX_SECONDS = 2.0
PREVIEW_MAX_FRAMES = int(PREVIEW_FPS * PREVIEW_MAX_SECONDS)
PREVIEW_QUALITY = 70

# FFmpeg's AVCOL_* numbers for BT.709 (primaries, transfer and matrix share the value 1)
# and AVCOL_RANGE_MPEG (limited, 16-235): what every browser assumes for HD video.
_BT709 = 1
_RANGE_LIMITED = 1

# ffprobe's names for the colour numbers we may meet when probing.
_COLOR_NAMES: dict[int, str] = {
    0: "gbr",
    1: "bt709",
    2: "unknown",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020nc",
    13: "iec61966-2-1",
    14: "bt2020-10",
    16: "smpte2084",
    18: "arib-std-b67",
}
_PRIMARIES_NAMES: dict[int, str] = {
    1: "bt709",
    2: "unknown",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    9: "bt2020",
}
_TRC_NAMES: dict[int, str] = {
    1: "bt709",
    2: "unknown",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    13: "iec61966-2-1",
    14: "bt2020-10",
    16: "smpte2084",
    18: "arib-std-b67",
}

RGBFrame = npt.NDArray[np.uint8]
AudioSamples = npt.NDArray[np.float32]


def audio_samples_for(num_frames: int, fps: int) -> int:
    """Samples that cover exactly `num_frames` video frames (rounded to the nearest sample)."""
    return round(num_frames * AUDIO_SAMPLE_RATE / fps)


class Mp4Writer:
    """Context manager that encodes RGB frames to an MP4 as they arrive.

    `audio`, when given, is float32 stereo at 48 kHz, shape (n, 2); it is cut or padded
    with silence on close so that it lasts exactly as long as the frames written.
    On an exception inside the `with` block the partial file is removed.
    """

    def __init__(
        self,
        path: Path | str,
        width: int,
        height: int,
        fps: int,
        audio: AudioSamples | None = None,
        *,
        crf: int = X264_CRF,
        preset: str = X264_PRESET,
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            # yuv420p subsamples chroma 2x2: odd sizes cannot be encoded exactly.
            raise ValueError(f"width and height must be positive and even, got {width}x{height}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if audio is not None:
            audio = np.asarray(audio, dtype=np.float32)
            if audio.ndim != 2 or audio.shape[1] != AUDIO_CHANNELS:
                raise ValueError(f"audio must have shape (n, 2), got {audio.shape}")
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = fps
        self.frames_written = 0
        self._audio = audio
        self._audio_pos = 0
        self._closed = False

        # faststart: moov goes before mdat so browsers can start playing before the end.
        self._container = av.open(
            str(self.path), mode="w", format="mp4", options={"movflags": "faststart"}
        )
        try:
            video = self._container.add_stream(VIDEO_CODEC, rate=fps)
            assert isinstance(video, VideoStream)
            self._video = video
            self._video.width = width
            self._video.height = height
            self._video.pix_fmt = "yuv420p"
            self._video.time_base = Fraction(1, fps)
            ctx = self._video.codec_context
            ctx.time_base = Fraction(1, fps)
            # Tags in the codec context end up in the H.264 VUI and the mp4 `colr` box.
            ctx.color_primaries = _BT709
            ctx.color_trc = _BT709
            ctx.colorspace = _BT709
            ctx.color_range = _RANGE_LIMITED
            self._video.options = {"crf": str(crf), "preset": preset}
            self._audio_stream: AudioStream | None = None
            if audio is not None:
                astream = self._container.add_stream("aac", rate=AUDIO_SAMPLE_RATE)
                assert isinstance(astream, AudioStream)
                self._audio_stream = astream
                self._audio_stream.layout = "stereo"
                self._audio_stream.bit_rate = AUDIO_BITRATE
                self._audio_stream.time_base = Fraction(1, AUDIO_SAMPLE_RATE)
        except BaseException:
            self._container.close()
            self.path.unlink(missing_ok=True)
            raise

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, frame: RGBFrame) -> None:
        """Encode one HxWx3 uint8 RGB frame; its timestamp is its index."""
        if self._closed:
            raise ValueError("writer is closed")
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"expected a {self.height}x{self.width}x3 uint8 frame, "
                f"got {frame.shape} {frame.dtype}"
            )
        rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        # swscale uses BT.601 unless told otherwise; convert with the matrix we tag.
        yuv = rgb.reformat(
            format="yuv420p",
            src_colorspace="ITU709",
            dst_colorspace="ITU709",
            src_color_range="JPEG",
            dst_color_range="MPEG",
        )
        yuv.pts = self.frames_written
        yuv.time_base = Fraction(1, self.fps)
        self._mux(self._video.encode(yuv))
        self.frames_written += 1
        if self._audio_stream is not None:
            # Interleave: keep audio encoded up to the end of the frame just written.
            self._push_audio(audio_samples_for(self.frames_written, self.fps))

    def close(self) -> None:
        """Flush the encoders and finish the file (moov moved to the front)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.frames_written == 0:
                raise ValueError("no frames were written")
            self._mux(self._video.encode(None))
            if self._audio_stream is not None:
                self._push_audio(audio_samples_for(self.frames_written, self.fps), final=True)
                self._mux(self._audio_stream.encode(None))
        except BaseException:
            self._container.close()
            self.path.unlink(missing_ok=True)
            raise
        self._container.close()

    def abort(self) -> None:
        """Stop without finishing: the partial file is removed."""
        if self._closed:
            return
        self._closed = True
        # Closing a half-written container may fail; the file goes away anyway.
        with contextlib.suppress(av.FFmpegError, ValueError):
            self._container.close()
        self.path.unlink(missing_ok=True)

    def _mux(self, packets: Sequence[Any]) -> None:
        for packet in packets:
            self._container.mux(packet)

    def _push_audio(self, until: int, *, final: bool = False) -> None:
        assert self._audio is not None and self._audio_stream is not None
        # Whole AAC frames only, except the last one which may be short.
        while until - self._audio_pos >= AAC_FRAME_SAMPLES or (final and self._audio_pos < until):
            count = min(AAC_FRAME_SAMPLES, until - self._audio_pos)
            chunk = self._audio[self._audio_pos : self._audio_pos + count]
            if len(chunk) < count:
                # The caller's audio is shorter than the video: pad with silence.
                chunk = np.concatenate([chunk, np.zeros((count - len(chunk), 2), np.float32)])
            planar = np.ascontiguousarray(chunk.T)
            aframe = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
            aframe.sample_rate = AUDIO_SAMPLE_RATE
            aframe.pts = self._audio_pos
            aframe.time_base = Fraction(1, AUDIO_SAMPLE_RATE)
            self._mux(self._audio_stream.encode(aframe))
            self._audio_pos += count


def write_poster(frame: RGBFrame, path: Path | str) -> Path:
    """Save a frame as a JPEG poster."""
    out = Path(path)
    Image.fromarray(frame, mode="RGB").save(
        out, format="JPEG", quality=POSTER_QUALITY, optimize=True, progressive=True
    )
    return out


def preview_size(width: int, height: int) -> tuple[int, int]:
    """Preview dimensions: PREVIEW_WIDTH wide (never upscaled), height keeping the aspect."""
    w = min(PREVIEW_WIDTH, width)
    h = max(2, round(height * w / width))
    return w, h


def downscale_for_preview(frame: RGBFrame) -> RGBFrame:
    h, w = frame.shape[:2]
    pw, ph = preview_size(w, h)
    if (pw, ph) == (w, h):
        return frame.copy()
    # INTER_AREA averages source pixels: no aliasing when shrinking 4K to 480 px.
    return np.asarray(cv2.resize(frame, (pw, ph), interpolation=cv2.INTER_AREA), dtype=np.uint8)


def write_preview(frames: Sequence[RGBFrame], path: Path | str, fps: int = PREVIEW_FPS) -> Path:
    """Save frames (already preview-sized or not) as a looping animated WebP."""
    if not frames:
        raise ValueError("a preview needs at least one frame")
    images = [Image.fromarray(downscale_for_preview(f), mode="RGB") for f in frames]
    out = Path(path)
    images[0].save(
        out,
        format="WEBP",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),
        loop=0,
        quality=PREVIEW_QUALITY,
        method=4,
    )
    return out


class PreviewCollector:
    """Keeps downscaled copies of a few evenly spaced frames while a video streams past."""

    def __init__(self, total_frames: int, max_frames: int = PREVIEW_MAX_FRAMES) -> None:
        count = max(1, min(max_frames, total_frames))
        # Evenly spaced indices over the whole clip, first frame included.
        self._wanted = {math.floor(i * total_frames / count) for i in range(count)}
        self.frames: list[RGBFrame] = []

    def offer(self, index: int, frame: RGBFrame) -> None:
        if index in self._wanted:
            self.frames.append(downscale_for_preview(frame))

    def save(self, path: Path | str) -> Path:
        return write_preview(self.frames, path)


def probe(path: Path | str, *, count_frames: bool = True) -> dict[str, Any]:
    """Describe an MP4: what the tests and the worker check before accepting an output.

    With `count_frames` every video frame is decoded and counted (the number a player
    shows); without it the count comes from the container's packets (fast).
    """
    with av.open(str(path)) as container:
        vstreams = list(container.streams.video)
        astreams = list(container.streams.audio)
        if not vstreams:
            raise ValueError("no video stream")
        video = vstreams[0]
        ctx = video.codec_context
        rate = video.average_rate or video.guessed_rate or video.base_rate
        info: dict[str, Any] = {
            "width": int(ctx.width),
            "height": int(ctx.height),
            "fps": float(rate) if rate else 0.0,
            "codec": ctx.name,
            "pix_fmt": ctx.pix_fmt,
            "color_space": _COLOR_NAMES.get(int(ctx.colorspace), str(int(ctx.colorspace))),
            "color_primaries": _PRIMARIES_NAMES.get(
                int(ctx.color_primaries), str(int(ctx.color_primaries))
            ),
            "color_trc": _TRC_NAMES.get(int(ctx.color_trc), str(int(ctx.color_trc))),
            "color_range": {1: "tv", 2: "pc"}.get(int(ctx.color_range), "unknown"),
            "has_audio": bool(astreams),
            "audio_codec": None,
            "audio_sample_rate": None,
            "audio_channels": None,
            "audio_duration": None,
        }
        vtb = video.time_base
        info["duration"] = (
            float(video.duration * vtb) if video.duration is not None and vtb else None
        )
        if astreams:
            audio = astreams[0]
            actx = audio.codec_context
            info["audio_codec"] = actx.name
            info["audio_sample_rate"] = int(actx.sample_rate)
            info["audio_channels"] = int(actx.channels)
            atb = audio.time_base
            if audio.duration is not None and atb:
                info["audio_duration"] = float(audio.duration * atb)
        if count_frames:
            video.thread_type = "AUTO"
            info["frame_count"] = sum(1 for _ in container.decode(video))
        else:
            info["frame_count"] = sum(1 for p in container.demux(video) if p.size)
        if info["duration"] is None and info["fps"]:
            info["duration"] = info["frame_count"] / info["fps"]
    return info


def top_level_boxes(path: Path | str) -> list[str]:
    """The MP4's top-level box types in file order (e.g. to check that moov precedes mdat)."""
    kinds: list[str] = []
    with open(path, "rb") as fh:
        while True:
            header = fh.read(8)
            if len(header) < 8:
                break
            size = int.from_bytes(header[:4], "big")
            kind = header[4:8].decode("latin-1")
            kinds.append(kind)
            if size == 1:
                size = int.from_bytes(fh.read(8), "big")
                fh.seek(size - 16, 1)
            elif size == 0:
                break
            else:
                fh.seek(size - 8, 1)
    return kinds
