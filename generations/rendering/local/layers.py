"""The layers of a text-to-video scene: one class per kind of thing in the picture (sky,
stars, sun, clouds, ridges, water, trees, skyline, fire, weather, particles, mist), each
built once per scene and painted every frame. scene_families.py says which kinds a prompt
asks for; scenes.py builds and composes them."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import cv2
import numpy as np

from generations.rendering.local.canvas import (
    Canvas,
    Float32Array,
    Particles,
    lerp,
    overlay,
    paint,
    splat,
    three_channels,
)
from generations.rendering.local.scene_families import (
    Colour,
    LayerKind,
)

# --- layers -------------------------------------------------------------------------------


class Layer(ABC):
    """One kind of thing in the picture: built once per scene, then painted every frame.

    Whatever does not change with time (silhouettes, perspective, colours) is computed in
    the constructor; `paint` adds only what moves. Colours are applied channel by channel
    (`paint`, `three_channels`): numpy broadcasting of an (h, w, 1) plane against an RGB triple is
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
        self.parts: list[Particles] = []
        self.unit = max(canvas.w, canvas.h) / 352  # sizes and speeds are for a 352 px field

    def add(
        self,
        rng: np.random.Generator,
        count: int,
        velocity: tuple[float, float],
        speed_jitter: float,
        sway: float,
        size: float,
        colour: Colour,
        brightness: float,
        **options: Any,
    ) -> None:
        """One set of particles over this scene's frame (velocity in pixels per second; sway
        and size in units of a 352 px field)."""
        c = self.canvas
        self.parts.append(
            Particles(rng, count, c.w, c.h, velocity, speed_jitter, sway * self.unit,
                      size * self.unit, colour, brightness, **options)
        )  # fmt: skip

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
        img += paint(neb**2.2, self.near)
        img += paint(neb2 * neb2 * neb2, self.far)


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
        stars = splat(h, w, sx, sy, np.minimum(sb, 2.5).astype(np.float32))
        self.stars = cv2.GaussianBlur(stars, (0, 0), 0.55) * 2.2
        self.phase = rng.uniform(0, 2 * np.pi, (h, w)).astype(np.float32)

    def paint(self, img: Float32Array, t: float) -> None:
        twinkle = 0.75 + 0.25 * np.sin(self.phase + 2.2 * t)
        img += paint(self.stars * twinkle, (0.95, 0.95, 1.0))


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
        img += paint(disc * 1.2 + halo * c.time.sun_glow, c.sun_colour)


class Clouds(Layer):
    """Drifting clouds above the horizon: plenty in a sky scene, a few under weather light."""

    kinds = ("clouds", "weather_clouds")

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        # A sky scene's clouds are the subject: faster and denser than the weather's.
        self.speed, self.cover = (4.0, 0.45) if "clouds" in canvas.kinds else (2.0, 0.55)
        lit = np.array(lerp(canvas.sun_colour, (1.0, 1.0, 1.0), 0.5), dtype=np.float32)
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
        cloud = paint(cl2, self.gain, self.offset)
        # img * (1 - a) + cloud * a, with a = dens * 0.85.
        cloud -= img
        cloud *= three_channels(dens * 0.85)
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
                base = lerp(colours[0], colours[1], depth / 2)
            else:
                base = lerp(
                    lerp(c.sky[-1, 0].tolist(), (0.2, 0.24, 0.35), 0.5),
                    (0.05, 0.06, 0.1),
                    depth / 2,
                )
            base = (base[0] * light, base[1] * light, base[2] * light)
            if cap is not None and depth == 0:
                base = cap
            self.overlays.append(overlay(mask, base, shade))


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
        deep = lerp((float(horizon_col[0]) * 0.2, 0.12, 0.22), (0.0, 0.05, 0.12), 0.5)
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
        self.keep = three_channels(np.broadcast_to(1 - below, (h, w)))
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
        self.overlays.append(overlay(skyline, body))
        light = lerp((1.0, 0.8, 0.45), c.accent, 0.3)
        self.window_colour = np.asarray(light, dtype=np.float32) * (1.0 if lights_on else 0.3)
        self.window_phase = np.asarray(c.noise_a * 20, dtype=np.float32)

    def paint(self, img: Float32Array, t: float) -> None:
        super().paint(img, t)
        flicker = 0.85 + 0.15 * np.sin(3.0 * t + self.window_phase)
        img += paint(self.windows * flicker, self.window_colour)


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
            tone = lerp(
                lerp(c.sky[int(hz * h * 0.9), 0].tolist(), (0.1, 0.25, 0.15), 0.6),
                (0.01, 0.04, 0.02),
                depth / 2,
            )
            self.overlays.append(overlay(mask, tone))


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
        img += paint(shafts * np.clip(1.2 - ys, 0, 1) * 0.35, c.sun_colour)


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
        img *= three_channels(1 - np.clip(heat * 2, 0, 1) * 0.5)
        img += cv2.merge(
            [
                np.clip(heat * 3.0, 0, 1.3) * 1.1,
                np.clip(heat * 2.0 - 0.35, 0, 1.1) * 1.1,
                np.clip(heat * 3 - 2.1, 0, 1) * 1.1,
            ]
        )
        embers = np.exp(-(((xs - cx) * c.aspect) ** 2 + (ys - 0.95) ** 2) / 0.12) * 0.35
        img += paint(embers, (1.0, 0.4, 0.1))


class Swirl(Layer):
    """A slowly turning glow in the accent colour, for swirling words over a still scene."""

    kinds = ("swirl",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        self.colour = np.asarray(canvas.accent, dtype=np.float32) * 0.35

    def paint(self, img: Float32Array, t: float) -> None:
        c = self.canvas
        sw = c.scroll(c.noise_b, 0.0, 0.0, 1.3, 0.15 * (t * c.pace))
        img += paint(sw * sw * sw, self.colour)


class Snowfall(_ParticleLayer):
    """Snowflakes in three depths: small, slow and many far away; large and fast near."""

    kinds = ("snowfall",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        c, unit, p = canvas, self.unit, canvas.pace
        for depth, (count, size, speed) in enumerate(
            ((380, 0.6, 14), (160, 1.1, 24), (50, 2.0, 40))
        ):
            velocity = (6.0 * p * c.drift_dir, speed * p * unit)
            self.add(rng, count, velocity, 0.3, 8.0, size, (0.95, 0.97, 1.0), 0.9 - depth * 0.15)


class Rainfall(_ParticleLayer):
    """Slanted streaks of rain in two depths."""

    kinds = ("rain",)

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        unit, p = self.unit, canvas.pace
        slant = float(rng.uniform(-0.25, 0.25))
        for count, speed, length, bright in ((500, 260, 9, 0.35), (160, 420, 16, 0.45)):
            velocity = (speed * slant * p * unit, speed * p * unit)
            self.add(rng, count, velocity, 0.15, 0.0, 0.5, (0.75, 0.82, 0.95), bright,
                     streak=length * unit)  # fmt: skip


class _Drifting(_ParticleLayer):
    """Particle sets that drift with the scene and rise or sink: `sets` gives each one as
    (count, drift, rise, speed jitter, sway, size, colour, brightness, options); a colour of
    None is the scene's accent."""

    sets: ClassVar[tuple[tuple[Any, ...], ...]]

    def __init__(self, canvas: Canvas, rng: np.random.Generator) -> None:
        super().__init__(canvas, rng)
        c, unit, p = canvas, self.unit, canvas.pace
        for count, drift, rise, jitter, sway, size, colour, bright, options in self.sets:
            velocity = (drift * c.drift_dir * p * unit, rise * p * unit)
            colour = c.accent if colour is None else colour
            self.add(rng, count, velocity, jitter, sway, size, colour, bright, **options)


class Sparks(_Drifting):
    """Sparks rising from a fire, twinkling as they cool."""

    kinds = ("sparks",)
    sets = ((140, 4.0, -30, 0.5, 10, 0.7, (1.0, 0.55, 0.15), 1.4, {"twinkle": 0.6}),)


class Bokeh(_Drifting):
    """Large soft out-of-focus lights in the lower half (street lamps, signs)."""

    kinds = ("bokeh",)
    sets = tuple(
        (7, 3.0, -1.5, 0.6, 5, 7.0, colour, 0.5, {"twinkle": 0.3, "region": (0.45, 1.0)})
        for colour in ((1.0, 0.75, 0.35), (1.0, 0.3, 0.45), (0.3, 0.7, 1.0), None)
    )


class Motes(_Drifting):
    """Floating motes of warm light: pollen in a forest, or anything drifting or dreamy."""

    kinds = ("motes",)
    sets = ((90, 5.0, -2.0, 0.6, 6, 0.8, (1.0, 0.95, 0.75), 0.5, {"twinkle": 0.7}),)


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
        img *= three_channels(1 - band)
        img += paint(band, (0.8, 0.82, 0.86))


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
