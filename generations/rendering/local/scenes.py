"""Prompt-driven procedural scenes for the `local` engine's text-to-video.

The prompt is read as a vocabulary, not understood (the tables are in
scene_families.py): element words (ocean, fire, forest, sky, space,
city, snow, rain, neon, desert, mountains, aurora, ...) choose the families whose layers are
painted; time-of-day words (dawn, noon, sunset, night, ...) choose the light; colour words
(red, teal, gold, ...) tint the grade and the lights; mood words (dark, dreamy, vibrant,
misty) change exposure, saturation, bloom and fog; motion words (slow, calm, fast, swirling,
drifting) set the pace and the kind of motion. A prompt that names no element but names a
light, the weather or a mood gets a fitting one (dawn: a sky at dawn; misty: a valley); only
a prompt with no known word gets an element picked by its digest. The seed places everything
(horizon, sun, silhouettes, particles, phases), and a digest of the prompt itself nudges hues
and layout so that two different prompts never paint the same picture. Python's hash() is
never used: every random choice comes from a numpy Generator seeded from a sha256 digest.

A scene is a stack of layers (`LAYERS`, one small class per kind of thing painted): each is
built once, with whatever does not change over time precomputed, and paints its light into
the frame in turn. A scene paints a small RGB float "field" (a few hundred pixels on the long
side) per frame; the engine converts it to Y'CbCr, upscales it to the output size and dithers
it there. Everything moves as a smooth function of time, so 30 fps motion has no steps.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

import cv2
import numpy as np
import numpy.typing as npt

from generations.rendering.local.scene_families import (
    COLOUR_WORDS,
    DRIFT_LAYERS,
    DRIFT_WORDS,
    FALLBACK_ELEMENTS,
    FAMILIES,
    FAMILY_BY_NAME,
    MOOD_LAYERS,
    MOOD_WORDS,
    PACE_WORDS,
    SWIRL_LAYERS,
    SWIRL_WORDS,
    TIME_BY_NAME,
    TIME_WORDS,
    Colour,
    Family,
    LayerKind,
    TimeOfDay,
)

Float32Array = npt.NDArray[np.float32]


def stable_seed(*parts: object) -> int:
    """64 bits of a sha256 digest: the same on every run and every machine."""
    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def words_of(text: str) -> set[str]:
    cleaned = text.lower().replace("-", " ").replace("/", " ")
    return {w.strip(".,;:!?\"'()[]") for w in cleaned.split()}


@dataclass
class SceneRecipe:
    """What the words asked for; recorded so tests and docs can see the reading."""

    elements: list[str]
    time_of_day: str
    moods: list[str]
    colours: list[str]
    pace: float
    swirl: bool
    drift: bool
    extra: dict[str, float] = field(default_factory=dict)


def read_prompt(prompt: str, style: str = "") -> SceneRecipe:
    words = words_of(f"{prompt} {style}")
    elements = _elements(prompt, words)
    times = [t for t, vocab in TIME_WORDS.items() if words & set(vocab)]
    if not times:
        weather = [FAMILY_BY_NAME[e] for e in elements if FAMILY_BY_NAME[e].weather]
        if weather:
            times = [weather[0].times[0]]
    moods = [m for m, vocab in MOOD_WORDS.items() if words & set(vocab)]
    colours = [c for c in COLOUR_WORDS if c in words]
    pace = 1.0
    for vocab, factor in PACE_WORDS.values():
        if words & set(vocab):
            pace = factor
    swirl = bool(words & set(SWIRL_WORDS))
    drift = bool(words & set(DRIFT_WORDS))
    if swirl and pace == 1.0:
        pace = 1.3
    return SceneRecipe(
        elements=elements[:4],
        time_of_day=times[-1] if times else "",
        moods=moods,
        colours=colours,
        pace=pace,
        swirl=swirl,
        drift=drift,
    )


def _elements(prompt: str, words: set[str]) -> list[str]:
    """The families the words name; else those their light, weather or mood hints at; else
    one the prompt's digest picks (so that an unknown prompt still paints something)."""
    named = [family.name for family in FAMILIES if family.matches(words)]
    if named:
        return named
    hinted = [family.name for family in FAMILIES if words.intersection(family.hints)]
    if hinted:
        return hinted
    digest = stable_seed("elements", prompt.strip().lower())
    return [FALLBACK_ELEMENTS[digest % len(FALLBACK_ELEMENTS)]]


def field_long_side(width: int, height: int) -> int:
    """Internal resolution of the painted field: larger for larger outputs (crisper detail)."""
    long = max(width, height)
    if long >= 3000:
        return 448
    if long >= 1600:
        return 352
    return 256


def _periodic_noise(
    rng: np.random.Generator, h: int, w: int, beta: float, cutoff: float
) -> Float32Array:
    """Tileable fractal noise in 0-1 (power spectrum 1/f^beta, cut off below `cutoff` cycles)."""
    white = rng.standard_normal((h, w))
    fy = np.fft.fftfreq(h)[:, None] * h
    fx = np.fft.rfftfreq(w)[None, :] * w
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2) * np.exp(-((f / cutoff) ** 2))
    amp[0, 0] = 0.0
    out = np.fft.irfft2(np.fft.rfft2(white) * amp, s=(h, w))
    lo, hi = np.percentile(out, (1, 99))
    return np.asarray(np.clip((out - lo) / ((hi - lo) or 1.0), 0, 1), dtype=np.float32)


def _splat(
    h: int, w: int, xs: Float32Array, ys: Float32Array, weights: Float32Array
) -> Float32Array:
    """Bilinear splat of points (pixel coordinates) into an h x w image: sub-pixel, no jitter."""
    x0 = np.floor(xs)
    y0 = np.floor(ys)
    fx = xs - x0
    fy = ys - y0
    x0i = x0.astype(np.int64)
    y0i = y0.astype(np.int64)
    acc = np.zeros(h * w, dtype=np.float64)
    for dx, dy, wt in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        xi = x0i + dx
        yi = y0i + dy
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        acc += np.bincount((yi * w + xi)[ok], weights=(weights * wt)[ok], minlength=h * w)
    return acc.reshape(h, w).astype(np.float32)


def _lerp(a: Colour, b: Colour, t: float) -> Colour:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def _colour(values: Iterable[float]) -> Colour:
    r, g, b = values
    return (float(r), float(g), float(b))


def _col(c: Colour | npt.NDArray[np.float32]) -> Float32Array:
    return np.asarray(c, dtype=np.float32).reshape(1, 1, 3)


def _paint(
    value: npt.NDArray[np.floating],
    colour: Colour | Float32Array,
    offset: Float32Array | None = None,
) -> Float32Array:
    """`value` (h, w) times an RGB colour, plus an RGB offset, as an (h, w, 3) image."""
    plane = np.asarray(value, dtype=np.float32)
    gains = np.ravel(np.asarray(colour, dtype=np.float32))
    if offset is None:
        planes = [plane * gains[c] for c in range(3)]
    else:
        shifts = np.ravel(np.asarray(offset, dtype=np.float32))
        planes = [plane * gains[c] + shifts[c] for c in range(3)]
    return np.asarray(cv2.merge(planes), dtype=np.float32)


def _spread(value: npt.NDArray[np.floating]) -> Float32Array:
    """An (h, w) plane as three equal channels: a per-pixel factor for an RGB image."""
    plane = np.ascontiguousarray(value, dtype=np.float32)
    return np.asarray(cv2.merge([plane, plane, plane]), dtype=np.float32)


def _overlay(
    mask: Float32Array, colour: Colour, shade: Float32Array | None = None
) -> tuple[Float32Array, Float32Array]:
    """(keep, add) for painting `colour` (times `shade`) over the image where `mask` is 1."""
    cover = mask if shade is None else mask * shade
    return _spread(1 - mask), _paint(np.asarray(cover, dtype=np.float32), colour)


class _Particles:
    """Points that move with constant velocity plus sway, wrapping around the frame."""

    def __init__(
        self,
        rng: np.random.Generator,
        count: int,
        w: int,
        h: int,
        velocity: tuple[float, float],
        speed_jitter: float,
        sway: float,
        sigma: float,
        colour: Colour,
        brightness: float,
        streak: float = 0.0,
        twinkle: float = 0.0,
        region: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        self.w, self.h = w, h
        self.x0 = rng.uniform(0, w, count).astype(np.float32)
        self.y0 = rng.uniform(0, h, count).astype(np.float32)
        speed = 1 + speed_jitter * rng.uniform(-1, 1, count).astype(np.float32)
        self.vx = np.float32(velocity[0]) * speed
        self.vy = np.float32(velocity[1]) * speed
        self.sway = sway * rng.uniform(0.3, 1, count).astype(np.float32)
        self.sway_rate = rng.uniform(0.3, 1.1, count).astype(np.float32)
        self.phase = rng.uniform(0, 2 * np.pi, count).astype(np.float32)
        self.bright = brightness * rng.uniform(0.35, 1.0, count).astype(np.float32)
        self.sigma = sigma
        self.colour = _col(colour)
        self.streak = streak
        self.twinkle = twinkle
        self.region = region

    def render(self, t: float) -> Float32Array:
        w, h = self.w, self.h
        lo, hi = self.region[0] * h, self.region[1] * h
        xs = (self.x0 + self.vx * t + self.sway * np.sin(self.sway_rate * t + self.phase)) % w
        span = max(1.0, hi - lo)
        ys = lo + (self.y0 + self.vy * t - lo) % span
        weights = self.bright
        if self.twinkle:
            weights = weights * (
                1 - self.twinkle * (0.5 + 0.5 * np.sin(2.3 * self.sway_rate * t * 3 + self.phase))
            )
        if self.streak:
            # A streak is a few points along the motion, fading towards its tail.
            norm = math.hypot(float(self.vx.mean()), float(self.vy.mean())) or 1.0
            dx = float(self.vx.mean()) / norm * self.streak
            dy = float(self.vy.mean()) / norm * self.streak
            steps = max(6, int(self.streak * 1.5))
            pts_x = np.concatenate([xs - dx * k / steps for k in range(steps)])
            pts_y = np.concatenate([ys - dy * k / steps for k in range(steps)])
            pts_w = np.concatenate([weights * (1 - k / steps) for k in range(steps)])
            img = _splat(
                h, w, pts_x.astype(np.float32), pts_y.astype(np.float32), pts_w.astype(np.float32)
            )
        else:
            img = _splat(
                h, w, xs.astype(np.float32), ys.astype(np.float32), weights.astype(np.float32)
            )
        if self.sigma > 0:
            img = np.asarray(cv2.GaussianBlur(img, (0, 0), self.sigma), dtype=np.float32)
            img *= np.float32(2 * math.pi * self.sigma * self.sigma) * 0.5
        return _paint(img, self.colour)


# --- what the layers of one scene share ---------------------------------------------------


@dataclass(frozen=True, eq=False)
class Canvas:
    """One scene's frame and light, shared by its layers.

    Coordinates: `xs` is (1, w) and `ys` is (h, 1), both 0-1 at pixel centres (y down); the
    horizon is a y (below 1 when the scene has ground). Times passed to layers are seconds;
    a layer multiplies them by `pace` for everything that the motion words speed up.
    """

    recipe: SceneRecipe
    families: tuple[Family, ...]
    time: TimeOfDay
    kinds: frozenset[LayerKind]
    w: int
    h: int
    xs: Float32Array
    ys: Float32Array
    horizon: float
    sky: Float32Array  # (h, w, 3): the background gradient every frame starts from
    sun_colour: Colour
    sun_x: float
    sun_y: float
    retro_sun: bool
    accent: Colour  # the colour words' mean, else a colour of the prompt's own
    noise_a: Float32Array  # two tileable textures that clouds, flames, water... scroll
    noise_b: Float32Array
    drift_dir: float  # -1 to 1: which way (and how much) things drift sideways

    @property
    def aspect(self) -> float:
        return self.w / self.h

    @property
    def pace(self) -> float:
        return self.recipe.pace

    def swirl(self, tp: float) -> float:
        """Rotation (radians) of swirling textures at paced time `tp`: none unless asked."""
        return 0.05 * tp if self.recipe.swirl else 0.0

    def scroll(
        self,
        tex: Float32Array,
        dx: float,
        dy: float,
        scale: float = 1.0,
        angle: float = 0.0,
        top: int = 0,
    ) -> Float32Array:
        """Sample a tileable texture shifted (pixels), scaled and rotated; sub-pixel exact.

        Only the rows from `top` down are sampled (the rest would be thrown away).
        """
        h, w = self.h, self.w
        c, s = math.cos(angle) / scale, math.sin(angle) / scale
        cx, cy = w / 2, h / 2
        # Output row y - top samples where row y would: shift the map by `top` rows.
        matrix = np.array(
            [
                [c, -s, cx - c * cx + s * cy + dx - s * top],
                [s, c, cy - s * cx - c * cy + dy + c * top],
            ],
            dtype=np.float64,
        )
        out = cv2.warpAffine(
            tex,
            matrix,
            (w, h - top),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_WRAP,
        )
        return np.asarray(out, dtype=np.float32)


def compose_layers(
    recipe: SceneRecipe, families: tuple[Family, ...], time: TimeOfDay
) -> frozenset[LayerKind]:
    """The layer kinds the tables give this reading: every contribution, minus every veto."""
    wanted: set[LayerKind] = set(time.layers)
    vetoed: set[LayerKind] = set(time.vetoes)
    for family in families:
        wanted.update(family.layers)
        if time.name == "dawn":
            wanted.update(family.dawn_layers)
        vetoed.update(family.vetoes)
    for mood in recipe.moods:
        wanted.update(MOOD_LAYERS.get(mood, ()))
    if recipe.swirl:
        wanted.update(SWIRL_LAYERS)
    if recipe.drift:
        wanted.update(DRIFT_LAYERS)
    return frozenset(wanted - vetoed)


# --- layers -------------------------------------------------------------------------------


class Layer(ABC):
    """One kind of thing in the picture: built once per scene, then painted every frame.

    Whatever does not change with time (silhouettes, perspective, colours) is computed in
    the constructor; `paint` adds only what moves. Colours are applied channel by channel
    (`_paint`, `_spread`): numpy broadcasting of an (h, w, 1) plane against an RGB triple is
    several times slower than flat planes.
    """

    kinds: ClassVar[tuple[LayerKind, ...]]  # the kinds, named by the tables, it paints

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        self.canvas = canvas

    @abstractmethod
    def paint(self, img: Float32Array, t: float) -> None:
        """Paint this layer at `t` seconds into `img` (h, w, 3), in place."""


class _Silhouettes(Layer):
    """Opaque shapes in front of what is behind: img -> img * keep + add, fixed per scene."""

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        self.overlays: list[tuple[Float32Array, Float32Array]] = []

    def paint(self, img: Float32Array, t: float) -> None:
        for keep, add in self.overlays:
            img *= keep
            img += add


class _ParticleLayer(Layer):
    """Moving points (flakes, drops, sparks, lights), each set rendered and added in turn."""

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        self.parts: list[_Particles] = []
        self.unit = max(canvas.w, canvas.h) / 352  # sizes and speeds are for a 352 px field

    def paint(self, img: Float32Array, t: float) -> None:
        p = self.canvas.pace
        tp = t * p
        for part in self.parts:
            # Streaks (rain) follow the pace fully; slow floating things never quite stop.
            img += part.render(tp if part.streak else t * max(p, 0.6))


class Nebula(Layer):
    """Deep space: two slowly scrolling clouds of coloured gas."""

    kinds = ("nebula",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        self.near = np.asarray(canvas.accent, dtype=np.float32) * 0.9 * 0.8
        far = (0.15, 0.3, 0.9) if canvas.accent[2] < 0.6 else (0.9, 0.25, 0.55)
        self.far = np.asarray(far, dtype=np.float32) * 0.6

    def paint(self, img: Float32Array, t: float) -> None:
        c = self.canvas
        tp = t * c.pace
        swirl = c.swirl(tp)
        neb = c.scroll(c.noise_b, 3.0 * tp * c.drift_dir, 1.2 * tp, 1.0 + 0.01 * tp, swirl * 0.6)
        neb2 = c.scroll(c.noise_a, -2.0 * tp, 2.0 * tp * c.drift_dir, 1.2, -swirl * 0.4)
        img += _paint(neb**2.2, self.near)
        img += _paint(neb2 * neb2 * neb2, self.far)


class Aurora(Layer):
    """Curtains of light high in the sky, green at the top turning purple below."""

    kinds = ("aurora",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        green, purple = (0.2, 1.0, 0.55), (0.6, 0.3, 1.0)
        ys = canvas.ys
        # Per channel, a colour that shifts from green (top) to purple (bottom): (h, 1).
        self.mix = [
            np.asarray((green[c] * (1 - ys) + purple[c] * ys * 0.8) * 0.9, dtype=np.float32)
            for c in range(3)
        ]

    def paint(self, img: Float32Array, t: float) -> None:
        c = self.canvas
        tp = t * c.pace
        xs, ys = c.xs, c.ys
        wave = c.scroll(c.noise_a, 6.0 * tp, 0.0, 1.0, c.swirl(tp))
        curtain_x = np.sin(xs * 9 + wave * 4 + 0.4 * tp)
        band = np.exp(-(((ys - 0.3 - 0.1 * curtain_x) / 0.16) ** 2)) * (0.5 + 0.5 * wave)
        rays = 0.6 + 0.4 * np.sin(xs * 70 + wave * 12)
        light = band * rays
        img += cv2.merge([light * mix for mix in self.mix])


class Stars(Layer):
    """Twinkling stars above the horizon: a dense field behind a nebula, sparse otherwise."""

    kinds = ("stars",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        h, w = canvas.h, canvas.w
        n = int(w * h / (60 if "nebula" in canvas.kinds else 140))
        sx = rng.uniform(0, w, n).astype(np.float32)
        sy = rng.uniform(0, h * min(1.0, canvas.horizon), n).astype(np.float32)
        sb = (rng.pareto(2.0, n) * 0.35 + 0.08).astype(np.float32)
        stars = _splat(h, w, sx, sy, np.minimum(sb, 2.5).astype(np.float32))
        self.stars = cv2.GaussianBlur(stars, (0, 0), 0.55) * 2.2
        self.phase = rng.uniform(0, 2 * np.pi, (h, w)).astype(np.float32)

    def paint(self, img: Float32Array, t: float) -> None:
        twinkle = 0.75 + 0.25 * np.sin(self.phase + 2.2 * t)
        img += _paint(self.stars * twinkle, (0.95, 0.95, 1.0))


class Sun(Layer):
    """The sun (or the moon at night): a disc and its halo, rising at dawn, sinking at dusk."""

    kinds = ("sun",)

    def paint(self, img: Float32Array, t: float) -> None:
        c = self.canvas
        tp = t * c.pace
        xs, ys, h = c.xs, c.ys, c.h
        sx = c.sun_x + 0.01 * math.sin(0.05 * tp)
        sy = c.sun_y + c.time.sun_sink * tp
        dist = np.sqrt(((xs - sx) * c.aspect) ** 2 + (ys - sy) ** 2)
        if c.retro_sun:
            # A synthwave sun: large, its lower half cut by stripes that scroll down.
            stripes = (np.sin(ys * h * 0.9 - 2 * tp) > (ys - sy) * 22).astype(np.float32)
            disc = np.clip((0.16 - dist) * h * 0.8, 0, 1) * np.where(
                ys > sy, stripes, np.float32(1.0)
            )
        else:
            disc = np.clip((0.045 - dist) * h * 0.8, 0, 1)
        halo = np.exp(-dist / 0.12) * 0.45 + np.exp(-dist / 0.45) * 0.2
        img += _paint(disc * 1.2 + halo * c.time.sun_glow, c.sun_colour)


class Clouds(Layer):
    """Drifting clouds above the horizon: plenty in a sky scene, a few under weather light."""

    kinds = ("clouds", "weather_clouds")

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        # A sky scene's clouds are the subject: faster and denser than the weather's.
        self.speed, self.cover = (4.0, 0.45) if "clouds" in canvas.kinds else (2.0, 0.55)
        lit = np.array(_lerp(canvas.sun_colour, (1.0, 1.0, 1.0), 0.5), dtype=np.float32)
        shade = np.array(canvas.time.cloud_shade, dtype=np.float32)
        span = (lit - shade) * canvas.time.cloud_contrast
        # cloud = shade + (lit - shade) * (1 - cl2) * k: per channel, affine in cl2.
        self.gain, self.offset = -span, shade + span
        self.below_horizon = np.clip((canvas.horizon - canvas.ys) * 4, 0, 1)

    def paint(self, img: Float32Array, t: float) -> None:
        c = self.canvas
        tp = t * c.pace
        swirl = c.swirl(tp)
        speed = self.speed
        cl = c.scroll(c.noise_a, speed * tp * (1 if c.drift_dir >= 0 else -1), 0.3 * tp, 1.0, swirl)
        cl2 = c.scroll(c.noise_b, speed * 1.7 * tp, 0.0, 1.4, swirl)
        dens = np.clip((cl * 0.7 + cl2 * 0.3 - self.cover) * 3.0, 0, 1) * self.below_horizon
        cloud = _paint(cl2, self.gain, self.offset)
        # img * (1 - a) + cloud * a, with a = dens * 0.85.
        cloud -= img
        cloud *= _spread(dens * 0.85)
        img += cloud


def _ridge_line(
    rng: np.random.Generator, w: int, base: float, rough: float, smooth: int
) -> Float32Array:
    """A silhouette height line (fraction of frame height) across the width."""
    pts = rng.standard_normal(w // smooth + 4)
    line = np.interp(np.arange(w) / smooth, np.arange(len(pts)), pts)
    line = np.asarray(
        cv2.GaussianBlur(line.astype(np.float32).reshape(1, -1), (0, 0), smooth / 2).ravel(),
        dtype=np.float64,
    )
    line = line / (np.abs(line).max() or 1)
    return np.asarray(base - rough * line, dtype=np.float32)


class RidgeLines(_Silhouettes):
    """Three ridges on the horizon, far to near: mountains, or dunes in a desert.

    With several ridge families the roughest shape wins (mountains over dunes) and the first
    family that names colours colours them (sand); a capping family (snow) whitens the
    nearest ridge.
    """

    kinds = ("ridges",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        c = canvas
        h, w, hz = c.h, c.w, c.horizon
        styles = [f.ridges for f in c.families if f.ridges is not None]
        shape = max(styles, key=lambda style: style.rough)
        colours = next((style.colours for style in styles if style.colours is not None), None)
        cap = next((f.cap for f in c.families if f.cap is not None), None)
        ys = np.broadcast_to(c.ys, (h, w))
        masks = []
        for depth in range(3):
            rough = shape.rough * (1 - depth * 0.25)
            line = _ridge_line(rng, w, hz - 0.02 + depth * 0.06, rough, shape.smooth - depth * 4)
            masks.append(np.clip((ys - line[None, :]) * h / 1.5, 0, 1).astype(np.float32))
        shade = np.asarray(1 - 0.25 * (c.ys - hz), dtype=np.float32)
        light = c.time.ground_light
        for depth, mask in enumerate(masks):
            if colours is not None:
                base = _lerp(colours[0], colours[1], depth / 2)
            else:
                base = _lerp(
                    _lerp(c.sky[-1, 0].tolist(), (0.2, 0.24, 0.35), 0.5),
                    (0.05, 0.06, 0.1),
                    depth / 2,
                )
            base = (base[0] * light, base[1] * light, base[2] * light)
            if cap is not None and depth == 0:
                base = cap
            self.overlays.append(_overlay(mask, base, shade))


class Ocean(Layer):
    """Water from the horizon down: perspective waves, foam crests, the sun's glitter path."""

    kinds = ("ocean",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        c = canvas
        h, hz, xs = c.h, c.horizon, c.xs
        self.row = r0 = min(h - 1, int(hz * h))
        d = np.clip(c.ys[r0:] - hz, 0.5 / h, 1)
        # Perspective: waves get denser towards the horizon, where they fade to a sheen.
        z = 0.2 / d
        xw = (xs - 0.5) * 0.2 / d
        self.wave_phase = (
            np.asarray(z * 3.0 + xw * 0.5, dtype=np.float32),
            np.asarray(z * 5.1 - xw * 0.9, dtype=np.float32),
        )
        self.wave_contrast = np.asarray(np.clip(d * 5, 0, 1), dtype=np.float32)
        horizon_col = c.sky[max(0, r0 - 1), 0]
        near = horizon_col * 0.75 + np.array((0.0, 0.04, 0.06), np.float32)
        deep = _lerp((float(horizon_col[0]) * 0.2, 0.12, 0.22), (0.0, 0.05, 0.12), 0.5)
        mixd = np.clip(d * 2.5, 0, 1)
        # The water's colour per channel, by distance: (rows, 1) each.
        self.water = [
            np.asarray(float(near[ch]) * (1 - mixd) + deep[ch] * mixd, dtype=np.float32)
            for ch in range(3)
        ]
        self.sunlit = "sun" in c.kinds
        if self.sunlit:
            spread = 0.03 + d * 0.35
            self.glitter = np.asarray(
                np.exp(-(((xs - c.sun_x) * c.aspect / spread) ** 2)), dtype=np.float32
            )

    def paint(self, img: Float32Array, t: float) -> None:
        c = self.canvas
        tp = t * c.pace
        r0 = self.row
        ripple = c.scroll(c.noise_b, 2.0 * tp * c.drift_dir, -5.0 * tp, 1.0, top=r0)
        phase1, phase2 = self.wave_phase
        waves = (
            np.sin(phase1 - 1.3 * tp + ripple * 1.8) * 0.6
            + np.sin(phase2 - 2.1 * tp + ripple * 1.2) * 0.4
        ) * 0.5 + 0.5
        contrast = self.wave_contrast
        swell = 1 + 0.45 * ((waves - 0.5) * contrast)
        # Foam crests, the same on every channel.
        extra = np.clip(waves - 0.93, 0, 1) * (4 * 0.3) * contrast
        planes = [base * swell for base in self.water]
        if self.sunlit:
            sparkle = np.clip((waves - 0.7) * 3.5, 0, 1) ** 2 * (0.4 + ripple)
            glint = self.glitter * (sparkle * 1.3 + 0.12)
            planes = [plane + glint * ch for plane, ch in zip(planes, c.sun_colour, strict=True)]
        img[r0:] = cv2.merge([plane + extra for plane in planes])


class NeonFloor(Layer):
    """A synthwave floor: a glowing perspective grid that scrolls towards the viewer."""

    kinds = ("neon_floor",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        c = canvas
        h, w, xs, ys, hz = c.h, c.w, c.xs, c.ys, c.horizon
        below = np.clip((ys - hz) * h, 0, 1)
        d = np.clip(ys - hz, 1e-3, 1)
        xw = (xs - 0.5) / d
        self.d = np.asarray(d, dtype=np.float32)
        self.grid_x = np.asarray(
            np.exp(-((((xw * 3) % 1.0) - 0.5) ** 2) / (0.0006 / d)), dtype=np.float32
        )
        fade = np.broadcast_to(below * (0.4 + 0.6 * np.clip(d * 4, 0, 1)), (h, w))
        self.fade = np.ascontiguousarray(fade, dtype=np.float32)
        self.keep = _spread(np.broadcast_to(1 - below, (h, w)))
        self.colour = c.accent if c.recipe.colours else (0.95, 0.2, 0.85)

    def paint(self, img: Float32Array, t: float) -> None:
        d = self.d
        z = 0.08 / d + 0.9 * (t * self.canvas.pace)
        grid_z = np.exp(-(((z % 1.0) - 0.5) ** 2) / (0.001 / d))
        glow = np.clip(self.grid_x + grid_z, 0, 1.5)
        colour = self.colour
        base = (0.05, 0.0, 0.1)
        fade = self.fade
        img *= self.keep
        img += cv2.merge([(glow * colour[ch] + base[ch]) * fade for ch in range(3)])


class Skyline(_Silhouettes):
    """City blocks against the sky, their windows flickering (lit after dark)."""

    kinds = ("skyline",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        c = canvas
        h, w, hz = c.h, c.w, c.horizon
        ys = np.broadcast_to(c.ys, (h, w))
        top = np.full(w, hz + 0.1, dtype=np.float32)
        x = 0
        while x < w:
            bw = int(rng.integers(max(3, w // 40), max(5, w // 12)))
            bh = float(rng.uniform(0.12, 0.5))
            top[x : x + bw] = np.minimum(top[x : x + bw], hz + 0.1 - bh)
            x += bw + int(rng.integers(0, 3))
        skyline = np.clip((ys - top[None, :]) * h, 0, 1).astype(np.float32)
        lit = rng.random((h // 3 + 1, w // 2 + 1)) < 0.3
        grid = np.zeros((h, w), dtype=np.float32)
        grid[::3, ::2] = lit[: len(range(0, h, 3)), : len(range(0, w, 2))]
        windows = grid * (ys > top[None, :] + 2 / h) * skyline
        self.windows = cv2.GaussianBlur(windows, (0, 0), 0.6) * 1.8
        lights_on = c.time.lights_on
        body = (0.03, 0.035, 0.06) if lights_on else (0.25, 0.28, 0.35)
        self.overlays.append(_overlay(skyline, body))
        light = _lerp((1.0, 0.8, 0.45), c.accent, 0.3)
        self.window_colour = np.asarray(light, dtype=np.float32) * (1.0 if lights_on else 0.3)
        self.window_phase = np.asarray(c.noise_a * 20, dtype=np.float32)

    def paint(self, img: Float32Array, t: float) -> None:
        super().paint(img, t)
        flicker = 0.85 + 0.15 * np.sin(3.0 * t + self.window_phase)
        img += _paint(self.windows * flicker, self.window_colour)


class Trees(_Silhouettes):
    """Three rows of conifers below the horizon, darker towards the viewer."""

    kinds = ("trees",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        c = canvas
        h, w, hz = c.h, c.w, c.horizon
        ys = np.broadcast_to(c.ys, (h, w))
        masks = []
        for depth in range(3):
            heights = np.zeros(w, dtype=np.float32)
            n = int(w / (7 - depth * 2.2))
            xs = rng.uniform(0, w, n)
            tall = rng.uniform(0.12, 0.32, n) * (1 + depth * 0.45)
            width = rng.uniform(3, 8, n) * (1 + depth * 0.8)
            cols = np.arange(w)[None, :]
            # Conifers: triangles whose top is the tree height.
            tri = tall[:, None] * (1 - np.abs(cols - xs[:, None]) / width[:, None])
            heights = np.maximum(heights, tri.max(axis=0))
            line = hz + 0.08 + depth * 0.1 - heights
            masks.append(np.clip((ys - line[None, :]) * h, 0, 1).astype(np.float32))
        for depth, mask in enumerate(masks):
            tone = _lerp(
                _lerp(c.sky[int(hz * h * 0.9), 0].tolist(), (0.1, 0.25, 0.15), 0.6),
                (0.01, 0.04, 0.02),
                depth / 2,
            )
            self.overlays.append(_overlay(mask, tone))


class LightShafts(Layer):
    """Slanted beams of sunlight through the trees, slowly swaying."""

    kinds = ("light_shafts",)

    def paint(self, img: Float32Array, t: float) -> None:
        c = self.canvas
        tp = t * c.pace
        xs, ys = c.xs, c.ys
        angle = 0.35 + 0.05 * math.sin(0.1 * tp)
        u = xs * math.cos(angle) * c.aspect + ys * math.sin(angle)
        shafts = (np.sin(u * 22 + 0.3 * tp) * 0.5 + 0.5) ** 6 * (
            np.sin(u * 7 - 0.2 * tp) * 0.5 + 0.5
        )
        img += _paint(shafts * np.clip(1.2 - ys, 0, 1) * 0.35, c.sun_colour)


class Fire(Layer):
    """A flame rising from the bottom centre: two noise layers scrolled upwards, as heat."""

    kinds = ("fire",)

    def paint(self, img: Float32Array, t: float) -> None:
        c = self.canvas
        tp = t * c.pace
        swirl = c.swirl(tp)
        xs, ys = c.xs, c.ys
        n1 = c.scroll(c.noise_a, 0.0, 40.0 * tp, 1.0, swirl)
        n2 = c.scroll(c.noise_b, 4.0 * math.sin(tp), 65.0 * tp, 1.0, -swirl)
        cx = 0.5 + 0.05 * math.sin(0.3 * tp)
        width = 0.28 + 0.04 * math.sin(0.7 * tp)
        spread = np.exp(-(((xs - cx) * c.aspect / width) ** 2))
        height = (1.0 - ys) / 0.75
        heat = np.clip(spread * 1.3 - height * 1.1 + (n1 * 0.6 + n2 * 0.4) * 0.9 - 0.25, 0, 1)
        heat = heat * np.sqrt(heat)  # heat ** 1.5, three times faster
        img *= _spread(1 - np.clip(heat * 2, 0, 1) * 0.5)
        img += cv2.merge(
            [
                np.clip(heat * 3.0, 0, 1.3) * 1.1,
                np.clip(heat * 2.0 - 0.35, 0, 1.1) * 1.1,
                np.clip(heat * 3 - 2.1, 0, 1) * 1.1,
            ]
        )
        embers = np.exp(-(((xs - cx) * c.aspect) ** 2 + (ys - 0.95) ** 2) / 0.12) * 0.35
        img += _paint(embers, (1.0, 0.4, 0.1))


class Swirl(Layer):
    """A slowly turning glow in the accent colour, for swirling words over a still scene."""

    kinds = ("swirl",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        self.colour = np.asarray(canvas.accent, dtype=np.float32) * 0.35

    def paint(self, img: Float32Array, t: float) -> None:
        c = self.canvas
        sw = c.scroll(c.noise_b, 0.0, 0.0, 1.3, 0.15 * (t * c.pace))
        img += _paint(sw * sw * sw, self.colour)


class Snowfall(_ParticleLayer):
    """Snowflakes in three depths: small, slow and many far away; large and fast near."""

    kinds = ("snowfall",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        c, unit, p = canvas, self.unit, canvas.pace
        for depth, (count, size, speed) in enumerate(
            ((380, 0.6, 14), (160, 1.1, 24), (50, 2.0, 40))
        ):
            self.parts.append(
                _Particles(
                    rng,
                    count,
                    c.w,
                    c.h,
                    (6.0 * p * c.drift_dir, speed * p * unit),
                    0.3,
                    8.0 * unit,
                    size * unit,
                    (0.95, 0.97, 1.0),
                    0.9 - depth * 0.15,
                )
            )


class Rainfall(_ParticleLayer):
    """Slanted streaks of rain in two depths."""

    kinds = ("rain",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        c, unit, p = canvas, self.unit, canvas.pace
        slant = float(rng.uniform(-0.25, 0.25))
        for count, speed, length, bright in ((500, 260, 9, 0.35), (160, 420, 16, 0.45)):
            self.parts.append(
                _Particles(
                    rng,
                    count,
                    c.w,
                    c.h,
                    (speed * slant * p * unit, speed * p * unit),
                    0.15,
                    0.0,
                    0.5 * unit,
                    (0.75, 0.82, 0.95),
                    bright,
                    streak=length * unit,
                )
            )


class Sparks(_ParticleLayer):
    """Sparks rising from a fire, twinkling as they cool."""

    kinds = ("sparks",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        c, unit, p = canvas, self.unit, canvas.pace
        self.parts.append(
            _Particles(
                rng,
                140,
                c.w,
                c.h,
                (4.0 * c.drift_dir * p * unit, -30 * p * unit),
                0.5,
                10 * unit,
                0.7 * unit,
                (1.0, 0.55, 0.15),
                1.4,
                twinkle=0.6,
            )
        )


class Bokeh(_ParticleLayer):
    """Large soft out-of-focus lights in the lower half (street lamps, signs)."""

    kinds = ("bokeh",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        c, unit, p = canvas, self.unit, canvas.pace
        for colour in ((1.0, 0.75, 0.35), (1.0, 0.3, 0.45), (0.3, 0.7, 1.0), c.accent):
            self.parts.append(
                _Particles(
                    rng,
                    7,
                    c.w,
                    c.h,
                    (3.0 * c.drift_dir * p * unit, -1.5 * p * unit),
                    0.6,
                    5 * unit,
                    7.0 * unit,
                    colour,
                    0.5,
                    twinkle=0.3,
                    region=(0.45, 1.0),
                )
            )


class Motes(_ParticleLayer):
    """Floating motes of warm light: pollen in a forest, or anything drifting or dreamy."""

    kinds = ("motes",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        c, unit, p = canvas, self.unit, canvas.pace
        self.parts.append(
            _Particles(
                rng,
                90,
                c.w,
                c.h,
                (5.0 * c.drift_dir * p * unit, -2.0 * p * unit),
                0.6,
                6 * unit,
                0.8 * unit,
                (1.0, 0.95, 0.75),
                0.5,
                twinkle=0.7,
            )
        )


class Mist(Layer):
    """A band of mist along the horizon, drifting sideways, in front of everything."""

    kinds = ("mist",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        self.band = np.exp(-(((canvas.ys - canvas.horizon) / 0.18) ** 2))

    def paint(self, img: Float32Array, t: float) -> None:
        c = self.canvas
        mist = c.scroll(c.noise_b, 5.0 * (t * c.pace), 0.0, 1.6)
        band = self.band * (0.45 + 0.4 * mist) * 0.6
        img *= _spread(1 - band)
        img += _paint(band, (0.8, 0.82, 0.86))


# Every layer, in painting order (back to front; particles and mist over everything).
LAYERS: tuple[type[Layer], ...] = (
    Nebula,
    Aurora,
    Stars,
    Sun,
    Clouds,
    RidgeLines,
    Ocean,
    NeonFloor,
    Skyline,
    Trees,
    LightShafts,
    Fire,
    Swirl,
    Snowfall,
    Rainfall,
    Sparks,
    Bokeh,
    Motes,
    Mist,
)
# The layers that draw from the scene's random generator, in the order they draw: it differs
# from the painting order, and keeping it keeps every seed's picture what it has always been.
# The other layers draw nothing, so where they are built in between does not matter.
_DRAW_ORDER: tuple[type[Layer], ...] = (
    RidgeLines,
    Trees,
    Skyline,
    Stars,
    Snowfall,
    Rainfall,
    Sparks,
    Bokeh,
    Motes,
)


def build_layers(canvas: Canvas, rng: np.random.Generator) -> list[Layer]:
    """The canvas's layers, built in drawing order, returned in painting order."""
    wanted = [kind for kind in LAYERS if canvas.kinds.intersection(kind.kinds)]

    def draw_rank(kind: type[Layer]) -> int:
        return _DRAW_ORDER.index(kind) if kind in _DRAW_ORDER else len(_DRAW_ORDER)

    built = {kind: kind(canvas, rng) for kind in sorted(wanted, key=draw_rank)}
    return [built[kind] for kind in wanted]


# --- the scene ----------------------------------------------------------------------------


class _Grade:
    """The finishing of every frame: tint, exposure, saturation, bloom, vignette, shoulder."""

    def __init__(self, canvas: Canvas, tint: float) -> None:
        self.w, self.h = canvas.w, canvas.h
        moods = set(canvas.recipe.moods)
        # Tint, darkening and saturation are linear in RGB, so one 3x3 matrix.
        luma_w = np.array([0.2126, 0.7152, 0.0722])
        matrix = np.eye(3)
        if tint:
            tinted = (1 - tint) * np.eye(3)
            tinted += tint * 1.6 * np.outer(np.asarray(canvas.accent), luma_w)
            matrix = tinted @ matrix
        if "dark" in moods:
            matrix = 0.62 * matrix
        sat = 1.3 if "vibrant" in moods else 0.7 if "dark" in moods else 1.0
        if sat != 1.0:
            matrix = (sat * np.eye(3) + (1 - sat) * np.outer(np.ones(3), luma_w)) @ matrix
        self.matrix: Float32Array | None = (
            None if np.array_equal(matrix, np.eye(3)) else matrix.astype(np.float32)
        )
        self.dreamy = "dreamy" in moods
        self.bloom_amount = 0.45 if self.dreamy else 0.18
        xs, ys = canvas.xs, canvas.ys
        vignette = (1 - 0.35 * ((xs - 0.5) ** 2 * 2 + (ys - 0.5) ** 2 * 2)).astype(np.float32)
        self.vignette3 = _spread(np.broadcast_to(vignette, (self.h, self.w)))

    def __call__(self, img: Float32Array) -> Float32Array:
        if self.matrix is not None:
            # Tint towards the accent colour, darken, saturate: one linear map (see above).
            img = np.asarray(cv2.transform(img, self.matrix), dtype=np.float32)
        # Bloom computed at a quarter of the field size: it is a wide, soft glow anyway.
        bright = cv2.threshold(img - np.float32(0.75), 0.0, 0.0, cv2.THRESH_TOZERO)[1]
        small = cv2.resize(bright, (self.w // 4, self.h // 4), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), max(self.w, self.h) / 160)
        bloom = cv2.resize(small, (self.w, self.h), interpolation=cv2.INTER_LINEAR)
        img = np.asarray(cv2.scaleAdd(bloom, self.bloom_amount * 2, img), dtype=np.float32)
        if self.dreamy:
            img *= np.float32(0.92)
            img += np.float32(0.05)
        img *= self.vignette3
        # Soft shoulder: highlights roll off instead of clipping flat.
        # Above 0.8, x -> 0.8 + d / (1 + 5 d) with d = x - 0.8: smooth, approaching 1.
        over = np.asarray(
            cv2.threshold(img - np.float32(0.8), 0.0, 0.0, cv2.THRESH_TOZERO)[1], dtype=np.float32
        )
        np.clip(img, 0.0, 0.8, out=img)
        denominator = over * np.float32(5.0)
        denominator += np.float32(1.0)
        over /= denominator
        img += over
        return img


def _time_of_day(
    recipe: SceneRecipe, families: tuple[Family, ...], rng: np.random.Generator
) -> TimeOfDay:
    """The named time; else one the first element suggests (the seed picks which)."""
    name = recipe.time_of_day
    if not name:
        options = families[0].times
        name = options[int(rng.integers(0, len(options)))]
    if name == "day" and any(family.weather for family in families):
        name = "overcast"
    return TIME_BY_NAME[name]


class TextScene:
    """Paints one prompt as layered, animated procedural light."""

    def __init__(self, prompt: str, seed: int, width: int, height: int, style: str = "") -> None:
        self.recipe = recipe = read_prompt(prompt, style)
        # Every draw from `rng` happens in a fixed order (see `_DRAW_ORDER`): the seed's
        # picture depends on it.
        rng = np.random.default_rng(stable_seed("t2v", seed, prompt, style))
        # The prompt alone (not the seed) also nudges colours: different prompts differ
        # even when their words select the same elements.
        prompt_rng = np.random.default_rng(
            stable_seed("prompt-look", prompt.strip().lower(), style)
        )
        long = field_long_side(width, height)
        scale = long / max(width, height)
        self.w = w = max(16, round(width * scale))
        self.h = h = max(16, round(height * scale))
        families = tuple(FAMILY_BY_NAME[name] for name in recipe.elements)
        self.time = time = _time_of_day(recipe, families, rng)

        zenith, horizon, sun, retro_sun = time.zenith, time.horizon, time.sun, False
        # A family with a sky of its own (space, neon) replaces the light's; the last one wins.
        for family in families:
            if family.sky is not None:
                zenith, horizon = family.sky.zenith, family.sky.horizon
                sun = sun if family.sky.sun is None else family.sky.sun
                retro_sun = family.sky.retro_sun
        # Prompt-specific hue nudge: a small rotation of the sky colours.
        nudge = prompt_rng.uniform(-0.06, 0.06, 3)
        zenith = _colour(np.clip(c + n * 0.5, 0, 1) for c, n in zip(zenith, nudge, strict=True))
        horizon = _colour(np.clip(c + n, 0, 1) for c, n in zip(horizon, nudge, strict=True))

        colours = [COLOUR_WORDS[c] for c in recipe.colours]
        accent = (
            _colour(float(np.mean([c[i] for c in colours])) for i in range(3))
            if colours
            else _colour(prompt_rng.uniform(0.3, 1.0, 3))
        )

        # Coordinates: y 0 (top) to 1 (bottom); x 0-1; horizon line seeded.
        ys = np.asarray((np.arange(h, dtype=np.float32) + 0.5) / h, dtype=np.float32)[:, None]
        xs = np.asarray((np.arange(w, dtype=np.float32) + 0.5) / w, dtype=np.float32)[None, :]
        hz = float(rng.uniform(0.52, 0.68)) if any(f.ground for f in families) else 1.15
        sky_t = np.clip(ys / max(hz, 0.3), 0, 1) ** 1.3
        sky = (_col(zenith) * (1 - sky_t[..., None]) + _col(horizon) * sky_t[..., None]).astype(
            np.float32
        )
        sun_x = float(rng.uniform(0.2, 0.8))
        sun_y = (
            hz - float(rng.uniform(0.06, 0.3)) if time.low_sun else float(rng.uniform(0.12, 0.35))
        )
        noise_a = _periodic_noise(rng, h, w, 3.2, max(w, h) / 6)
        noise_b = _periodic_noise(rng, h, w, 2.6, max(w, h) / 3)
        drift_dir = float(rng.uniform(-1, 1))
        self.canvas = canvas = Canvas(
            recipe=recipe,
            families=families,
            time=time,
            kinds=compose_layers(recipe, families, time),
            w=w,
            h=h,
            xs=xs,
            ys=ys,
            horizon=hz,
            sky=np.broadcast_to(sky, (h, w, 3)).copy(),
            sun_colour=sun,
            sun_x=sun_x,
            sun_y=sun_y,
            retro_sun=retro_sun,
            accent=accent,
            noise_a=noise_a,
            noise_b=noise_b,
            drift_dir=drift_dir,
        )
        self.layers = build_layers(canvas, rng)
        # Only colour words tint the grade; the prompt's own accent colours just the lights.
        self.grade = _Grade(canvas, 0.35 if colours else 0.0)

    def field(self, t: float) -> Float32Array:
        """The frame's light at the field size, RGB float, roughly 0-1: every layer in turn."""
        img = self.canvas.sky.copy()
        for layer in self.layers:
            layer.paint(img, t)
        return self.grade(img)
