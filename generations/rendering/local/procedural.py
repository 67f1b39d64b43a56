"""The `local` engine: procedural video on the CPU, offline and deterministic for a seed.

It is not a neural model. Text-to-video paints a scene chosen by the prompt's words (see
scenes.py: elements, time of day, colours, moods, pace) and placed by the seed;
image-to-video animates the input image with an eased camera move (push in, pull out, pan,
tilt, drift) or, with a fixed camera, with breathing light and fine grain only.
Sound beds come from :mod:`generations.media.audio`.

Frames are rendered straight into BT.709 limited-range I420 (the encoder's own format), one
at a time, and streamed into the encoder: no RGB frame exists at full size except the poster.
Text-to-video paints a small float field, converts it to Y'CbCr there, upscales the planes
to the output size and adds a fixed, seeded dither texture before rounding to 8 bits, so
gradients do not band even at 4K. Image-to-video warps the I420 planes of the input with
sub-pixel (1/32 px) bilinear sampling, so moves are smooth and never jitter.

PARAMETER_USE (parameters.py) says, for every request parameter, what this engine does with it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from generations.media.audio import synthesize
from generations.media.encode import (
    AudioSamples,
    I420Frame,
    Mp4Writer,
    PreviewCollector,
    SpritesheetCollector,
    audio_samples_for,
    i420_planes,
    i420_to_rgb,
    new_i420,
    preview_size,
    rgb_to_i420,
    rgb_to_ycbcr,
    sprite_thumb_size,
    write_poster,
)
from generations.media.images import ImageError, cover_crop, load_image
from generations.rendering.base import Canceled, EngineError, RenderContext, RenderResult
from generations.rendering.local.camera import (
    CameraMove,
    Travel,
    choose_move,
    choose_travel,
    ease,
)
from generations.rendering.local.scenes import TextScene, stable_seed
from generations.spec import GenerationSpec
from generations.vocabulary import I2V, MODES

VIDEO_NAME = "video.mp4"
POSTER_NAME = "poster.jpg"
PREVIEW_NAME = "preview.webp"
SPRITESHEET_NAME = "spritesheet.jpg"

# Share of the progress bar spent on frames; the rest covers the previews and the flush.
FRAME_PROGRESS_SHARE = 98.0
# Sound beds up to this long are synthesised alongside the first frames, longer ones first.
CONCURRENT_AUDIO_MAX_SECONDS = 20
# Dither: triangular noise of this peak amplitude (in 8-bit code values) before rounding.
DITHER_AMPLITUDE = 1.0
DITHER_TILE = 256
# Fixed camera: per-channel light gain drifts by at most this much over this period, and a
# fine grain of this strength (8-bit code values, standard deviation) changes every frame.
BREATH_DEPTH = 0.05
BREATH_PERIOD_S = 6.0
GRAIN_STRENGTH = 1.6

RGBFrame = npt.NDArray[np.uint8]
Float32Array = npt.NDArray[np.float32]


def _dither_tile(seed: int, size: int = DITHER_TILE) -> Float32Array:
    """A seeded triangular-PDF noise tile (sum of two uniforms), zero mean, +-amplitude."""
    rng = np.random.default_rng(stable_seed("dither", seed))
    tile = rng.random((size, size), dtype=np.float32) - rng.random((size, size), dtype=np.float32)
    return np.asarray(tile * DITHER_AMPLITUDE, dtype=np.float32)


def _tiled(tile: Float32Array, height: int, width: int, dy: int = 0, dx: int = 0) -> Float32Array:
    reps = (height // tile.shape[0] + 2, width // tile.shape[1] + 2)
    full = np.tile(tile, reps)
    return np.ascontiguousarray(full[dy : dy + height, dx : dx + width])


class _FrameSource(ABC):
    """What the engine loop needs from a scene: I420 frames, and small RGB copies."""

    width: int
    height: int

    @abstractmethod
    def i420(self, index: int, out: I420Frame) -> None:
        """Render frame `index` into `out`, an I420 buffer of the frame size."""

    @abstractmethod
    def rgb(self, index: int, size: tuple[int, int] | None) -> RGBFrame:
        """Frame `index` (the one just rendered) as RGB, at `size` (w, h) or full size."""


class TextVideo(_FrameSource):
    """Text-to-video: a TextScene's field, converted, upscaled and dithered into I420."""

    def __init__(self, spec: GenerationSpec, travel: Travel | None = None) -> None:
        self.width, self.height, self.fps = spec.width, spec.height, spec.fps
        self.num_frames = spec.num_frames
        # With an end frame, the camera travels through the painted field (see EndFrameVideo).
        self.travel = travel
        self.scene = TextScene(spec.prompt, spec.seed, spec.width, spec.height, spec.style)
        w, h = spec.width, spec.height
        tile = _dither_tile(spec.seed)
        # Different offsets per plane so the three dither patterns are uncorrelated.
        self.dither_y = _tiled(tile, h, w)
        self.dither_u = _tiled(tile, h // 2, w // 2, 97, 31)
        self.dither_v = _tiled(tile, h // 2, w // 2, 53, 151)
        self.big_y = np.empty((h, w), dtype=np.float32)
        self.big_u = np.empty((h // 2, w // 2), dtype=np.float32)
        self.big_v = np.empty((h // 2, w // 2), dtype=np.float32)
        self.field: Float32Array | None = None

    def i420(self, index: int, out: I420Frame) -> None:
        field = self.scene.field(index / self.fps)
        self.field = field
        self.buffer = out
        y, u, v = i420_planes(out, self.width, self.height)
        # Three separate planes: OpenCV resizes a contiguous plane several times faster
        # than one channel of an interleaved image.
        small_y, small_u, small_v = cv2.split(rgb_to_ycbcr(field, white=1.0))
        if self.travel is not None:
            zoom, cx, cy = self.travel.first_at(index / max(1, self.num_frames - 1))
            small_y, small_u, small_v = (
                _zoomed(p, zoom, cx, cy) for p in (small_y, small_u, small_v)
            )
        w, h = self.width, self.height
        cv2.resize(small_y, (w, h), dst=self.big_y, interpolation=cv2.INTER_CUBIC)
        cv2.resize(small_u, (w // 2, h // 2), dst=self.big_u, interpolation=cv2.INTER_LINEAR)
        cv2.resize(small_v, (w // 2, h // 2), dst=self.big_v, interpolation=cv2.INTER_LINEAR)
        cv2.add(self.big_y, self.dither_y, dst=y, dtype=cv2.CV_8U)
        cv2.add(self.big_u, self.dither_u, dst=u, dtype=cv2.CV_8U)
        cv2.add(self.big_v, self.dither_v, dst=v, dtype=cv2.CV_8U)

    def rgb(self, index: int, size: tuple[int, int] | None) -> RGBFrame:
        if size is None:
            return i420_to_rgb(self.buffer, self.width, self.height)
        assert self.field is not None
        small = cv2.resize(self.field * np.float32(255.0), size, interpolation=cv2.INTER_AREA)
        return np.asarray(cv2.convertScaleAbs(np.clip(small, 0, 255)), dtype=np.uint8)


def _read_image(path: Path) -> Image.Image:
    try:
        data = path.read_bytes()
    except OSError:
        raise EngineError("invalid_image", "The input image could not be read.") from None
    try:
        return load_image(data)
    except ImageError as exc:
        raise EngineError(exc.code, exc.message) from None


class _Panorama:
    """An image as I420 planes, seen through a moving camera window.

    The source is prescaled so that at the deepest zoom (`scale`) one output pixel still maps
    to at most one source pixel (no softening), and padded by a soft, blurred mirror (`pad`,
    a fraction of it per side) so a pull-out or a wide pan has something to reveal."""

    def __init__(
        self, image: Image.Image, width: int, height: int, scale: float, pad: float
    ) -> None:
        self.width, self.height = width, height
        sw, sh = _even(width * scale), _even(height * scale)
        canvas = _padded(cover_crop(image, sw, sh), pad)
        planes = i420_planes(rgb_to_i420(canvas), canvas.shape[1], canvas.shape[0])
        self.planes = (planes[0].copy(), planes[1].copy(), planes[2].copy())
        self.source_size = (sw, sh)
        self.pad_px = _pad_amount(sw, sh, pad)

    def render(self, zoom: float, cx: float, cy: float, out: I420Frame) -> None:
        """The window of size (w / zoom, h / zoom) in frame units, centred at (cx, cy)
        (fractions of the frame), sampled bilinearly at 1/32 px into `out`."""
        w, h = self.width, self.height
        sw, sh = self.source_size
        pad_x, pad_y = self.pad_px
        kx = sw / w / zoom
        ky = sh / h / zoom
        for plane, target, sub in zip(self.planes, i420_planes(out, w, h), (1, 2, 2), strict=True):
            ox = (cx * sw - kx * w / 2 + pad_x) / sub
            oy = (cy * sh - ky * h / 2 + pad_y) / sub
            # Output pixel centre (u, v) maps to canvas pixel (kx u + ox', ky v + oy').
            matrix = np.array(
                [[kx, 0.0, ox + 0.5 * kx - 0.5], [0.0, ky, oy + 0.5 * ky - 0.5]], dtype=np.float64
            )
            cv2.warpAffine(
                plane,
                matrix,
                (w // sub, h // sub),
                dst=target,
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )


class ImageVideo(_FrameSource):
    """Image-to-video: an eased camera move over the input, or a still camera that breathes."""

    def __init__(self, spec: GenerationSpec, image_path: Path) -> None:
        image = _read_image(image_path)
        w, h = self.width, self.height = spec.width, spec.height
        self.fps = spec.fps
        self.num_frames = spec.num_frames
        self.camera_fixed = spec.camera_fixed
        self.first = rgb_to_i420(cover_crop(image, w, h))
        self.buffer = self.first
        rng = np.random.default_rng(stable_seed("i2v", spec.seed, spec.prompt))
        self.move: CameraMove | None = None
        self.panorama: _Panorama | None = None
        if self.camera_fixed:
            self.breath = rng.uniform(-BREATH_DEPTH, BREATH_DEPTH, size=3)
            # Grain: one seeded texture, a different window of it every frame.
            grain = rng.standard_normal((h + 64, w + 64)).astype(np.float32) * GRAIN_STRENGTH
            self.grain = grain
            self.grain_offsets = rng.integers(0, 64, size=(max(1, spec.num_frames), 2))
            return
        self.move = choose_move(spec.prompt, spec.seed, spec.num_frames / spec.fps)
        self.panorama = _Panorama(image, w, h, self.move.max_zoom, self.move.padding)

    def i420(self, index: int, out: I420Frame) -> None:
        self.buffer = out
        if index == 0:
            out[...] = self.first
            return
        if self.camera_fixed:
            self._breathe(index, *i420_planes(out, self.width, self.height))
            return
        assert self.move is not None and self.panorama is not None
        self.panorama.render(*self.move.at(index / max(1, self.num_frames - 1)), out)

    def _breathe(self, index: int, y: I420Frame, u: I420Frame, v: I420Frame) -> None:
        t = index / self.fps
        # (1 - cos) / 2 starts at 0 with zero slope: the light eases out of frame 0.
        amount = 0.5 - 0.5 * math.cos(2 * math.pi * (t / BREATH_PERIOD_S))
        gains = 1.0 + self.breath * amount
        first_y, first_u, first_v = i420_planes(self.first, self.width, self.height)
        ramp = np.arange(256, dtype=np.float64)
        luma_lut = np.clip((ramp - 16) * gains[0] + 16 + 0.5, 0, 255).astype(np.uint8)
        # Colour breathing: chroma sways around neutral by the other two gains.
        u_lut = np.clip((ramp - 128) * gains[1] + 128 + 0.5, 0, 255).astype(np.uint8)
        v_lut = np.clip((ramp - 128) * gains[2] + 128 + 0.5, 0, 255).astype(np.uint8)
        cv2.LUT(first_y, luma_lut, dst=y)
        cv2.LUT(first_u, u_lut, dst=u)
        cv2.LUT(first_v, v_lut, dst=v)
        # Grain fades in with the breath so frame 1 is still almost the input.
        dy, dx = (int(v) for v in self.grain_offsets[index % len(self.grain_offsets)])
        window = self.grain[dy : dy + self.height, dx : dx + self.width]
        grain_amount = min(1.0, t / 0.5)
        grainy = cv2.scaleAdd(window, grain_amount, y.astype(np.float32))
        cv2.convertScaleAbs(grainy, dst=y)

    def rgb(self, index: int, size: tuple[int, int] | None) -> RGBFrame:
        return i420_to_rgb(self.buffer, self.width, self.height, size)


class EndFrameVideo(_FrameSource):
    """A clip that ends on a given image: the camera travels (camera.Travel) from the first
    image, or from the painted scene of text-to-video, into the end image, which dissolves in
    along the same eased curve. Per frame: the start rendered into the output buffer, the end
    image warped into a second one, one weighted sum of the two I420 buffers. The first and
    last frames are the cover crops themselves. A fixed camera keeps both framings still."""

    def __init__(self, spec: GenerationSpec, end_path: Path, first_path: Path | None) -> None:
        w, h = self.width, self.height = spec.width, spec.height
        self.num_frames = spec.num_frames
        end_image = _read_image(end_path)
        self.last = rgb_to_i420(cover_crop(end_image, w, h))
        self.scratch = new_i420(w, h)
        self.buffer = self.last
        self.travel: Travel | None = None
        if not spec.camera_fixed:
            self.travel = choose_travel(spec.prompt, spec.seed, spec.num_frames / spec.fps)
        scale, pad = (1.0, 0.0) if self.travel is None else (self.travel.max_zoom,
                                                               self.travel.padding)  # fmt: skip
        self.end = _Panorama(end_image, w, h, scale, pad) if self.travel else None
        self.first: I420Frame | None = None
        self.start: _Panorama | TextVideo
        if first_path is not None:
            first_image = _read_image(first_path)
            self.first = rgb_to_i420(cover_crop(first_image, w, h))
            self.start = _Panorama(first_image, w, h, scale, pad)
        else:
            self.start = TextVideo(spec, travel=self.travel)

    def i420(self, index: int, out: I420Frame) -> None:
        self.buffer = out
        last = self.num_frames - 1
        if index == last and index > 0:
            out[...] = self.last
            return
        if index == 0 and self.first is not None:
            out[...] = self.first
            return
        p = index / max(1, last)
        if isinstance(self.start, TextVideo):
            self.start.i420(index, out)
        elif self.travel is None:
            assert self.first is not None
            out[...] = self.first
        else:
            self.start.render(*self.travel.first_at(p), out)
        end = self.last
        if self.end is not None and self.travel is not None:
            self.end.render(*self.travel.second_at(p), self.scratch)
            end = self.scratch
        # The dissolve follows the travel's ease: at its fastest when the camera is.
        weight = ease(p)
        cv2.addWeighted(out, 1.0 - weight, end, weight, 0.0, dst=out)

    def rgb(self, index: int, size: tuple[int, int] | None) -> RGBFrame:
        return i420_to_rgb(self.buffer, self.width, self.height, size)


class _Background:
    """A function running on a thread of its own; `wait` joins it and re-raises its error."""

    def __init__(self, target: Callable[[], object]) -> None:
        self.error: BaseException | None = None
        self.target = target
        self.thread = threading.Thread(target=self._run, name="side-output", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.target()
        except BaseException as exc:  # handed to the thread that waits
            self.error = exc

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


class _RenderThread:
    """Renders frames on a second thread, a few ahead of the encoder, into reused buffers.

    numpy, OpenCV and x264 release the GIL for their heavy work, so painting the next frame
    overlaps with encoding the last one. Iterating yields (index, buffer); each buffer must
    be released once encoded. `finish` runs on the render thread after the last frame.
    An exception on the render thread is re-raised in the consuming thread (while iterating,
    or on leaving the `with` block).
    """

    BUFFERS = 3

    def __init__(
        self,
        source: _FrameSource,
        count: int,
        after_frame: Callable[[int], None],
        finish: Callable[[], None],
    ) -> None:
        self.source = source
        self.finish = finish
        self.error: BaseException | None = None
        self.count = count
        self.after_frame = after_frame
        self.free: queue.Queue[I420Frame] = queue.Queue()
        for _ in range(self.BUFFERS):
            self.free.put(new_i420(source.width, source.height))
        self.ready: queue.Queue[tuple[int, I420Frame] | BaseException | None] = queue.Queue()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="render", daemon=True)

    def __enter__(self) -> _RenderThread:
        self.thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:
            self.stop.set()
        # Unblock the renderer if it waits for a free buffer, then wait for it to finish.
        self.free.put(new_i420(2, 2))
        self.thread.join()
        if exc_type is None and self.error is not None:
            raise self.error

    def __iter__(self) -> Iterator[tuple[int, I420Frame]]:
        for _ in range(self.count):
            item = self.ready.get()
            if isinstance(item, BaseException):
                raise item
            if item is None:
                return
            yield item

    def release(self, buffer: I420Frame) -> None:
        self.free.put(buffer)

    def _run(self) -> None:
        try:
            for index in range(self.count):
                buffer = self.free.get()
                if self.stop.is_set():
                    return
                self.source.i420(index, buffer)
                self.after_frame(index)
                self.ready.put((index, buffer))
            self.finish()
        except BaseException as exc:  # handed to the consuming thread
            self.error = exc
            self.ready.put(exc)


def _zoomed(plane: cv2.typing.MatLike, zoom: float, cx: float, cy: float) -> Float32Array:
    """The window (1 / zoom of the plane, centred at (cx, cy) in fractions) at full size;
    outside the plane, its mirror."""
    h, w = plane.shape
    k = 1.0 / zoom
    ox = cx * w - k * w / 2 + 0.5 * k - 0.5
    oy = cy * h - k * h / 2 + 0.5 * k - 0.5
    matrix = np.array([[k, 0.0, ox], [0.0, k, oy]], dtype=np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return np.asarray(
        cv2.warpAffine(plane, matrix, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT),
        dtype=np.float32,
    )


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def _pad_amount(width: int, height: int, fraction: float) -> tuple[int, int]:
    return (_even(width * fraction), _even(height * fraction))


def _padded(image: RGBFrame, fraction: float) -> RGBFrame:
    """The image with a border of `fraction` of its size: a mirror of it, blurred and dimmed."""
    if fraction <= 0:
        return image
    h, w = image.shape[:2]
    px, py = _pad_amount(w, h, fraction)
    mirror = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_REFLECT_101)
    small = cv2.resize(mirror, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    blurred = cv2.resize(
        cv2.GaussianBlur(small, (0, 0), 6),
        (mirror.shape[1], mirror.shape[0]),
        interpolation=cv2.INTER_LINEAR,
    )
    dimmed = cv2.convertScaleAbs(blurred, alpha=0.85)
    # Outside the image, the sharp mirror fades into the blurred one over `feather` pixels
    # (a ramp on the distance to the image, built from two 1-D ramps: cheap at 4K).
    feather = max(2.0, min(px, py) / 4)
    xs = np.arange(mirror.shape[1], dtype=np.float32)
    ys = np.arange(mirror.shape[0], dtype=np.float32)
    out_x = np.maximum(np.maximum(px - xs, xs - (px + w - 1)), 0)
    out_y = np.maximum(np.maximum(py - ys, ys - (py + h - 1)), 0)
    distance = np.maximum.outer(out_y, out_x)
    weight = np.clip(1.0 - distance / feather, 0.0, 1.0).astype(np.float32)
    result = np.asarray(
        cv2.blendLinear(mirror, dimmed, weight, np.float32(1.0) - weight), dtype=np.uint8
    )
    # The image itself stays bit-exact inside the border.
    result[py : py + h, px : px + w] = image
    return result


class ProceduralEngine:
    """The built-in `local` engine (procedural, CPU, deterministic)."""

    name = "local"

    def render(self, spec: GenerationSpec, ctx: RenderContext) -> RenderResult:
        _check_spec(spec)
        source: _FrameSource
        first = ctx.input_image if spec.mode == I2V else None
        if spec.mode == I2V and first is None:
            raise EngineError("invalid_image", "Image-to-video needs an input image.")
        if ctx.end_image is not None:
            source = EndFrameVideo(spec, ctx.end_image, first)
        elif first is not None:
            source = ImageVideo(spec, first)
        else:
            source = TextVideo(spec)

        audio: AudioSamples | Callable[[], AudioSamples] | None = None
        if spec.add_audio:
            audio = functools.partial(
                synthesize,
                spec.audio_prompt or spec.prompt,
                spec.seed,
                audio_samples_for(spec.num_frames, spec.fps),
            )
            if spec.num_frames > CONCURRENT_AUDIO_MAX_SECONDS * spec.fps:
                # A long bed's synthesis holds a few hundred MB of temporaries: made before
                # x264 starts, they do not add to its peak (a 60 s 4K job stays < 1.5 GiB).
                audio = audio()
            # Otherwise synthesised on the writer's audio thread, while the first frames
            # render and x264 fills its lookahead.

        out = Path(ctx.output_dir)
        video_path = out / VIDEO_NAME
        poster_path = out / POSTER_NAME
        preview_path = out / PREVIEW_NAME
        sprite_path = out / SPRITESHEET_NAME
        preview = PreviewCollector(spec.num_frames)
        sprites = SpritesheetCollector(spec.num_frames)
        preview_wh = preview_size(spec.width, spec.height)
        sprite_wh = sprite_thumb_size(spec.width, spec.height)
        outputs = (video_path, poster_path, preview_path, sprite_path)
        poster: list[_Background] = []

        def side_outputs(index: int) -> None:
            # Runs on the render thread right after frame `index`, while its state is current.
            if index == 0:
                # The JPEG is compressed on a thread of its own (Pillow lets go of the GIL):
                # at the start x264 is still filling its lookahead and a core is free.
                first = source.rgb(0, None)
                poster.append(_Background(lambda: write_poster(first, poster_path)))
            if preview.wants(index):
                preview.offer(index, source.rgb(index, preview_wh))
            if sprites.wants(index):
                sprites.offer(index, source.rgb(index, sprite_wh))

        def finish() -> None:
            # Also on the render thread: overlaps with the encoder's flush.
            preview.save(preview_path)
            sprites.save(sprite_path)
            for task in poster:
                task.wait()

        try:
            # The writer is entered last so it closes (flushes x264) first, while the render
            # thread may still be saving the previews.
            with (
                _RenderThread(source, spec.num_frames, side_outputs, finish) as frames,
                Mp4Writer(
                    video_path,
                    spec.width,
                    spec.height,
                    spec.fps,
                    audio,
                    mark=ctx.mark,
                    label=ctx.label,
                ) as writer,
            ):
                for index, buffer in frames:
                    if ctx.should_stop():
                        raise Canceled()
                    writer.write_i420(buffer)
                    frames.release(buffer)
                    ctx.progress(FRAME_PROGRESS_SHARE * (index + 1) / spec.num_frames)
        except BaseException:
            # Canceled or failed: leave no half-written outputs behind (the poster's thread
            # is waited for, so that it cannot write the file after it was removed).
            for task in poster:
                with contextlib.suppress(Exception):
                    task.wait()
            for path in outputs:
                path.unlink(missing_ok=True)
            raise
        ctx.progress(100.0)
        return RenderResult.of(
            spec, video_path, poster_path, preview_path, sprite_path, has_audio=audio is not None
        )


def _check_spec(spec: GenerationSpec) -> None:
    if spec.width <= 0 or spec.height <= 0 or spec.width % 2 or spec.height % 2:
        raise EngineError(
            "invalid_request", f"Video size {spec.width}x{spec.height} must be even and positive."
        )
    if spec.fps <= 0 or spec.num_frames <= 0:
        raise EngineError("invalid_request", "The video needs at least one frame and a frame rate.")
    if spec.mode not in MODES:
        raise EngineError("invalid_request", f"Unknown mode {spec.mode!r}.")
