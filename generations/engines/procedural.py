"""The `local` engine: procedural video on the CPU, offline and deterministic for a seed.

It is not a neural model. Text-to-video paints slowly drifting light (gradients, soft glows,
a sweeping highlight) in a palette chosen from the prompt's words and the seed; image-to-video
animates the input image with a gentle push-in, or, with a fixed camera, a slight breathing
of light. Frames are rendered one at a time and streamed into the encoder.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from generations.engines.base import Canceled, EngineError, RenderContext, RenderResult
from generations.media.audio import synthesize_ambient
from generations.media.encode import (
    Mp4Writer,
    PreviewCollector,
    audio_samples_for,
    write_poster,
)
from generations.media.images import ImageError, cover_crop, load_image
from generations.specs import GenerationSpec

VIDEO_NAME = "video.mp4"
POSTER_NAME = "poster.jpg"
PREVIEW_NAME = "preview.webp"

# The light field is smooth, so it is computed small and upscaled: this is what keeps 4K fast.
FIELD_LONG_SIDE = 320
# Push-in: how much the image grows per second, and the most it grows over a whole clip.
PUSH_IN_PER_SECOND = 0.03
PUSH_IN_MIN = 0.05
PUSH_IN_MAX = 0.18
# Fraction of the frame the push-in may drift towards a seeded point of interest.
PUSH_IN_DRIFT = 0.6
# Fixed camera: the per-channel light gain varies by at most this much, over this period.
BREATH_DEPTH = 0.05
BREATH_PERIOD_S = 6.0
# Share of the progress bar spent on frames; the rest covers the preview and the muxer flush.
FRAME_PROGRESS_SHARE = 98.0

Float32Array = npt.NDArray[np.float32]
RGBFrame = npt.NDArray[np.uint8]

# Palettes, darkest first: background top, background bottom, then glow colours (sRGB 0-1).
_PALETTES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "ocean": ((0.02, 0.06, 0.16), (0.02, 0.22, 0.32), (0.05, 0.55, 0.62), (0.55, 0.85, 0.9)),
    "sunset": ((0.16, 0.05, 0.22), (0.55, 0.16, 0.28), (0.98, 0.45, 0.18), (1.0, 0.78, 0.38)),
    "forest": ((0.02, 0.08, 0.04), (0.08, 0.24, 0.12), (0.35, 0.6, 0.22), (0.95, 0.85, 0.55)),
    "night": ((0.01, 0.01, 0.05), (0.06, 0.05, 0.2), (0.35, 0.22, 0.7), (0.75, 0.8, 1.0)),
    "neon": ((0.03, 0.01, 0.08), (0.12, 0.02, 0.2), (0.95, 0.15, 0.65), (0.1, 0.85, 0.95)),
    "snow": ((0.35, 0.42, 0.55), (0.7, 0.78, 0.88), (0.92, 0.95, 1.0), (0.75, 0.7, 0.95)),
    "fire": ((0.1, 0.01, 0.0), (0.45, 0.06, 0.02), (0.95, 0.4, 0.05), (1.0, 0.8, 0.3)),
    "meadow": ((0.3, 0.55, 0.8), (0.62, 0.8, 0.9), (0.55, 0.75, 0.3), (1.0, 0.95, 0.7)),
}
_PALETTE_WORDS: dict[str, tuple[str, ...]] = {
    "ocean": ("ocean", "sea", "water", "wave", "waves", "underwater", "lake", "river", "blue"),
    "sunset": ("sunset", "sunrise", "dusk", "dawn", "evening", "pink", "purple", "twilight"),
    "forest": ("forest", "jungle", "tree", "trees", "woods", "green", "leaf", "leaves", "moss"),
    "night": ("night", "space", "stars", "galaxy", "cosmic", "moon", "dark", "nebula", "aurora"),
    "neon": ("neon", "city", "cyberpunk", "cyber", "club", "synthwave", "futuristic", "arcade"),
    "snow": ("snow", "ice", "winter", "frost", "frozen", "glacier", "cold", "white", "mist"),
    "fire": ("fire", "flame", "flames", "lava", "desert", "volcano", "ember", "red", "orange"),
    "meadow": ("meadow", "field", "spring", "summer", "sky", "clouds", "flower", "garden", "day"),
}
# Words that change the composition, not the colours.
_CALM_WORDS = ("calm", "still", "quiet", "slow", "gentle", "serene", "peaceful", "soft")
_ENERGETIC_WORDS = ("fast", "energetic", "dance", "storm", "explosion", "chaos", "busy", "rush")


def _stable_int(*parts: object) -> int:
    # Python's hash() is salted per process; a digest keeps renders identical across runs.
    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _words(text: str) -> set[str]:
    return {w.strip(".,;:!?\"'()[]").lower() for w in text.split()}


def _bayer(n: int) -> npt.NDArray[np.float32]:
    """An n x n ordered-dither threshold matrix in [-0.5, 0.5) (n a power of two)."""
    m = np.zeros((1, 1), dtype=np.float32)
    while m.shape[0] < n:
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]]).astype(np.float32)
    return np.asarray((m + 0.5) / (n * n) - 0.5, dtype=np.float32)


def _eased(p: float) -> float:
    """Sine ease-in-out: starts and ends at rest, so the motion never jerks."""
    return 0.5 - 0.5 * math.cos(math.pi * min(1.0, max(0.0, p)))


class _TextScene:
    """Soft glows drifting over a slowly turning gradient, lit by a passing highlight."""

    def __init__(self, spec: GenerationSpec) -> None:
        self.width = spec.width
        self.height = spec.height
        self.fps = spec.fps
        words = _words(spec.prompt)
        rng = np.random.default_rng(_stable_int("t2v", spec.seed, spec.prompt, spec.style))
        scores = {k: len(words & set(v)) for k, v in _PALETTE_WORDS.items()}
        best = max(scores.values())
        if best:
            name = sorted(k for k, s in scores.items() if s == best)[0]
        else:
            names = sorted(_PALETTES)
            name = names[_stable_int("palette", spec.prompt) % len(names)]
        palette = np.array(_PALETTES[name], dtype=np.float32)
        # The seed shifts the palette a little so two seeds of one prompt look related.
        shift = rng.uniform(-0.08, 0.08, size=(1, 3)).astype(np.float32)
        self.palette = np.clip(palette + shift * (0.4 + palette), 0.0, 1.0)

        tempo = 1.0
        if words & set(_CALM_WORDS):
            tempo = 0.6
        elif words & set(_ENERGETIC_WORDS):
            tempo = 1.8

        scale = FIELD_LONG_SIDE / max(self.width, self.height)
        self.fw = max(8, round(self.width * scale))
        self.fh = max(8, round(self.height * scale))
        # Coordinates normalised to the short side, centred: shapes stay round at any aspect.
        short = min(self.fw, self.fh)
        self.xs = ((np.arange(self.fw, dtype=np.float32) + 0.5) - self.fw / 2) / short
        self.ys = ((np.arange(self.fh, dtype=np.float32) + 0.5) - self.fh / 2) / short
        half_w = self.fw / short / 2
        half_h = self.fh / short / 2

        self.angle0 = float(rng.uniform(-0.6, 0.6))
        self.angle_rate = float(rng.uniform(0.05, 0.12)) * tempo
        glows = int(rng.integers(4, 7))
        self.glows: list[tuple[float, ...]] = []
        for _ in range(glows):
            self.glows.append(
                (
                    float(rng.uniform(-half_w * 0.7, half_w * 0.7)),  # centre x
                    float(rng.uniform(-half_h * 0.7, half_h * 0.7)),  # centre y
                    float(rng.uniform(0.15, 0.45)) * half_w,  # drift amplitude x
                    float(rng.uniform(0.15, 0.45)) * half_h,  # drift amplitude y
                    float(rng.uniform(2 * math.pi / 24, 2 * math.pi / 9)) * tempo,  # speed x
                    float(rng.uniform(2 * math.pi / 24, 2 * math.pi / 9)) * tempo,  # speed y
                    float(rng.uniform(0, 2 * math.pi)),  # phase x
                    float(rng.uniform(0, 2 * math.pi)),  # phase y
                    float(rng.uniform(0.18, 0.5)),  # radius
                    float(rng.uniform(0.35, 0.75)),  # intensity
                    float(rng.integers(2, len(self.palette))),  # palette index
                )
            )
        self.sweep_rate = float(rng.uniform(0.04, 0.09)) * tempo
        self.sweep_phase = float(rng.uniform(0, 1))
        self.sweep_angle = float(rng.uniform(0.3, 1.2))
        gx, gy = np.meshgrid(self.xs, self.ys)
        self.gx = gx.astype(np.float32)
        self.gy = gy.astype(np.float32)
        radius2 = (gx / max(half_w, 1e-6)) ** 2 + (gy / max(half_h, 1e-6)) ** 2
        self.vignette = (1.0 - 0.28 * radius2)[..., None].astype(np.float32)

        # Ordered dither, one tile per channel offset so the pattern does not line up in grey.
        tile = _bayer(8)
        reps = (self.height // 8 + 2, self.width // 8 + 2)
        full = np.tile(tile, reps)
        self.dither = np.stack(
            [
                full[: self.height, : self.width],
                full[3 : self.height + 3, 5 : self.width + 5],
                full[6 : self.height + 6, 2 : self.width + 2],
            ],
            axis=-1,
        ).astype(np.float32)

    def field(self, t: float) -> Float32Array:
        """The frame's light at the small internal size, RGB in 0-1."""
        pal = self.palette
        angle = self.angle0 + 0.35 * math.sin(self.angle_rate * t)
        ramp = self.gx * math.sin(angle) + self.gy * math.cos(angle)
        span = float(np.abs(ramp).max()) or 1.0
        mix = (ramp / span * 0.5 + 0.5)[..., None]
        img = pal[0] * (1.0 - mix) + pal[1] * mix
        for cx, cy, ax, ay, wx, wy, px, py, radius, intensity, idx in self.glows:
            x = cx + ax * math.sin(wx * t + px)
            y = cy + ay * math.sin(wy * t + py)
            r = radius * (1.0 + 0.12 * math.sin(0.5 * wx * t + py))
            # Separable Gaussian: two 1-D profiles and an outer product instead of a 2-D exp.
            profile = np.outer(
                np.exp(-(((self.ys - y) / r) ** 2)), np.exp(-(((self.xs - x) / r) ** 2))
            )[..., None]
            glow = pal[int(idx)] * (intensity * profile)
            img = 1.0 - (1.0 - img) * (1.0 - glow)  # screen blend: light adds without clipping
        # A broad highlight sweeping across the frame, like light through a window.
        pos = ((self.sweep_rate * t + self.sweep_phase) % 1.0) * 4.0 - 2.0
        band = self.gx * math.cos(self.sweep_angle) + self.gy * math.sin(self.sweep_angle)
        sweep = np.exp(-(((band - pos) / 0.35) ** 2))[..., None] * 0.12
        img = img + sweep * (pal[-1] - img * 0.5)
        return np.asarray(img * self.vignette, dtype=np.float32)

    def frame(self, index: int) -> RGBFrame:
        small = self.field(index / self.fps) * 255.0
        big = np.asarray(
            cv2.resize(small, (self.width, self.height), interpolation=cv2.INTER_CUBIC),
            dtype=np.float32,
        )
        big += self.dither
        # convertScaleAbs rounds and saturates to uint8 in one pass; the field is never
        # meaningfully negative, so the absolute value changes nothing visible.
        return np.asarray(cv2.convertScaleAbs(big), dtype=np.uint8)


class _ImageScene:
    """Animates a still: eased push-in, or fixed framing with gently breathing light."""

    def __init__(self, spec: GenerationSpec, image_path: Path) -> None:
        try:
            data = image_path.read_bytes()
        except OSError:
            raise EngineError("invalid_image", "The input image could not be read.") from None
        try:
            image = load_image(data)
        except ImageError as exc:
            raise EngineError(exc.code, exc.message) from None
        self.width = spec.width
        self.height = spec.height
        self.fps = spec.fps
        self.num_frames = spec.num_frames
        self.camera_fixed = spec.camera_fixed
        self.first = cover_crop(image, spec.width, spec.height)
        rng = np.random.default_rng(_stable_int("i2v", spec.seed, spec.prompt))
        if self.camera_fixed:
            self.breath = rng.uniform(-BREATH_DEPTH, BREATH_DEPTH, size=3)
            self.breath_phase = float(rng.uniform(0.0, 1.0))
            self.source: RGBFrame | None = None
            return
        seconds = spec.num_frames / spec.fps
        self.zoom_max = 1.0 + min(PUSH_IN_MAX, max(PUSH_IN_MIN, PUSH_IN_PER_SECOND * seconds))
        self.drift = rng.uniform(-PUSH_IN_DRIFT, PUSH_IN_DRIFT, size=2)
        # Prescaled so that even at the deepest zoom one output pixel maps to at most one
        # source pixel: the push-in never softens, and the shrink from the source is slight.
        self.scale = self.zoom_max
        self.source = cover_crop(
            image, round(spec.width * self.scale), round(spec.height * self.scale)
        )

    def frame(self, index: int) -> RGBFrame:
        if index == 0:
            return self.first
        if self.camera_fixed:
            return self._breathe(index)
        assert self.source is not None
        p = index / max(1, self.num_frames - 1)
        z = 1.0 + (self.zoom_max - 1.0) * _eased(p)
        w, h = self.width, self.height
        # The window centre may drift as far as the zoom allows without leaving the image.
        cx = w / 2 + self.drift[0] * (w / 2) * (1 - 1 / z)
        cy = h / 2 + self.drift[1] * (h / 2) * (1 - 1 / z)
        sx = self.source.shape[1] / w
        sy = self.source.shape[0] / h
        ax, ay = sx / z, sy / z
        # Maps output pixel centres to source pixel centres (sub-pixel: no jitter).
        matrix = np.array(
            [
                [ax, 0.0, sx * cx - ax * w / 2 + 0.5 * ax - 0.5],
                [0.0, ay, sy * cy - ay * h / 2 + 0.5 * ay - 0.5],
            ],
            dtype=np.float64,
        )
        out = cv2.warpAffine(
            self.source,
            matrix,
            (w, h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        return np.asarray(out, dtype=np.uint8)

    def _breathe(self, index: int) -> RGBFrame:
        t = index / self.fps
        # (1 - cos) / 2 starts at 0 with zero slope: frame 0 is the image itself.
        amount = 0.5 - 0.5 * math.cos(2 * math.pi * (t / BREATH_PERIOD_S))
        gains = 1.0 + self.breath * amount
        lut = np.clip(np.arange(256, dtype=np.float64)[:, None] * gains + 0.5, 0, 255)
        table = lut.astype(np.uint8).reshape(1, 256, 3)
        return np.asarray(cv2.LUT(self.first, table), dtype=np.uint8)


class ProceduralEngine:
    """The built-in `local` engine (procedural, CPU, deterministic)."""

    name = "local"

    def render(self, spec: GenerationSpec, ctx: RenderContext) -> RenderResult:
        _check_spec(spec)
        scene: _TextScene | _ImageScene
        if spec.mode == "image-to-video":
            if ctx.input_image is None:
                raise EngineError("invalid_image", "Image-to-video needs an input image.")
            scene = _ImageScene(spec, ctx.input_image)
        else:
            scene = _TextScene(spec)

        audio = None
        if spec.add_audio:
            audio = synthesize_ambient(
                spec.audio_prompt or spec.prompt,
                spec.seed,
                audio_samples_for(spec.num_frames, spec.fps),
            )

        out = Path(ctx.output_dir)
        video_path = out / VIDEO_NAME
        poster_path = out / POSTER_NAME
        preview_path = out / PREVIEW_NAME
        preview = PreviewCollector(spec.num_frames)
        try:
            with Mp4Writer(video_path, spec.width, spec.height, spec.fps, audio) as writer:
                for index in range(spec.num_frames):
                    if ctx.should_stop():
                        raise Canceled()
                    frame = scene.frame(index)
                    writer.write(frame)
                    if index == 0:
                        write_poster(frame, poster_path)
                    preview.offer(index, frame)
                    ctx.progress(FRAME_PROGRESS_SHARE * (index + 1) / spec.num_frames)
            preview.save(preview_path)
        except BaseException:
            # Canceled or failed: leave no half-written outputs behind.
            for path in (video_path, poster_path, preview_path):
                path.unlink(missing_ok=True)
            raise
        ctx.progress(100.0)
        return RenderResult(
            video_path=video_path,
            poster_path=poster_path,
            frame_count=spec.num_frames,
            fps=spec.fps,
            width=spec.width,
            height=spec.height,
            has_audio=audio is not None,
            extras={"preview": preview_path},
        )


def _check_spec(spec: GenerationSpec) -> None:
    if spec.width <= 0 or spec.height <= 0 or spec.width % 2 or spec.height % 2:
        raise EngineError(
            "invalid_request", f"Video size {spec.width}x{spec.height} must be even and positive."
        )
    if spec.fps <= 0 or spec.num_frames <= 0:
        raise EngineError("invalid_request", "The video needs at least one frame and a frame rate.")
    if spec.mode not in ("text-to-video", "image-to-video"):
        raise EngineError("invalid_request", f"Unknown mode {spec.mode!r}.")
