"""Take a provider's result in: download it, check it, and make it ours.

Upstream URLs are never handed to users (CONTRACT 5), and they expire. The worker downloads
the file (size-capped, streamed to disk), decodes it to prove it is a video, and delivers
what the contract promises whatever the provider sent:
  * a conforming file (H.264 yuv420p MP4 at the exact size, fps and length asked, with the
    audio asked for) is remuxed as is: no generation loss, only `faststart` and BT.709 tags;
  * anything else (another codec or container, another size, 24 fps for a 30 fps model, a
    slightly long clip) is re-encoded: frames are cover-scaled to the exact size and
    re-timed to the model's fps by picking, for each output instant, the source frame on
    screen at that instant;
  * with `add_audio`, the provider's soundtrack is kept, or ours is synthesized when it sent
    none; without it, the video has no audio stream.
Poster, animated preview and spritesheet are made from the same decoded frames.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import av
import numpy as np
import requests

from generations.media.audio import synthesize
from generations.media.encode import (
    AUDIO_SAMPLE_RATE,
    Mp4Writer,
    PreviewCollector,
    SpritesheetCollector,
    audio_samples_for,
    preview_size,
    probe,
    shrink,
    sprite_thumb_size,
    write_poster,
)
from generations.media.watermark import Mark
from generations.rendering.base import Canceled, EngineError, RenderResult
from generations.rendering.hosted.base import CALL_TIMEOUT, ResultGone, Transient, reason_of
from generations.spec import GenerationSpec

CHUNK = 1024 * 1024
MAX_REDIRECTS = 5
_BT709 = 1


def download(url: str, headers: Mapping[str, str], dest: Path, max_bytes: int) -> int:
    """Stream the provider's file to `dest`; the size in bytes.

    403/404/410 raise ResultGone (expired or withheld URL); network trouble and 5xx raise
    Transient; more than `max_bytes` fails the generation. Redirects are followed by hand:
    the provider's credentials in `headers` go to the provider's own origin only, never to
    the storage host a download link may redirect to."""
    try:
        response = _get_following_redirects(url, headers)
        with response:
            if response.status_code in (403, 404, 410):
                raise ResultGone(reason_of(response))
            if response.status_code == 429 or response.status_code >= 500:
                raise Transient(f"result download: HTTP {response.status_code}")
            if not response.ok:
                raise EngineError(
                    "upstream_failed", f"The provider's result could not be fetched: "
                    f"{reason_of(response)}"
                )  # fmt: skip
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise _too_large(max_bytes)
            size = 0
            with dest.open("wb") as fh:
                for chunk in response.iter_content(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise _too_large(max_bytes)
                    fh.write(chunk)
            return size
    except requests.RequestException as exc:
        dest.unlink(missing_ok=True)
        raise Transient(f"result download: {type(exc).__name__}") from None
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _get_following_redirects(url: str, headers: Mapping[str, str]) -> requests.Response:
    origin = _origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        same_origin = _origin(url) == origin
        response = requests.get(
            url, headers=dict(headers) if same_origin else {}, stream=True,
            timeout=CALL_TIMEOUT, allow_redirects=False,
        )  # fmt: skip
        location = response.headers.get("Location")
        if not response.is_redirect or not location:
            return response
        response.close()
        url = urljoin(url, location)
    raise EngineError("upstream_failed", "The provider's result link redirects too many times.")


def _too_large(max_bytes: int) -> EngineError:
    return EngineError(
        "upstream_too_large",
        f"The provider's video is larger than this server accepts ({max_bytes // 2**20} MiB).",
    )


def _cover(frame: av.VideoFrame, width: int, height: int) -> np.ndarray[Any, Any]:
    """Scale to cover width x height (aspect kept), then crop the centre."""
    scale = max(width / frame.width, height / frame.height)
    sw = max(width, round(frame.width * scale))
    sh = max(height, round(frame.height * scale))
    rgb = frame.reformat(width=sw, height=sh, format="rgb24", interpolation="BICUBIC")
    array = rgb.to_ndarray()
    x, y = (sw - width) // 2, (sh - height) // 2
    return np.ascontiguousarray(array[y : y + height, x : x + width])


def _source_audio(path: Path) -> np.ndarray[Any, Any] | None:
    """The file's first audio track as float32 stereo at 48 kHz, or None."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="stereo", rate=AUDIO_SAMPLE_RATE)
        chunks = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1, 2))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1, 2))
    return np.concatenate(chunks) if chunks else None


def has_audio_track(path: Path) -> bool:
    """The file decodes and has an audio track (a video or an audio-only file)."""
    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except (av.FFmpegError, ValueError):
        return False


def _timed_frames(
    path: Path, spec: GenerationSpec, skip_s: float = 0.0
) -> Iterator[tuple[int, av.VideoFrame]]:
    """(output index, source frame) for every output frame: the source frame on screen at
    skip_s + index / fps. A short source holds its last frame; a long one is cut."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or spec.fps)
        index = 0
        previous: av.VideoFrame | None = None
        for count, frame in enumerate(container.decode(stream)):
            start = (frame.time if frame.time is not None else count / rate) - skip_s
            # Output instants before this frame starts show the previous one.
            while index < spec.num_frames and index / spec.fps < start - 1e-6:
                yield index, previous or frame
                index += 1
            if index >= spec.num_frames:
                return
            previous = frame
        if previous is None:
            raise EngineError("upstream_bad_output", "The provider's file has no video frames.")
        while index < spec.num_frames:
            yield index, previous
            index += 1


def _conforms(info: dict[str, Any], spec: GenerationSpec, keep_audio: bool) -> bool:
    return (
        info["codec"] == "h264"
        and info["pix_fmt"] == "yuv420p"
        and (info["width"], info["height"]) == (spec.width, spec.height)
        and abs(info["fps"] - spec.fps) < 0.01
        and abs(info["frame_count"] - spec.num_frames) <= 1
        and (not keep_audio or info["audio_codec"] == "aac")
    )


def _remux(src: Path, dest: Path, keep_audio: bool) -> None:
    with (
        av.open(str(src)) as inp,
        av.open(str(dest), "w", format="mp4", options={"movflags": "faststart"}) as out,
    ):
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        ctx = vout.codec_context
        ctx.color_primaries = ctx.color_trc = ctx.colorspace = _BT709
        streams: dict[int, Any] = {vin.index: vout}
        if keep_audio and inp.streams.audio:
            ain = inp.streams.audio[0]
            streams[ain.index] = out.add_stream_from_template(ain)
        for packet in inp.demux(*(inp.streams[i] for i in streams)):
            if packet.dts is None:
                continue  # the demuxer's end-of-stream marker
            packet.stream = streams[packet.stream.index]
            out.mux(packet)


def make_ours(
    src: Path,
    spec: GenerationSpec,
    out_dir: Path,
    *,
    progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    skip_s: float = 0.0,
    mark: Mark | None = None,
    label: str = "",
    audio_from: Path | None = None,
) -> RenderResult:
    """The contract's MP4, poster, preview and spritesheet from a provider's file; with
    `skip_s`, from that instant on (a native extension's file holds the source first).
    With `audio_from` (the audio step's answer: a video-to-audio model's file), the sound
    is that file's audio track, the frames still `src`'s.

    `progress` hears 96-99 as frames go by (it doubles as the run's heartbeat);
    `should_stop` returning True (a cancel) raises Canceled."""
    try:
        info = probe(src)
    except (av.FFmpegError, ValueError, IndexError):
        raise EngineError(
            "upstream_bad_output", "The provider's file is not a video this server can decode."
        ) from None
    upstream_audio = bool(info["has_audio"])
    sound_src = src
    if audio_from is not None:
        sound_src = audio_from
        if not has_audio_track(audio_from):
            raise EngineError(
                "upstream_bad_output", "The audio step's file has no audio track it can decode."
            )
        upstream_audio = True
    video_path = out_dir / "video.mp4"
    poster_path = out_dir / "poster.jpg"
    preview_path = out_dir / "preview.webp"
    sprite_path = out_dir / "spritesheet.jpg"
    preview = PreviewCollector(spec.num_frames)
    sprites = SpritesheetCollector(spec.num_frames)
    preview_wh = preview_size(spec.width, spec.height)
    sprite_wh = sprite_thumb_size(spec.width, spec.height)
    remux = (
        not skip_s
        and audio_from is None  # another file's sound means encoding anew
        and mark is None  # marking the frames means encoding them
        and not label
        and _conforms(info, spec, keep_audio=spec.add_audio and upstream_audio)
        and (upstream_audio or not spec.add_audio)
    )

    audio = None
    if spec.add_audio and not remux:
        samples = audio_samples_for(spec.num_frames, spec.fps)
        with contextlib.suppress(av.FFmpegError):
            audio = _source_audio(sound_src) if upstream_audio else None
            if audio is not None and skip_s:
                audio = audio[round(skip_s * AUDIO_SAMPLE_RATE) :]
        if audio is None:
            audio = synthesize(spec.audio_prompt or spec.prompt, spec.seed, samples)

    writer = (
        None
        if remux
        else Mp4Writer(video_path, spec.width, spec.height, spec.fps, audio, mark=mark, label=label)
    )
    try:
        # Re-timing repeats source frames: each is scaled once, thumbnails made once.
        current: av.VideoFrame | None = None
        rgb: np.ndarray[Any, Any] | None = None
        thumbs: dict[tuple[int, int], np.ndarray[Any, Any]] = {}
        for index, frame in _timed_frames(src, spec, skip_s):
            if frame is not current:
                current, rgb, thumbs = frame, _cover(frame, spec.width, spec.height), {}
            assert rgb is not None
            if should_stop is not None and should_stop():
                raise Canceled()
            if progress is not None:
                progress(96 + 3 * index / spec.num_frames)
            if writer is not None:
                writer.write(rgb)
            if index == 0:
                write_poster(rgb, poster_path)
            for collector, size in ((preview, preview_wh), (sprites, sprite_wh)):
                if collector.wants(index):
                    if size not in thumbs:
                        thumbs[size] = shrink(rgb, size)
                    collector.offer(index, thumbs[size])
        if writer is not None:
            writer.close()
        else:
            _remux(src, video_path, keep_audio=spec.add_audio)
    except av.FFmpegError:
        if writer is not None:
            writer.abort()
        raise EngineError(
            "upstream_bad_output", "The provider's file is damaged: it stops decoding part way."
        ) from None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    preview.save(preview_path)
    sprites.save(sprite_path)
    return RenderResult.of(
        spec, video_path, poster_path, preview_path, sprite_path, has_audio=spec.add_audio
    )
