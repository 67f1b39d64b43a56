"""Shots joined into one video: the last frame of a clip, and `stitch` (issue 17).

`stitch` joins contract MP4s (encode.py's: H.264 yuv420p BT.709, one size and frame rate) with
a cut, a continue (both: back to back, every frame kept) or a crossfade (neighbours overlap by
`crossfade_s`), and writes the video, its poster, preview and spritesheet as an engine does.
Clips stream through one at a time: only a crossfade's overlap frames are ever held (15 at
30 fps), so a 20-shot 4K sequence needs no more memory than a short one.

Two ways to write the video, chosen per call:

* **Packet copy** (cut and continue, when every clip's H.264 parameters, its SPS/PPS
  `extradata`, are byte-identical and the clips are tagged BT.709): the clips' compressed
  frames are copied into the new file, their timestamps shifted, and only the audio is
  encoded again. Every frame decodes bit-identical to its clip's, and no time goes to x264.
  Every clip Mp4Writer makes at one size and frame rate has the same extradata, so this is
  the usual case, and the one `extend` needs: the source's frames must come back unchanged.
* **Re-encode** (crossfades, and clips from different encoders: x264's PPS carries the CRF,
  so even a clip made at another CRF has other extradata): frames are decoded and written
  through Mp4Writer at STITCH_CRF. Measured (2 cores, 720p, 60 frames), per-frame PSNR
  (Y'CbCr) of a CRF 20 clip encoded again against its first decoding: the local engine's
  smooth scenes keep at least 52.8 dB at CRF 20, but a panning multi-scale texture only
  42.5 dB (41.7 dB with grain); at CRF 16 44.4 dB, at CRF 14 46.1 dB (45.3 dB with grain),
  at CRF 12 47.6 dB, for about 40 % more bytes at 14 than at 20 and the same encoding time.
  CRF 14 keeps even a re-encoded source above 45 dB (the tests' 320x180 texture: 49.8 dB).

Extend (`stitch([source, continuation], transition="continue")`) thus gives the source's
frames back bit-identical when both came from Mp4Writer with one setting, and otherwise at
the re-encode's 45 dB or more (45.3 dB the worst measured). Cost (bench/stitch.py, 10 x 5 s
720p shots with sound, 2 cores): a copied cut 3.1 s (decoding for the previews is most of
it), a crossfade 11.3 s, against 8.7 s for Mp4Writer encoding the same frames alone.

Audio (`audio=True`) is one AAC track exactly as long as the video. Clips without sound
contribute silence. At a cut or continue the outgoing clip fades out and the next fades in
over JOIN_FADE_S each (raised cosine), so no join has a step; a crossfade crosses the sound
with equal-power gains over the same overlap as the pictures. The track is assembled in
memory before it is encoded (float32 stereo: 23 MB a minute), as Mp4Writer takes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from generations.media.encode import (
    AAC_FRAME_SAMPLES,
    AUDIO_BITRATE,
    AUDIO_CHANNELS,
    AUDIO_SAMPLE_RATE,
    AudioSamples,
    I420Frame,
    Mp4Writer,
    PreviewCollector,
    RGBFrame,
    SpritesheetCollector,
    audio_samples_for,
    i420_to_rgb,
    preview_size,
    sprite_thumb_size,
    write_poster,
)

Gains = npt.NDArray[np.float32]

VIDEO_NAME = "video.mp4"
POSTER_NAME = "poster.jpg"
PREVIEW_NAME = "preview.webp"
SPRITESHEET_NAME = "spritesheet.jpg"

CUT = "cut"
CONTINUE = "continue"
CROSSFADE = "crossfade"
TRANSITIONS = (CUT, CONTINUE, CROSSFADE)
DEFAULT_CROSSFADE_S = 0.5
# Fade out and in on each side of a cut (raised cosine): long enough that no join clicks,
# short enough that nobody hears a dip.
JOIN_FADE_S = 0.010
# x264's quality when frames must be encoded again (see the module docstring).
STITCH_CRF = 14
# Share of the progress bar spent on frames; the rest covers the previews and the flush.
FRAME_PROGRESS_SHARE = 98.0

# FFmpeg's AVCOL_* value for BT.709 (primaries, transfer and matrix) and limited range.
_BT709 = 1
_RANGE_LIMITED = 1


class StitchCanceled(Exception):
    """`should_stop` said stop: nothing was left behind."""


@dataclass(frozen=True)
class StitchResult:
    video: Path
    poster: Path
    preview: Path
    spritesheet: Path
    frame_count: int
    fps: int
    width: int
    height: int
    has_audio: bool
    # Start of each clip in the output, in seconds (with a crossfade: where it begins to show).
    markers: list[float]


@dataclass(frozen=True)
class ClipInfo:
    """What a clip's container says about it, read without decoding a frame."""

    path: Path
    width: int
    height: int
    fps: Fraction
    frames: int
    has_audio: bool
    # H.264 SPS/PPS; equal extradata means the packets can share one output stream.
    extradata: bytes
    # H.264, yuv420p, tagged BT.709 limited range, and the first packet is a keyframe.
    copyable: bool


def inspect_clip(path: Path) -> ClipInfo:
    """Read a clip's video parameters and frame count (ValueError if it has no usable video)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path.name}: no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            frames = int(stream.frames)
            first_is_key = False
            counted = 0
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                if counted == 0:
                    first_is_key = bool(packet.is_keyframe)
                counted += 1
                if frames:
                    # The sample table gave the count: one packet was all we wanted.
                    break
            frames = frames or counted
            has_audio = bool(container.streams.audio)
            copyable = (
                ctx.name == "h264"
                and ctx.pix_fmt == "yuv420p"
                and int(ctx.color_primaries) == _BT709
                and int(ctx.color_trc) == _BT709
                and int(ctx.colorspace) == _BT709
                and int(ctx.color_range) == _RANGE_LIMITED
                and first_is_key
            )
            info = ClipInfo(
                path=Path(path),
                width=int(ctx.width),
                height=int(ctx.height),
                fps=Fraction(rate) if rate else Fraction(0),
                frames=frames,
                has_audio=has_audio,
                extradata=bytes(ctx.extradata or b""),
                copyable=copyable,
            )
    except av.FFmpegError as exc:
        raise ValueError(f"{Path(path).name}: not a readable video ({exc})") from exc
    if info.frames <= 0:
        raise ValueError(f"{path.name}: the video has no frames")
    return info


def decode_i420(path: Path) -> Iterator[I420Frame]:
    """The clip's frames in order, each a new BT.709 I420 buffer (ValueError if not yuv420p)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if frame.format.name != "yuv420p":
                    raise ValueError(f"{path.name}: frames are {frame.format.name}, not yuv420p")
                yield np.asarray(frame.to_ndarray(format="yuv420p"), dtype=np.uint8)
    except av.FFmpegError as exc:
        raise ValueError(f"{path.name}: the video could not be decoded ({exc})") from exc


def last_frame(path: Path) -> RGBFrame:
    """The last frame of a video as RGB uint8 (H, W, 3), converted with the BT.709 matrix.

    Seeks to the last keyframe and decodes from there, so a long clip costs one GOP.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path.name}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            last = None
            if stream.duration:
                # Backward: the keyframe at or before the end, i.e. the start of the last GOP.
                end = (stream.start_time or 0) + stream.duration
                container.seek(end, backward=True, any_frame=False, stream=stream)
                for frame in container.decode(stream):
                    last = frame
            if last is None:
                # No duration, or a seek that found nothing: decode from the start.
                container.seek(0, stream=stream)
                for frame in container.decode(stream):
                    last = frame
            if last is None:
                raise ValueError(f"{path.name}: the video has no frames")
            if last.format.name == "yuv420p":
                i420 = np.asarray(last.to_ndarray(format="yuv420p"), dtype=np.uint8)
                return i420_to_rgb(i420, last.width, last.height)
            rgb = last.reformat(format="rgb24", src_colorspace="ITU709", dst_colorspace="ITU709")
            return np.asarray(rgb.to_ndarray(), dtype=np.uint8)
    except av.FFmpegError as exc:
        raise ValueError(f"{Path(path).name}: not a readable video ({exc})") from exc


def read_audio(path: Path, samples: int) -> AudioSamples:
    """The clip's sound as float32 stereo at 48 kHz, exactly `samples` long (silence if none).

    Each decoded frame goes where its timestamp says (the AAC encoder's priming is already
    dropped by the demuxer's edit list), so the sound stays in step with the frames.
    """
    out = np.zeros((samples, AUDIO_CHANNELS), dtype=np.float32)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return out
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_SAMPLE_RATE)
            pos = 0
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    pos = _place(out, converted, pos)
            for converted in resampler.resample(None):
                pos = _place(out, converted, pos)
    except av.FFmpegError as exc:
        raise ValueError(f"{path.name}: the audio could not be decoded ({exc})") from exc
    return out


def _place(out: AudioSamples, frame: av.AudioFrame, pos: int) -> int:
    data = np.asarray(frame.to_ndarray(), dtype=np.float32).T
    if frame.pts is not None and frame.time_base is not None:
        pos = round(frame.pts * frame.time_base * AUDIO_SAMPLE_RATE)
    start, end = max(pos, 0), min(pos + len(data), len(out))
    if end > start:
        out[start:end] = data[start - pos : end - pos]
    return pos + len(data)


def raised_cosine(count: int) -> Gains:
    """A fade-in of `count` gains from near 0 to near 1 with zero slope at both ends."""
    phase = (np.arange(count, dtype=np.float32) + 0.5) / max(count, 1)
    return np.asarray(0.5 - 0.5 * np.cos(np.pi * phase), dtype=np.float32)


def equal_power(count: int) -> tuple[Gains, Gains]:
    """Fade-out and fade-in gains whose squares sum to 1 (uncorrelated sounds keep their level)."""
    theta = (np.arange(count, dtype=np.float32) + 0.5) / max(count, 1) * (np.pi / 2)
    return np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)


def blend_i420(a: I420Frame, b: I420Frame, alpha: float) -> I420Frame:
    """(1 - alpha) * a + alpha * b, rounded: Y'CbCr is an affine map of R'G'B', so mixing the
    planes mixes the pictures."""
    return np.asarray(cv2.addWeighted(a, 1.0 - alpha, b, alpha, 0.0), dtype=np.uint8)


def overlap_frames(crossfade_s: float, fps: int) -> int:
    return round(crossfade_s * fps)


def stitch(
    clips: Sequence[Path],
    out_dir: Path,
    *,
    width: int,
    height: int,
    fps: int,
    transition: str,
    crossfade_s: float = DEFAULT_CROSSFADE_S,
    audio: bool,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[float], None] | None = None,
    soundtrack: Callable[[int], AudioSamples] | None = None,
) -> StitchResult:
    """Join `clips` into out_dir/video.mp4 (+ poster.jpg, preview.webp, spritesheet.jpg).

    `soundtrack`, when given, makes the whole audio track instead of the clips' sound: it is
    called with the track's length in samples (an extension whose sound bed runs on across
    the join, where the clips' own beds would fade out and in there).

    `progress` gets percentages (0-100). ValueError: an unknown transition, no clips, a clip
    that is unreadable, of another size or frame rate, or too short for the crossfade.
    StitchCanceled when `should_stop()` turns true. On any error no output is left behind.
    """
    if transition not in TRANSITIONS:
        raise ValueError(f"transition must be one of {', '.join(TRANSITIONS)}, got {transition!r}")
    if not clips:
        raise ValueError("nothing to stitch")
    infos = [inspect_clip(Path(p)) for p in clips]
    for info in infos:
        if (info.width, info.height) != (width, height):
            raise ValueError(
                f"{info.path.name} is {info.width}x{info.height}, not {width}x{height}"
            )
        if info.fps != fps:
            raise ValueError(f"{info.path.name} runs at {float(info.fps):g} fps, not {fps}")
    overlap = overlap_frames(crossfade_s, fps) if transition == CROSSFADE else 0
    if transition == CROSSFADE:
        if overlap < 1:
            raise ValueError(f"a crossfade of {crossfade_s} s is shorter than a frame")
        for k, info in enumerate(infos):
            # A middle clip fades in and out: the two overlaps may not overlap each other.
            need = overlap * ((k > 0) + (k < len(infos) - 1))
            if info.frames < need:
                raise ValueError(
                    f"{info.path.name} has {info.frames} frames, the crossfade needs {need}"
                )
    starts = []
    position = 0
    for info in infos:
        starts.append(position)
        position += info.frames - overlap
    total = position + overlap

    out = Path(out_dir)
    paths = (out / VIDEO_NAME, out / POSTER_NAME, out / PREVIEW_NAME, out / SPRITESHEET_NAME)
    job = _Job(infos, paths, width, height, fps, overlap, total, should_stop, progress)
    sound: Callable[[], AudioSamples] | None = None
    if soundtrack is not None:
        audio = True
        length = audio_samples_for(total, fps)
        sound = lambda: soundtrack(length)  # noqa: E731
    elif audio:
        sound = lambda: _stitched_audio(infos, starts, overlap, fps, total)  # noqa: E731
    copy = (
        transition != CROSSFADE
        and all(i.copyable for i in infos)
        and len({i.extradata for i in infos}) == 1
        and bool(infos[0].extradata)
    )
    try:
        if copy:
            job.copy_packets(sound() if sound is not None else None)
        else:
            job.reencode(sound)
        job.finish()
    except BaseException:
        for path in paths:
            path.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(100.0)
    return StitchResult(
        video=paths[0],
        poster=paths[1],
        preview=paths[2],
        spritesheet=paths[3],
        frame_count=total,
        fps=fps,
        width=width,
        height=height,
        has_audio=audio,
        markers=[s / fps for s in starts],
    )


def _stitched_audio(
    infos: Sequence[ClipInfo], starts: Sequence[int], overlap: int, fps: int, total: int
) -> AudioSamples:
    """One track for the whole output: each clip's sound at its start, faded at the joins."""
    track = np.zeros((audio_samples_for(total, fps), AUDIO_CHANNELS), dtype=np.float32)
    join = max(1, round(JOIN_FADE_S * AUDIO_SAMPLE_RATE))
    cross = audio_samples_for(overlap, fps)
    last = len(infos) - 1
    for k, (info, start) in enumerate(zip(infos, starts, strict=True)):
        begin = audio_samples_for(start, fps)
        length = min(audio_samples_for(start + info.frames, fps), len(track)) - begin
        if not info.has_audio or length <= 0:
            continue
        sound = read_audio(info.path, length)
        if overlap:
            fade_out, fade_in = equal_power(cross)
            if k > 0:
                sound[:cross] *= fade_in[:, None]
            if k < last:
                sound[length - cross :] *= fade_out[:, None]
        else:
            fade = raised_cosine(min(join, length // 2))
            if k > 0:
                sound[: len(fade)] *= fade[:, None]
            if k < last:
                sound[length - len(fade) :] *= fade[::-1, None]
        track[begin : begin + length] += sound
    return track


class _Job:
    """One stitch: the frames' way to the video, and the side outputs they feed."""

    def __init__(
        self,
        infos: Sequence[ClipInfo],
        paths: tuple[Path, Path, Path, Path],
        width: int,
        height: int,
        fps: int,
        overlap: int,
        total: int,
        should_stop: Callable[[], bool] | None,
        progress: Callable[[float], None] | None,
    ) -> None:
        self.infos = infos
        self.video_path, self.poster_path, self.preview_path, self.sprite_path = paths
        self.width, self.height, self.fps = width, height, fps
        self.overlap = overlap
        self.total = total
        self.should_stop = should_stop
        self.progress = progress
        self.preview = PreviewCollector(total)
        self.sprites = SpritesheetCollector(total)
        self.preview_wh = preview_size(width, height)
        self.sprite_wh = sprite_thumb_size(width, height)
        self.seen = 0

    def check_stop(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise StitchCanceled()

    def saw(self, buffer: I420Frame) -> None:
        """Output frame number `self.seen` is `buffer`: feed the poster, preview and sprites."""
        index = self.seen
        w, h = self.width, self.height
        if index == 0:
            write_poster(i420_to_rgb(buffer, w, h), self.poster_path)
        if self.preview.wants(index):
            self.preview.offer(index, i420_to_rgb(buffer, w, h, self.preview_wh))
        if self.sprites.wants(index):
            self.sprites.offer(index, i420_to_rgb(buffer, w, h, self.sprite_wh))
        self.seen += 1
        if self.progress is not None:
            self.progress(FRAME_PROGRESS_SHARE * self.seen / self.total)

    def reencode(self, sound: Callable[[], AudioSamples] | None) -> None:
        last = len(self.infos) - 1
        overlap = self.overlap
        # mark=None: the clips' frames already carry their watermarks (an extension's source
        # part its source's, each shot its own).
        with Mp4Writer(
            self.video_path, self.width, self.height, self.fps, sound, crf=STITCH_CRF, mark=None
        ) as writer:

            def emit(buffer: I420Frame) -> None:
                writer.write_i420(buffer)
                self.saw(buffer)

            held: list[I420Frame] = []
            for k, info in enumerate(self.infos):
                head = overlap if k > 0 else 0
                tail = info.frames - overlap if k < last else info.frames
                incoming: list[I420Frame] = []
                count = 0
                for i, buffer in enumerate(decode_i420(info.path)):
                    self.check_stop()
                    count += 1
                    if i < head:
                        # The first frame of the overlap is mostly the outgoing clip, the last
                        # mostly the incoming one; neither is all of one.
                        emit(blend_i420(held[i], buffer, (i + 1) / (overlap + 1)))
                    elif i >= tail:
                        incoming.append(buffer)
                    else:
                        emit(buffer)
                if count != info.frames:
                    raise ValueError(
                        f"{info.path.name}: decoded {count} frames, its container says "
                        f"{info.frames}"
                    )
                held = incoming

    def copy_packets(self, sound: AudioSamples | None) -> None:
        """Cut/continue between clips that share their H.264 parameters: no re-encoding."""
        with _PacketCopier(self.video_path, self.infos[0].path, self.fps, sound) as copier:
            for info in self.infos:
                self._copy_clip(info, copier)

    def _copy_clip(self, info: ClipInfo, copier: _PacketCopier) -> None:
        first = self.seen
        copied = 0
        with av.open(str(info.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if stream.time_base is None:
                raise ValueError(f"{info.path.name}: the video stream has no time base")
            ticks_per_frame = 1 / (stream.time_base * self.fps)
            for packet in container.demux(stream):
                self.check_stop()
                # The frames are decoded for the poster, preview and sprites (and counted).
                for frame in packet.decode():
                    self.saw(np.asarray(frame.to_ndarray(format="yuv420p"), dtype=np.uint8))
                if not packet.size or packet.pts is None or packet.dts is None:
                    continue
                pts = first + round(packet.pts / ticks_per_frame)
                dts = first + round(packet.dts / ticks_per_frame)
                copier.write_video(packet, pts, dts)
                copied += 1
                copier.advance_audio(first + copied)
        decoded = self.seen - first
        if copied != info.frames or decoded != info.frames:
            raise ValueError(
                f"{info.path.name}: {copied} packets and {decoded} frames, its container "
                f"says {info.frames}"
            )

    def finish(self) -> None:
        self.preview.save(self.preview_path)
        self.sprites.save(self.sprite_path)


class _PacketCopier:
    """An MP4 whose video stream takes copied H.264 packets and whose AAC track is encoded
    here, interleaved with them (faststart, as Mp4Writer's)."""

    def __init__(
        self, path: Path, template_clip: Path, fps: int, sound: AudioSamples | None
    ) -> None:
        self.path = path
        self.fps = fps
        self.sound = sound
        self.audio_pos = 0
        self.last_dts: int | None = None
        self.container = av.open(
            str(path), mode="w", format="mp4", options={"movflags": "faststart"}
        )
        try:
            with av.open(str(template_clip)) as template:
                video = self.container.add_stream_from_template(template.streams.video[0])
            assert isinstance(video, VideoStream)
            video.time_base = Fraction(1, fps)
            self.video = video
            self.audio: AudioStream | None = None
            if sound is not None:
                astream = self.container.add_stream("aac", rate=AUDIO_SAMPLE_RATE)
                assert isinstance(astream, AudioStream)
                astream.layout = "stereo"
                astream.bit_rate = AUDIO_BITRATE
                astream.options = {"aac_coder": "fast"}
                astream.time_base = Fraction(1, AUDIO_SAMPLE_RATE)
                self.audio = astream
            self.container.start_encoding()
        except BaseException:
            self.container.close()
            path.unlink(missing_ok=True)
            raise

    def __enter__(self) -> _PacketCopier:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:
            with contextlib.suppress(av.FFmpegError, ValueError):
                self.container.close()
            self.path.unlink(missing_ok=True)
            return
        try:
            if self.audio is not None and self.sound is not None:
                self._encode_audio(len(self.sound), final=True)
            self.container.close()
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise

    def write_video(self, packet: av.Packet[VideoStream], pts: int, dts: int) -> None:
        if self.last_dts is not None and dts <= self.last_dts:
            # Clips from one encoder setting share their reorder delay; this one did not.
            raise ValueError("the clips' H.264 timestamps cannot be joined")
        self.last_dts = dts
        packet.stream = self.video
        packet.time_base = Fraction(1, self.fps)
        packet.pts = pts
        packet.dts = dts
        packet.duration = 1
        self.container.mux(packet)

    def advance_audio(self, frames: int) -> None:
        """Encode and mux the sound up to the end of video frame `frames`."""
        if self.audio is not None and self.sound is not None:
            self._encode_audio(min(audio_samples_for(frames, self.fps), len(self.sound)))

    def _encode_audio(self, until: int, *, final: bool = False) -> None:
        assert self.audio is not None and self.sound is not None
        while until - self.audio_pos >= AAC_FRAME_SAMPLES or (final and self.audio_pos < until):
            count = min(AAC_FRAME_SAMPLES, until - self.audio_pos)
            chunk = self.sound[self.audio_pos : self.audio_pos + count]
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk.T), format="fltp", layout="stereo"
            )
            frame.sample_rate = AUDIO_SAMPLE_RATE
            frame.pts = self.audio_pos
            frame.time_base = Fraction(1, AUDIO_SAMPLE_RATE)
            self.container.mux(self.audio.encode(frame))
            self.audio_pos += count
        if final:
            self.container.mux(self.audio.encode(None))
