"""Streaming MP4 (H.264 + AAC) writer, poster, preview and spritesheet images, and a probe.

Frames go to the encoder one at a time, so a 60 s 4K render never holds more than a frame
or two in memory. Outputs follow the contract (section 5): H.264 yuv420p, BT.709 both in
the pixel conversion and in the stream tags, `faststart`, exact frame count and duration.

Frames arrive either as RGB (`Mp4Writer.write`, converted by swscale) or already as planar
BT.709 limited-range I420 (`Mp4Writer.write_i420`, no conversion): an engine that renders
straight to Y'CbCr saves the colour conversion, the largest per-pixel cost after x264.
`rgb_to_i420` and `i420_to_rgb` use the same BT.709 matrix for the few frames that need
the other form (posters, previews, thumbnails).
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from collections.abc import Callable, Sequence
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

from generations.media.label import Label
from generations.media.watermark import Embedder, Mark

AUDIO_SAMPLE_RATE = 48_000
AUDIO_CHANNELS = 2
# AAC frames hold 1024 samples; feeding the encoder whole frames avoids a resampler.
AAC_FRAME_SAMPLES = 1024
AUDIO_BITRATE = 160_000

VIDEO_CODEC = "libx264"
X264_PRESET = "veryfast"
X264_CRF = 20

POSTER_QUALITY = 88
# Spritesheet: up to SPRITE_MAX_CELLS thumbnails in a near-square grid, SPRITE_THUMB_WIDTH wide.
SPRITE_MAX_CELLS = 25
SPRITE_THUMB_WIDTH = 240
SPRITE_QUALITY = 82
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
I420Frame = npt.NDArray[np.uint8]
AudioSamples = npt.NDArray[np.float32]

# BT.709 luma weights and the limited-range (16-235 luma, 16-240 chroma) scale.
KR, KB = 0.2126, 0.0722
KG = 1.0 - KR - KB
_RGB_TO_YCBCR = np.array(
    [
        [KR * 219 / 255, KG * 219 / 255, KB * 219 / 255],
        [-KR / (2 - 2 * KB) * 224 / 255, -KG / (2 - 2 * KB) * 224 / 255, 0.5 * 224 / 255],
        [0.5 * 224 / 255, -KG / (2 - 2 * KR) * 224 / 255, -KB / (2 - 2 * KR) * 224 / 255],
    ],
    dtype=np.float32,
)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float32)
# The same as one affine 3x4 matrix (offset in the last column) for cv2.transform.
_RGB_TO_YCBCR_AFFINE = np.hstack([_RGB_TO_YCBCR, _YCBCR_OFFSET[:, None]]).astype(np.float32)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR.astype(np.float64)).astype(np.float32)
_YCBCR_TO_RGB_OFFSET = -(_YCBCR_TO_RGB @ _YCBCR_OFFSET)
_YCBCR_TO_RGB_AFFINE = np.hstack([_YCBCR_TO_RGB, _YCBCR_TO_RGB_OFFSET[:, None]]).astype(np.float32)


def i420_planes(
    buffer: I420Frame, width: int, height: int
) -> tuple[I420Frame, I420Frame, I420Frame]:
    """Views of the Y, Cb and Cr planes of a flat I420 buffer (writing to them fills it)."""
    flat = buffer.reshape(-1)
    size = width * height
    quarter = size // 4
    y = flat[:size].reshape(height, width)
    u = flat[size : size + quarter].reshape(height // 2, width // 2)
    v = flat[size + quarter : size + 2 * quarter].reshape(height // 2, width // 2)
    return y, u, v


def new_i420(width: int, height: int) -> I420Frame:
    """An uninitialised I420 buffer shaped as PyAV wants it: (height * 3 / 2, width)."""
    return np.empty((height * 3 // 2, width), dtype=np.uint8)


def rgb_to_ycbcr(rgb: npt.NDArray[np.float32], white: float = 255.0) -> npt.NDArray[np.float32]:
    """Float RGB (0-`white` scale) to float BT.709 limited-range Y'CbCr (8-bit code values)."""
    matrix = _RGB_TO_YCBCR_AFFINE
    if white != 255.0:
        # Scaling the matrix costs nothing; scaling the image is a pass over it.
        matrix = np.hstack([_RGB_TO_YCBCR * np.float32(255.0 / white), _YCBCR_OFFSET[:, None]])
    return np.asarray(cv2.transform(rgb, matrix.astype(np.float32)), dtype=np.float32)


def rgb_to_i420(frame: RGBFrame) -> I420Frame:
    """An RGB uint8 frame as BT.709 limited-range I420 (chroma averaged over 2x2 blocks)."""
    height, width = frame.shape[:2]
    # uint8 in, uint8 out (rounded, saturated): one pass, no float copy of a 4K frame.
    ycc = cv2.transform(np.ascontiguousarray(frame), _RGB_TO_YCBCR_AFFINE)
    out = new_i420(width, height)
    y, u, v = i420_planes(out, width, height)
    y[...] = ycc[..., 0]
    chroma = cv2.resize(ycc[..., 1:], (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    u[...] = chroma[..., 0]
    v[...] = chroma[..., 1]
    return out


def i420_to_rgb(
    buffer: I420Frame, width: int, height: int, size: tuple[int, int] | None = None
) -> RGBFrame:
    """An I420 frame as RGB uint8, optionally resized to `size` (w, h) before converting."""
    y, u, v = i420_planes(buffer, width, height)
    out_w, out_h = size or (width, height)
    luma = y if (out_w, out_h) == (width, height) else _resize(y, out_w, out_h)
    cb = _resize(u, out_w, out_h)
    cr = _resize(v, out_w, out_h)
    # uint8 in, uint8 out (rounded, saturated): one pass, no float copy of a 4K frame.
    ycc = cv2.merge([np.ascontiguousarray(luma), cb, cr])
    return np.asarray(cv2.transform(ycc, _YCBCR_TO_RGB_AFFINE), dtype=np.uint8)


def _resize(plane: I420Frame, width: int, height: int) -> I420Frame:
    shrink = width < plane.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(plane, (width, height), interpolation=interpolation))


def audio_samples_for(num_frames: int, fps: int) -> int:
    """Samples that cover exactly `num_frames` video frames (rounded to the nearest sample)."""
    return round(num_frames * AUDIO_SAMPLE_RATE / fps)


def _checked_audio(audio: npt.ArrayLike) -> AudioSamples:
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 2 or samples.shape[1] != AUDIO_CHANNELS:
        raise ValueError(f"audio must have shape (n, 2), got {samples.shape}")
    return samples


class _AudioTrack:
    """Encodes the AAC stream on a thread of its own, never ahead of the video.

    The writer says how far the video has got (`advance`); this thread encodes the whole AAC
    frames up to there while x264 works on the frames (libavcodec runs without the GIL), and
    leaves the packets for the writer's thread to mux (`take`): one thread muxes, and the
    file stays interleaved. A `source` callable (synthesis) is called here too, so it also
    overlaps the first frames.
    """

    def __init__(self, stream: AudioStream, source: AudioSamples | Callable[[], AudioSamples]):
        self.stream = stream
        self.source = source
        self.until = 0
        self.final = False
        self.stopped = False
        self.error: BaseException | None = None
        self.packets: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="aac", daemon=True)
        self.thread.start()

    def advance(self, until: int, *, final: bool = False) -> None:
        """Let the thread encode up to sample `until`; `final`: then pad, flush and stop."""
        with self.changed:
            self.until = until
            self.final = final
            self.changed.notify()

    def take(self) -> list[Any]:
        """The packets encoded and not taken yet; the thread's error, if it failed."""
        if self.error is not None:
            raise self.error
        packets = []
        with contextlib.suppress(queue.Empty):
            while True:
                packets.append(self.packets.get_nowait())
        return packets

    def finish(self) -> list[Any]:
        """Wait for the flush that `advance(..., final=True)` asked for; the last packets."""
        self.thread.join()
        return self.take()

    def stop(self) -> None:
        """Abandon the track (the stream must not be used once the container closes)."""
        with self.changed:
            self.stopped = True
            self.changed.notify()
        self.thread.join()

    def _run(self) -> None:
        try:
            samples = _checked_audio(self.source() if callable(self.source) else self.source)
            pos = 0
            while True:
                with self.changed:
                    while not (self.stopped or self.final or self.until - pos >= AAC_FRAME_SAMPLES):
                        self.changed.wait()
                    if self.stopped:
                        return
                    until, final = self.until, self.final
                pos = self._encode(samples, pos, until, final)
                if final:
                    for packet in self.stream.encode(None):
                        self.packets.put(packet)
                    return
        except BaseException as exc:  # handed to the writer's thread by `take`
            self.error = exc

    def _encode(self, samples: AudioSamples, pos: int, until: int, final: bool) -> int:
        # Whole AAC frames only, except the last one which may be short.
        while until - pos >= AAC_FRAME_SAMPLES or (final and pos < until):
            count = min(AAC_FRAME_SAMPLES, until - pos)
            chunk = samples[pos : pos + count]
            if len(chunk) < count:
                # The caller's audio is shorter than the video: pad with silence.
                chunk = np.concatenate([chunk, np.zeros((count - len(chunk), 2), np.float32)])
            planar = np.ascontiguousarray(chunk.T)
            aframe = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
            aframe.sample_rate = AUDIO_SAMPLE_RATE
            aframe.pts = pos
            aframe.time_base = Fraction(1, AUDIO_SAMPLE_RATE)
            for packet in self.stream.encode(aframe):
                self.packets.put(packet)
            pos += count
        return pos


class Mp4Writer:
    """Context manager that encodes RGB frames to an MP4 as they arrive.

    `audio`, when given, is float32 stereo at 48 kHz, shape (n, 2), or a function that
    returns it (called on the writer's audio thread, so that making the sound overlaps the
    video); it is cut or padded with silence on close so that it lasts exactly as long as
    the frames written. AAC is encoded on that thread, alongside x264.
    `mark`, when given, is embedded in every frame, by either path (media/watermark.py);
    `label`, when not empty, is burnt into a corner of every frame first (media/label.py).
    On an exception inside the `with` block the partial file is removed.
    """

    def __init__(
        self,
        path: Path | str,
        width: int,
        height: int,
        fps: int,
        audio: AudioSamples | Callable[[], AudioSamples] | None = None,
        *,
        crf: int = X264_CRF,
        preset: str = X264_PRESET,
        mark: Mark | None = None,
        label: str = "",
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            # yuv420p subsamples chroma 2x2: odd sizes cannot be encoded exactly.
            raise ValueError(f"width and height must be positive and even, got {width}x{height}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if audio is not None and not callable(audio):
            audio = _checked_audio(audio)
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = fps
        self.frames_written = 0
        self._closed = False
        self._audio_track: _AudioTrack | None = None
        # The invisible watermark (media/watermark.py), added to every frame's Y plane after
        # its conversion to I420, just before x264.
        self._embedder = Embedder(mark, width, height) if mark is not None else None
        self._label = Label(label, width, height) if label else None

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
            # Frame threads (what the ffmpeg command line uses): x264 encodes several frames
            # at once in the background while the caller prepares the next; PyAV's default,
            # slice threads, encodes each frame inside the call and is about 1.7x slower.
            ctx.thread_type = "FRAME"
            self._audio_stream: AudioStream | None = None
            if audio is not None:
                astream = self._container.add_stream("aac", rate=AUDIO_SAMPLE_RATE)
                assert isinstance(astream, AudioStream)
                self._audio_stream = astream
                self._audio_stream.layout = "stereo"
                self._audio_stream.bit_rate = AUDIO_BITRATE
                # The fast coder: half the CPU time of the default (twoloop), and ambient
                # beds do not need the search for the last fraction of quality.
                self._audio_stream.options = {"aac_coder": "fast"}
                self._audio_stream.time_base = Fraction(1, AUDIO_SAMPLE_RATE)
            # Open the codecs and write the header now, on this thread, before the audio
            # thread starts using its codec (otherwise the first mux would open it).
            self._container.start_encoding()
            if self._audio_stream is not None:
                assert audio is not None
                self._audio_track = _AudioTrack(self._audio_stream, audio)
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
        self._encode(yuv)

    def _encode(self, yuv: av.VideoFrame) -> None:
        if self._label is not None:
            self._label.frame(yuv)
        if self._embedder is not None:
            # In the frame's own planes: the caller's buffer (write_i420) is left unmarked.
            self._embedder.frame(yuv)
        yuv.pts = self.frames_written
        yuv.time_base = Fraction(1, self.fps)
        self._mux(self._video.encode(yuv))
        self.frames_written += 1
        if self._audio_track is not None:
            # Interleave: audio is encoded up to the end of the frame just written, and muxed
            # as its packets come.
            self._audio_track.advance(audio_samples_for(self.frames_written, self.fps))
            self._mux(self._audio_track.take())

    def write_i420(self, buffer: I420Frame) -> None:
        """Encode one frame given as BT.709 limited-range I420, shape (height * 3 / 2, width).

        The buffer is copied before this returns, so the caller may reuse it.
        """
        if self._closed:
            raise ValueError("writer is closed")
        if buffer.shape != (self.height * 3 // 2, self.width) or buffer.dtype != np.uint8:
            raise ValueError(
                f"expected a {self.height * 3 // 2}x{self.width} uint8 I420 buffer, "
                f"got {buffer.shape} {buffer.dtype}"
            )
        yuv = av.VideoFrame.from_ndarray(buffer, format="yuv420p")
        self._encode(yuv)

    def close(self) -> None:
        """Flush the encoders and finish the file (moov moved to the front)."""
        if self._closed:
            return
        self._closed = True
        track = self._audio_track
        try:
            if self.frames_written == 0:
                raise ValueError("no frames were written")
            if track is not None:
                # The audio's tail and flush overlap x264's.
                track.advance(audio_samples_for(self.frames_written, self.fps), final=True)
            self._mux(self._video.encode(None))
            if track is not None:
                self._mux(track.finish())
        except BaseException:
            if track is not None:
                track.stop()
            self._container.close()
            self.path.unlink(missing_ok=True)
            raise
        self._container.close()

    def abort(self) -> None:
        """Stop without finishing: the partial file is removed."""
        if self._closed:
            return
        self._closed = True
        if self._audio_track is not None:
            self._audio_track.stop()
        # Closing a half-written container may fail; the file goes away anyway.
        with contextlib.suppress(av.FFmpegError, ValueError):
            self._container.close()
        self.path.unlink(missing_ok=True)

    def _mux(self, packets: Sequence[Any]) -> None:
        for packet in packets:
            self._container.mux(packet)


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


def shrink(frame: RGBFrame, size: tuple[int, int]) -> RGBFrame:
    """A thumbnail of `frame` at `size` (width, height). Thumbnails shrink by 2-8x: 2x2
    averaging down to within 2x, then linear interpolation; as smooth as INTER_AREA at a
    fraction of its cost for non-integer ratios."""
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    while frame.shape[1] >= 2 * size[0] and frame.shape[0] >= 2 * size[1]:
        frame = np.asarray(cv2.pyrDown(frame), dtype=np.uint8)
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)


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
        # method 1: a third of the default's (4) encoding time for a slightly larger file.
        method=1,
    )
    return out


def evenly_spaced(total_frames: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over the clip, the first frame included."""
    count = max(1, min(count, total_frames))
    return sorted({math.floor(i * total_frames / count) for i in range(count)})


class PreviewCollector:
    """Keeps downscaled copies of a few evenly spaced frames while a video streams past."""

    def __init__(self, total_frames: int, max_frames: int = PREVIEW_MAX_FRAMES) -> None:
        self.indices = evenly_spaced(total_frames, max_frames)
        self._wanted = set(self.indices)
        self.frames: list[RGBFrame] = []

    def wants(self, index: int) -> bool:
        return index in self._wanted

    def offer(self, index: int, frame: RGBFrame) -> None:
        """Keep `frame` (any size; it is downscaled here) if `index` is one of ours."""
        if index in self._wanted:
            self.frames.append(downscale_for_preview(frame))

    def save(self, path: Path | str) -> Path:
        return write_preview(self.frames, path)


def sprite_grid(count: int) -> tuple[int, int]:
    """(columns, rows) of the smallest near-square grid that holds `count` thumbnails."""
    columns = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    return columns, rows


def sprite_thumb_size(width: int, height: int) -> tuple[int, int]:
    """Thumbnail size: SPRITE_THUMB_WIDTH wide (never upscaled), even, aspect kept."""
    w = min(SPRITE_THUMB_WIDTH, width)
    h = max(2, round(height * w / width))
    return w, h


def write_spritesheet(
    frames: Sequence[RGBFrame], path: Path | str, columns: int | None = None
) -> Path:
    """Lay frames out left to right, top to bottom, as one JPEG (or WebP by extension).

    Frames are resized to the thumbnail size of the first; unused cells stay black.
    """
    if not frames:
        raise ValueError("a spritesheet needs at least one frame")
    height, width = frames[0].shape[:2]
    tw, th = sprite_thumb_size(width, height)
    cols, rows = sprite_grid(len(frames))
    if columns is not None:
        cols = max(1, columns)
        rows = math.ceil(len(frames) / cols)
    sheet = np.zeros((rows * th, cols * tw, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        thumb = frame if frame.shape[:2] == (th, tw) else _resize(frame, tw, th)
        r, c = divmod(i, cols)
        sheet[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = thumb
    out = Path(path)
    image = Image.fromarray(sheet, mode="RGB")
    if out.suffix.lower() == ".webp":
        image.save(out, format="WEBP", quality=SPRITE_QUALITY, method=4)
    else:
        image.save(out, format="JPEG", quality=SPRITE_QUALITY, optimize=True)
    return out


class SpritesheetCollector:
    """Keeps thumbnails of evenly spaced frames for a spritesheet while a video streams past."""

    def __init__(self, total_frames: int, max_cells: int = SPRITE_MAX_CELLS) -> None:
        self.indices = evenly_spaced(total_frames, max_cells)
        self._wanted = set(self.indices)
        self.frames: list[RGBFrame] = []

    @property
    def grid(self) -> tuple[int, int]:
        return sprite_grid(len(self.indices))

    def wants(self, index: int) -> bool:
        return index in self._wanted

    def offer(self, index: int, frame: RGBFrame) -> None:
        if index in self._wanted:
            h, w = frame.shape[:2]
            tw, th = sprite_thumb_size(w, h)
            self.frames.append(frame if (w, h) == (tw, th) else _resize(frame, tw, th))

    def save(self, path: Path | str) -> Path:
        return write_spritesheet(self.frames, path, columns=self.grid[0])


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
