"""What the layers of one text-to-video scene paint with: the Canvas they share (the frame,
the light, two scrolling textures) and the painting helpers (tileable noise, soft splats,
per-channel colour), plus the particle systems that rain, snow, sparks and motes use."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from generations.rendering.local.scene_families import (
    Colour,
    Family,
    LayerKind,
    SceneRecipe,
    TimeOfDay,
)

Float32Array = npt.NDArray[np.float32]


def periodic_noise(
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


def splat(
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


def lerp(a: Colour, b: Colour, t: float) -> Colour:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def colour_of(values: Iterable[float]) -> Colour:
    r, g, b = values
    return (float(r), float(g), float(b))


def rgb(c: Colour | npt.NDArray[np.float32]) -> Float32Array:
    return np.asarray(c, dtype=np.float32).reshape(1, 1, 3)


def paint(
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


def three_channels(value: npt.NDArray[np.floating]) -> Float32Array:
    """An (h, w) plane as three equal channels: a per-pixel factor for an RGB image."""
    plane = np.ascontiguousarray(value, dtype=np.float32)
    return np.asarray(cv2.merge([plane, plane, plane]), dtype=np.float32)


def overlay(
    mask: Float32Array, colour: Colour, shade: Float32Array | None = None
) -> tuple[Float32Array, Float32Array]:
    """(keep, add) for painting `colour` (times `shade`) over the image where `mask` is 1."""
    cover = mask if shade is None else mask * shade
    return three_channels(1 - mask), paint(np.asarray(cover, dtype=np.float32), colour)


class Particles:
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
        self.colour = rgb(colour)
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
            img = splat(
                h, w, pts_x.astype(np.float32), pts_y.astype(np.float32), pts_w.astype(np.float32)
            )
        else:
            img = splat(
                h, w, xs.astype(np.float32), ys.astype(np.float32), weights.astype(np.float32)
            )
        if self.sigma > 0:
            img = np.asarray(cv2.GaussianBlur(img, (0, 0), self.sigma), dtype=np.float32)
            img *= np.float32(2 * math.pi * self.sigma * self.sigma) * 0.5
        return paint(img, self.colour)


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
