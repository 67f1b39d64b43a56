"""Exports of a finished video: an animated GIF, a WebM (VP9 + Opus) and a seamless loop.

Each function reads a contract MP4 (encode.py's), writes one file and returns its path; an
input that is no usable video raises ValueError, and a failed export leaves no file behind.

* GIF: one palette for the whole animation, made from frames spread over it (so colours do
  not flicker from frame to frame), Floyd-Steinberg dithering, looping forever, at most
  GIF_MAX_WIDTH wide and about 14 fps. GIF is a poor codec (the notes measured it 5x larger
  than WebP), so the size is bounded: when the file would exceed `max_bytes` the export steps
  down GIF_STEPS (fewer frames a second, then smaller), and past the last step it keeps
  halving the length. A step whose predicted size (bytes scale with frames x pixels) is far
  over the bound is skipped without encoding it.
* WebM: VP9 in constant-quality mode (crf, b:v 0) with row multithreading and the fastest
  `good` speed (twice real time at 720p on 2 cores), BT.709-tagged; Opus sound when the
  source has sound.
* Loop: the clip's end crossfades into its start (pictures and sound), and the start frames
  that went into the crossfade are cut: the last frame leads into the first as one frame
  leads into the next, and the loop is `crossfade` frames shorter than the clip.
"""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream
from av.video.stream import VideoStream
from PIL import Image

from generations.media.encode import (
    AUDIO_SAMPLE_RATE,
    Mp4Writer,
    RGBFrame,
    audio_samples_for,
    evenly_spaced,
    i420_to_rgb,
)
from generations.media.stitch import (
    ClipInfo,
    blend_i420,
    decode_i420,
    equal_power,
    inspect_clip,
    read_audio,
)

GIF_MAX_BYTES = 8 * 1024 * 1024
GIF_MAX_WIDTH = 480
# Longer sources are cut to their first GIF_MAX_SECONDS: a GIF is for a short moment.
GIF_MAX_SECONDS = 30.0
# (frame delay in hundredths of a second, width in pixels), tried in order. GIF delays are
# whole hundredths: 7 is about 14 fps, 8 is 12.5 fps, 10 is 10 fps.
GIF_STEPS: tuple[tuple[int, int], ...] = (
    (7, 480),
    (8, 480),
    (8, 400),
    (10, 360),
    (10, 320),
    (12, 240),
    (15, 200),
    (20, 160),
)
GIF_COLOURS = 256
# Frames the palette is made from, spread evenly over the exported part.
GIF_PALETTE_FRAMES = 12
# A step is skipped when its predicted size exceeds the bound by more than this factor.
GIF_SKIP_FACTOR = 1.25

WEBM_CRF = 33
# libvpx-vp9 speed (cpu-used; 5 is the fastest of the `good` deadline, higher values encode
# the same): a 5 s 720p clip with sound takes 2.4 s on 2 cores with row-mt (4 takes 3.2 s).
WEBM_SPEED = 5
OPUS_BITRATE = 128_000
OPUS_FRAME_SAMPLES = 960  # 20 ms at 48 kHz, libopus's default frame

LOOP_CROSSFADE_S = 0.5

_BT709 = 1
_RANGE_LIMITED = 1


def export_gif(
    src: Path,
    dest: Path,
    *,
    max_bytes: int = GIF_MAX_BYTES,
    max_width: int = GIF_MAX_WIDTH,
    max_seconds: float = GIF_MAX_SECONDS,
) -> Path:
    """An animated GIF of `src`, no larger than `max_bytes` (ValueError if even a second's
    worth at the smallest step is larger)."""
    info = _usable(src)
    seconds = min(info.frames / float(info.fps), max_seconds)
    palette = _gif_palette(info, seconds)
    previous: tuple[int, int, int] | None = None  # (bytes, frames, pixels) of the last try
    steps = list(GIF_STEPS)
    while True:
        for delay, width in steps:
            size = _gif_size(info, min(width, max_width))
            count = _gif_frame_count(seconds, delay)
            if previous is not None:
                done_bytes, done_frames, done_pixels = previous
                predicted = done_bytes * count * size[0] * size[1] / (done_frames * done_pixels)
                if predicted > max_bytes * GIF_SKIP_FACTOR:
                    continue
            data = _encode_gif(info, palette, delay, size, count)
            if len(data) <= max_bytes:
                dest = Path(dest)
                dest.write_bytes(data)
                return dest
            previous = (len(data), count, size[0] * size[1])
        # Even the smallest step is too large: keep it, and export less of the clip.
        seconds /= 2
        steps = [GIF_STEPS[-1]]
        if seconds < 1.0:
            raise ValueError(f"no GIF of this video fits in {max_bytes} bytes")


def _usable(src: Path) -> ClipInfo:
    info = inspect_clip(Path(src))
    if info.fps <= 0:
        raise ValueError(f"{Path(src).name}: no frame rate")
    return info


def _gif_size(info: ClipInfo, width: int) -> tuple[int, int]:
    w = min(width, info.width)
    return w, max(1, round(info.height * w / info.width))


def _gif_frame_count(seconds: float, delay: int) -> int:
    return max(1, int(seconds * 100 / delay + 1e-9))


def _gif_sources(info: ClipInfo, delay: int, count: int) -> list[int]:
    """The source frame shown as each GIF frame: the one on screen at the GIF frame's start."""
    return [min(info.frames - 1, int(j * delay * info.fps / 100)) for j in range(count)]


def _picked(info: ClipInfo, indices: list[int], size: tuple[int, int]) -> list[RGBFrame]:
    """The source frames at `indices` (ascending, repeats allowed) as RGB at `size`."""
    wanted: dict[int, int] = {}
    for index in indices:
        wanted[index] = wanted.get(index, 0) + 1
    frames: list[RGBFrame] = []
    last = max(indices)
    for index, buffer in enumerate(decode_i420(info.path)):
        if index in wanted:
            rgb = i420_to_rgb(buffer, info.width, info.height, size)
            frames.extend([rgb] * wanted[index])
        if index >= last:
            break
    return frames


def _gif_palette(info: ClipInfo, seconds: float) -> Image.Image:
    count = max(1, int(seconds * float(info.fps)))
    indices = evenly_spaced(count, GIF_PALETTE_FRAMES)
    size = _gif_size(info, 160)
    samples = _picked(info, indices, size)
    montage = Image.fromarray(np.concatenate(samples, axis=0), mode="RGB")
    # Median cut keeps the colours that cover most pixels (skies, skin) finely graded.
    return montage.quantize(colors=GIF_COLOURS, method=Image.Quantize.MEDIANCUT)


def _encode_gif(
    info: ClipInfo, palette: Image.Image, delay: int, size: tuple[int, int], count: int
) -> bytes:
    indices = _gif_sources(info, delay, count)
    images = [
        Image.fromarray(frame, mode="RGB").quantize(
            palette=palette, dither=Image.Dither.FLOYDSTEINBERG
        )
        for frame in _picked(info, indices, size)
    ]
    out = io.BytesIO()
    images[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=delay * 10,
        loop=0,
        # Only the part of each frame that changed is stored.
        optimize=False,
    )
    return out.getvalue()


def export_webm(src: Path, dest: Path, *, crf: int = WEBM_CRF, speed: int = WEBM_SPEED) -> Path:
    """A WebM of `src`: VP9 (yuv420p, BT.709) and, when the source has sound, Opus."""
    info = _usable(src)
    dest = Path(dest)
    try:
        with av.open(str(info.path)) as source, av.open(str(dest), mode="w", format="webm") as out:
            vin = source.streams.video[0]
            vin.thread_type = "AUTO"
            ain = source.streams.audio[0] if source.streams.audio else None
            video = out.add_stream("libvpx-vp9", rate=info.fps)
            assert isinstance(video, VideoStream)
            video.width, video.height = info.width, info.height
            video.pix_fmt = "yuv420p"
            # Kept apart: the muxer replaces the stream's time base (1/1000 in WebM) once
            # it writes the header, and frames stamped with that would bunch up.
            frame_rate_base = Fraction(1) / info.fps
            video.time_base = frame_rate_base
            ctx = video.codec_context
            ctx.time_base = video.time_base
            ctx.color_primaries = ctx.color_trc = ctx.colorspace = _BT709
            ctx.color_range = _RANGE_LIMITED
            ctx.bit_rate = 0  # with crf: constant quality, no bitrate target
            ctx.thread_count = min(8, os.cpu_count() or 1)
            video.options = {
                "crf": str(crf),
                "b": "0",
                "row-mt": "1",
                "deadline": "good",
                "cpu-used": str(speed),
                "tile-columns": "2",
            }
            audio: AudioStream | None = None
            resampler = None
            if ain is not None:
                astream = out.add_stream("libopus", rate=AUDIO_SAMPLE_RATE)
                assert isinstance(astream, AudioStream)
                astream.layout = "stereo"
                astream.bit_rate = OPUS_BITRATE
                audio = astream
                resampler = av.AudioResampler(
                    format="flt",
                    layout="stereo",
                    rate=AUDIO_SAMPLE_RATE,
                    frame_size=OPUS_FRAME_SAMPLES,
                )
            frames = samples = 0
            streams: list[av.stream.Stream] = [vin] if ain is None else [vin, ain]
            # In the source's own (interleaved) order, so the WebM comes out interleaved too.
            for packet in source.demux(streams):
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        # A decoded frame keeps its type; an I would force a VP9 keyframe.
                        frame.pict_type = av.video.frame.PictureType.NONE
                        frame.pts = frames
                        frame.time_base = frame_rate_base
                        out.mux(video.encode(frame))
                        frames += 1
                    elif isinstance(frame, av.AudioFrame) and resampler is not None:
                        assert audio is not None
                        for chunk in resampler.resample(frame):
                            samples = _encode_opus(out, audio, chunk, samples)
            if audio is not None and resampler is not None:
                for chunk in resampler.resample(None):
                    samples = _encode_opus(out, audio, chunk, samples)
                out.mux(audio.encode(None))
            out.mux(video.encode(None))
            if frames == 0:
                raise ValueError(f"{info.path.name}: no frames decoded")
    except BaseException as exc:
        dest.unlink(missing_ok=True)
        if isinstance(exc, av.FFmpegError):
            raise ValueError(f"{info.path.name}: the WebM export failed ({exc})") from exc
        raise
    return dest


def _encode_opus(
    out: av.container.OutputContainer, audio: AudioStream, chunk: av.AudioFrame, at: int
) -> int:
    chunk.pts = at
    chunk.time_base = Fraction(1, AUDIO_SAMPLE_RATE)
    out.mux(audio.encode(chunk))
    return at + chunk.samples


def loop_crossfade_frames(frames: int, fps: int, crossfade_s: float = LOOP_CROSSFADE_S) -> int:
    """Frames the loop's end crossfades over: `crossfade_s`, at most a third of a short clip."""
    return min(round(crossfade_s * fps), frames // 3)


def export_loop(src: Path, dest: Path, *, crossfade_s: float = LOOP_CROSSFADE_S) -> Path:
    """A seamless loop of `src` as a contract MP4, `crossfade` frames shorter than the clip.

    Output frame j is source frame fade + j; over the last `fade` frames the source's end
    crossfades into its first `fade` frames, ending on source frame fade - 1, which leads
    into the output's first frame (source frame fade) as any frame leads into the next.
    """
    info = _usable(src)
    if info.fps.denominator != 1:
        raise ValueError(f"{info.path.name}: a whole number of frames a second is needed")
    fps = int(info.fps)
    n = info.frames
    fade = loop_crossfade_frames(n, fps, crossfade_s)
    if fade < 1:
        raise ValueError(f"{info.path.name}: {n} frames are too few for a loop")
    sound = None
    if info.has_audio:
        total = audio_samples_for(n, fps)
        cross = audio_samples_for(fade, fps)
        whole = read_audio(info.path, total)
        sound = whole[cross:].copy()
        fade_out, fade_in = equal_power(cross)
        sound[-cross:] = (
            whole[total - cross :] * fade_out[:, None] + whole[:cross] * fade_in[:, None]
        )
    dest = Path(dest)
    # mark=None: the frames already carry the video's watermark (blended, it reads the same).
    with Mp4Writer(dest, info.width, info.height, fps, sound, mark=None) as writer:
        head = []
        count = 0
        for index, buffer in enumerate(decode_i420(info.path)):
            count += 1
            if index < fade:
                head.append(buffer)
            elif index < n - fade:
                writer.write_i420(buffer)
            else:
                j = index - (n - fade)
                writer.write_i420(blend_i420(buffer, head[j], (j + 1) / fade))
        if count != n:
            raise ValueError(f"{info.path.name}: decoded {count} frames, its container says {n}")
    return dest
