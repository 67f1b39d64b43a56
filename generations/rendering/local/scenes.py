"""Prompt-driven procedural scenes for the `local` engine's text-to-video.

The prompt is read as a vocabulary, not understood: element words (ocean, fire, forest, sky,
space, city, snow, rain, neon, desert, mountains, aurora, ...) choose the layers that are
painted; time-of-day words (dawn, noon, sunset, night, ...) choose the sky; colour words
(red, teal, gold, ...) tint the grade and the lights; mood words (dark, dreamy, vibrant,
misty) change exposure, saturation, bloom and fog; motion words (slow, calm, fast, swirling,
drifting) set the pace and the kind of motion. The seed places everything (horizon, sun,
silhouettes, particles, phases), and a digest of the prompt itself nudges hues and layout so
that two different prompts never paint the same picture. Python's hash() is never used: every
random choice comes from a numpy Generator seeded from a sha256 digest.

A scene paints a small RGB float "field" (a few hundred pixels on the long side) per frame;
the engine converts it to Y'CbCr, upscales it to the output size and dithers it there.
Everything moves as a smooth function of time, so 30 fps motion has no steps.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

Float32Array = npt.NDArray[np.float32]
Colour = tuple[float, float, float]

ELEMENT_WORDS: dict[str, tuple[str, ...]] = {
    "ocean": ("ocean", "sea", "wave", "waves", "surf", "beach", "shore", "coast", "lake", "water"),
    "fire": ("fire", "flame", "flames", "campfire", "bonfire", "inferno", "burning", "embers"),
    "forest": ("forest", "jungle", "woods", "tree", "trees", "pine", "grove", "woodland"),
    "sky": ("sky", "clouds", "cloud", "cloudy", "heaven", "horizon", "meadow", "field"),
    "space": ("space", "galaxy", "nebula", "cosmos", "cosmic", "universe", "planet", "stars"),
    "city": ("city", "skyline", "street", "downtown", "urban", "town", "buildings", "metropolis"),
    "snow": ("snow", "snowy", "snowfall", "winter", "blizzard", "frost", "frozen", "snowflakes"),
    "rain": ("rain", "rainy", "raining", "storm", "stormy", "drizzle", "downpour", "thunderstorm"),
    "neon": ("neon", "cyberpunk", "synthwave", "retro", "arcade", "vaporwave", "cyber", "80s"),
    "desert": ("desert", "dunes", "dune", "sand", "sahara", "canyon", "arid"),
    "mountains": ("mountain", "mountains", "peaks", "hills", "valley", "alps", "cliffs"),
    "aurora": ("aurora", "northern", "borealis", "lights"),
}
TIME_WORDS: dict[str, tuple[str, ...]] = {
    "dawn": ("dawn", "sunrise", "morning", "daybreak"),
    "day": ("day", "noon", "midday", "sunny", "afternoon", "daylight", "bright"),
    "sunset": ("sunset", "dusk", "evening", "golden", "twilight", "sundown"),
    "night": ("night", "midnight", "moon", "moonlight", "moonlit", "nocturnal", "dark"),
}
COLOUR_WORDS: dict[str, Colour] = {
    "red": (0.95, 0.18, 0.15),
    "crimson": (0.85, 0.08, 0.2),
    "orange": (1.0, 0.5, 0.12),
    "amber": (1.0, 0.65, 0.15),
    "yellow": (1.0, 0.88, 0.25),
    "gold": (1.0, 0.75, 0.3),
    "golden": (1.0, 0.72, 0.3),
    "green": (0.25, 0.85, 0.35),
    "emerald": (0.1, 0.75, 0.45),
    "teal": (0.1, 0.7, 0.7),
    "cyan": (0.15, 0.85, 0.95),
    "turquoise": (0.2, 0.85, 0.8),
    "blue": (0.2, 0.4, 1.0),
    "azure": (0.3, 0.6, 1.0),
    "purple": (0.6, 0.25, 0.9),
    "violet": (0.55, 0.3, 1.0),
    "magenta": (0.95, 0.2, 0.8),
    "pink": (1.0, 0.45, 0.7),
    "white": (0.95, 0.95, 0.95),
    "silver": (0.8, 0.82, 0.88),
}
MOOD_WORDS: dict[str, tuple[str, ...]] = {
    "dark": ("dark", "moody", "gloomy", "ominous", "eerie", "noir", "haunted", "somber", "grim"),
    "dreamy": ("dreamy", "dream", "ethereal", "magical", "soft", "fantasy", "mystical", "glowing"),
    "vibrant": ("vibrant", "vivid", "colorful", "colourful", "happy", "joyful", "cheerful"),
    "misty": ("misty", "mist", "fog", "foggy", "haze", "hazy", "smoky"),
}
PACE_WORDS: dict[str, tuple[tuple[str, ...], float]] = {
    "slow": (("slow", "slowly", "calm", "gentle", "still", "serene", "peaceful", "quiet"), 0.5),
    "fast": (("fast", "rapid", "quick", "energetic", "wild", "raging", "intense", "racing"), 1.9),
}
SWIRL_WORDS = ("swirling", "swirl", "spiral", "vortex", "whirl", "whirling", "twisting")
DRIFT_WORDS = ("drifting", "drift", "floating", "flowing", "gliding", "wandering")

# Sky gradients by time of day: zenith, horizon, sun/moon colour.
_SKIES: dict[str, tuple[Colour, Colour, Colour]] = {
    "dawn": ((0.22, 0.27, 0.52), (1.0, 0.66, 0.5), (1.0, 0.85, 0.7)),
    "day": ((0.14, 0.38, 0.78), (0.68, 0.84, 0.96), (1.0, 0.98, 0.92)),
    "sunset": ((0.16, 0.09, 0.3), (1.0, 0.48, 0.2), (1.0, 0.78, 0.45)),
    "night": ((0.008, 0.012, 0.045), (0.05, 0.07, 0.17), (0.85, 0.9, 1.0)),
    "overcast": ((0.36, 0.4, 0.46), (0.66, 0.69, 0.72), (0.95, 0.95, 0.95)),
    "storm": ((0.08, 0.09, 0.12), (0.26, 0.29, 0.34), (0.7, 0.75, 0.85)),
}
# The time of day an element suggests when the prompt names none (the seed picks among them).
_DEFAULT_TIMES: dict[str, tuple[str, ...]] = {
    "ocean": ("day", "sunset", "dawn", "night"),
    "fire": ("night",),
    "forest": ("day", "dawn", "sunset"),
    "sky": ("day", "sunset", "dawn"),
    "space": ("night",),
    "city": ("night", "sunset"),
    "snow": ("overcast", "day", "dawn"),
    "rain": ("storm",),
    "neon": ("night",),
    "desert": ("day", "sunset"),
    "mountains": ("dawn", "day", "sunset"),
    "aurora": ("night",),
}
# Elements tried, in order, when no word matches: the prompt's digest picks one or two.
_FALLBACK_ELEMENTS = ("sky", "ocean", "space", "aurora", "mountains", "desert", "forest", "neon")


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
    elements = [e for e, vocab in ELEMENT_WORDS.items() if words & set(vocab)]
    if "aurora" in elements and not words & {"aurora", "borealis", "northern"}:
        elements.remove("aurora")  # "city lights" is not an aurora
    if not elements:
        digest = stable_seed("elements", prompt.strip().lower())
        first = _FALLBACK_ELEMENTS[digest % len(_FALLBACK_ELEMENTS)]
        elements = [first]
    times = [t for t, vocab in TIME_WORDS.items() if words & set(vocab)]
    if "rain" in elements and not times:
        times = ["storm"]
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


def _col(c: Colour | npt.NDArray[np.float32]) -> Float32Array:
    return np.asarray(c, dtype=np.float32).reshape(1, 1, 3)


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


class TextScene:
    """Paints one prompt as layered, animated procedural light."""

    def __init__(self, prompt: str, seed: int, width: int, height: int, style: str = "") -> None:
        self.recipe = recipe = read_prompt(prompt, style)
        self.rng = rng = np.random.default_rng(stable_seed("t2v", seed, prompt, style))
        # The prompt alone (not the seed) also nudges colours: different prompts differ
        # even when their words select the same elements.
        prompt_rng = np.random.default_rng(
            stable_seed("prompt-look", prompt.strip().lower(), style)
        )
        long = field_long_side(width, height)
        scale = long / max(width, height)
        self.w = w = max(16, round(width * scale))
        self.h = h = max(16, round(height * scale))
        self.pace = recipe.pace
        els = set(recipe.elements)
        self.els = els

        time = recipe.time_of_day
        if not time:
            options = _DEFAULT_TIMES[recipe.elements[0]]
            time = options[int(rng.integers(0, len(options)))]
        if "rain" in els and time in ("day", ""):
            time = "overcast"
        self.time = time
        zenith, horizon, sun = _SKIES[time]
        if "space" in els:
            zenith, horizon = (0.0, 0.0, 0.01), (0.02, 0.02, 0.06)
        if "neon" in els:
            zenith, horizon, sun = (0.04, 0.0, 0.1), (0.45, 0.05, 0.4), (1.0, 0.45, 0.3)
        # Prompt-specific hue nudge: a small rotation of the sky colours.
        nudge = prompt_rng.uniform(-0.06, 0.06, 3)
        zenith = tuple(
            float(np.clip(c + n * 0.5, 0, 1)) for c, n in zip(zenith, nudge, strict=True)
        )  # type: ignore[assignment]
        horizon = tuple(float(np.clip(c + n, 0, 1)) for c, n in zip(horizon, nudge, strict=True))  # type: ignore[assignment]

        colours = [COLOUR_WORDS[c] for c in recipe.colours]
        self.accent: Colour = (
            tuple(float(np.mean([c[i] for c in colours])) for i in range(3))  # type: ignore[assignment]
            if colours
            else tuple(float(x) for x in prompt_rng.uniform(0.3, 1.0, 3))
        )
        self.tint = 0.35 if colours else 0.0

        # Coordinates: y 0 (top) to 1 (bottom); x 0-1; horizon line seeded.
        self.ys = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]
        self.xs = ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]
        has_ground = bool(els & {"ocean", "desert", "mountains", "snow", "neon", "forest", "city"})
        self.horizon = float(rng.uniform(0.52, 0.68)) if has_ground else 1.15
        hz = self.horizon
        sky_t = np.clip(self.ys / max(hz, 0.3), 0, 1) ** 1.3
        self.sky = (
            _col(zenith) * (1 - sky_t[..., None]) + _col(horizon) * sky_t[..., None]
        ).astype(np.float32)
        self.sky = np.broadcast_to(self.sky, (h, w, 3)).copy()
        self.sun_colour = sun
        self.sun_x = float(rng.uniform(0.2, 0.8))
        self.sun_y = (
            hz - float(rng.uniform(0.06, 0.3))
            if time in ("sunset", "dawn")
            else float(rng.uniform(0.12, 0.35))
        )
        self.show_sun = time in ("dawn", "day", "sunset", "night") and not els & {"space", "rain"}
        self.aspect = w / h
        self.noise_a = _periodic_noise(rng, h, w, 3.2, max(w, h) / 6)
        self.noise_b = _periodic_noise(rng, h, w, 2.6, max(w, h) / 3)
        self.drift_dir = float(rng.uniform(-1, 1))
        self.layers_static = self._static_layers(rng)
        self.particles = self._particles(rng)
        self.vignette = (1 - 0.35 * ((self.xs - 0.5) ** 2 * 2 + (self.ys - 0.5) ** 2 * 2))[
            ..., None
        ].astype(np.float32)
        self.moods = set(recipe.moods)
        self._prepare_static()

    # --- static geometry ------------------------------------------------------------------

    def _ridge(
        self, rng: np.random.Generator, base: float, rough: float, smooth: int
    ) -> Float32Array:
        """A silhouette height line (fraction of frame height) across the width."""
        pts = rng.standard_normal(self.w // smooth + 4)
        line = np.interp(np.arange(self.w) / smooth, np.arange(len(pts)), pts)
        line = np.asarray(
            cv2.GaussianBlur(line.astype(np.float32).reshape(1, -1), (0, 0), smooth / 2).ravel(),
            dtype=np.float64,
        )
        line = line / (np.abs(line).max() or 1)
        return np.asarray(base - rough * line, dtype=np.float32)

    def _static_layers(self, rng: np.random.Generator) -> dict[str, Float32Array]:
        h, w = self.h, self.w
        layers: dict[str, Float32Array] = {}
        ys = np.broadcast_to(self.ys, (h, w))
        if self.els & {"mountains", "desert"}:
            for depth in range(3):
                rough = (0.16 if "mountains" in self.els else 0.05) * (1 - depth * 0.25)
                smooth = 18 if "mountains" in self.els else 40
                line = self._ridge(
                    rng, self.horizon - 0.02 + depth * 0.06, rough, smooth - depth * 4
                )
                layers[f"ridge{depth}"] = np.clip((ys - line[None, :]) * h / 1.5, 0, 1).astype(
                    np.float32
                )
        if "forest" in self.els:
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
                line = self.horizon + 0.08 + depth * 0.1 - heights
                layers[f"trees{depth}"] = np.clip((ys - line[None, :]) * h, 0, 1).astype(np.float32)
        if "city" in self.els:
            top = np.full(w, self.horizon + 0.1, dtype=np.float32)
            windows = np.zeros((h, w), dtype=np.float32)
            x = 0
            while x < w:
                bw = int(rng.integers(max(3, w // 40), max(5, w // 12)))
                bh = float(rng.uniform(0.12, 0.5))
                top[x : x + bw] = np.minimum(top[x : x + bw], self.horizon + 0.1 - bh)
                x += bw + int(rng.integers(0, 3))
            layers["skyline"] = np.clip((ys - top[None, :]) * h, 0, 1).astype(np.float32)
            lit = rng.random((h // 3 + 1, w // 2 + 1)) < 0.3
            grid = np.zeros((h, w), dtype=np.float32)
            grid[::3, ::2] = lit[: len(range(0, h, 3)), : len(range(0, w, 2))]
            windows = grid * (ys > top[None, :] + 2 / h) * layers["skyline"]
            layers["windows"] = cv2.GaussianBlur(windows, (0, 0), 0.6) * 1.8
        if self.els & {"space", "aurora"} or self.time == "night":
            n = int(w * h / (60 if "space" in self.els else 140))
            sx = rng.uniform(0, w, n).astype(np.float32)
            sy = rng.uniform(0, h * min(1.0, self.horizon), n).astype(np.float32)
            sb = (rng.pareto(2.0, n) * 0.35 + 0.08).astype(np.float32)
            stars = _splat(h, w, sx, sy, np.minimum(sb, 2.5).astype(np.float32))
            layers["stars"] = cv2.GaussianBlur(stars, (0, 0), 0.55) * 2.2
            self.star_phase = rng.uniform(0, 2 * np.pi, (h, w)).astype(np.float32)
        return layers

    def _particles(self, rng: np.random.Generator) -> list[_Particles]:
        w, h, p = self.w, self.h, self.pace
        out: list[_Particles] = []
        unit = max(w, h) / 352
        if "snow" in self.els:
            for depth, (count, size, speed) in enumerate(
                ((380, 0.6, 14), (160, 1.1, 24), (50, 2.0, 40))
            ):
                out.append(
                    _Particles(
                        rng,
                        count,
                        w,
                        h,
                        (6.0 * p * self.drift_dir, speed * p * unit),
                        0.3,
                        8.0 * unit,
                        size * unit,
                        (0.95, 0.97, 1.0),
                        0.9 - depth * 0.15,
                    )
                )
        if "rain" in self.els:
            slant = float(rng.uniform(-0.25, 0.25))
            for count, speed, length, bright in ((500, 260, 9, 0.35), (160, 420, 16, 0.45)):
                out.append(
                    _Particles(
                        rng,
                        count,
                        w,
                        h,
                        (speed * slant * p * unit, speed * p * unit),
                        0.15,
                        0.0,
                        0.5 * unit,
                        (0.75, 0.82, 0.95),
                        bright,
                        streak=length * unit,
                    )
                )
        if "fire" in self.els:
            out.append(
                _Particles(
                    rng,
                    140,
                    w,
                    h,
                    (4.0 * self.drift_dir * p * unit, -30 * p * unit),
                    0.5,
                    10 * unit,
                    0.7 * unit,
                    (1.0, 0.55, 0.15),
                    1.4,
                    twinkle=0.6,
                )
            )
        if "city" in self.els or "neon" in self.els:
            bokeh_colours = [(1.0, 0.75, 0.35), (1.0, 0.3, 0.45), (0.3, 0.7, 1.0), self.accent]
            for c in bokeh_colours:
                out.append(
                    _Particles(
                        rng,
                        7,
                        w,
                        h,
                        (3.0 * self.drift_dir * p * unit, -1.5 * p * unit),
                        0.6,
                        5 * unit,
                        7.0 * unit,
                        c,
                        0.5,
                        twinkle=0.3,
                        region=(0.45, 1.0),
                    )
                )
        if "forest" in self.els or self.recipe.drift or "dreamy" in self.recipe.moods:
            out.append(
                _Particles(
                    rng,
                    90,
                    w,
                    h,
                    (5.0 * self.drift_dir * p * unit, -2.0 * p * unit),
                    0.6,
                    6 * unit,
                    0.8 * unit,
                    (1.0, 0.95, 0.75),
                    0.5,
                    twinkle=0.7,
                )
            )
        return out

    # --- static parts of the per-frame layers ----------------------------------------------

    def _prepare_static(self) -> None:
        """Everything in `field` that does not change with time, computed once.

        Silhouettes, the ocean's perspective, the neon floor's grid lines, the grade's colour
        matrix and the vignette are the same in every frame; only what moves is painted per
        frame.
        """
        h, w = self.h, self.w
        ys, xs, hz = self.ys, self.xs, self.horizon
        els = self.els
        # Opaque layers (ridges, skyline, trees): img -> img * keep + add, both (h, w, 3).
        self.overlays: dict[str, tuple[Float32Array, Float32Array]] = {}
        for depth in range(3):
            key = f"ridge{depth}"
            if key in self.layers_static:
                if "desert" in els:
                    base = _lerp((0.85, 0.55, 0.3), (0.55, 0.3, 0.2), depth / 2)
                else:
                    base = _lerp(
                        _lerp(self.sky[-1, 0].tolist(), (0.2, 0.24, 0.35), 0.5),
                        (0.05, 0.06, 0.1),
                        depth / 2,
                    )
                if self.time == "night":
                    base = (base[0] * 0.25, base[1] * 0.25, base[2] * 0.25)
                if "snow" in els and depth == 0:
                    base = (0.85, 0.88, 0.95)
                shade = np.asarray(1 - 0.25 * (ys - hz), dtype=np.float32)
                self.overlays[key] = self._overlay(self.layers_static[key], base, shade)
        if "skyline" in self.layers_static:
            night = self.time in ("night", "storm", "sunset")
            body = (0.03, 0.035, 0.06) if night else (0.25, 0.28, 0.35)
            self.overlays["skyline"] = self._overlay(self.layers_static["skyline"], body)
            self.window_light = _lerp((1.0, 0.8, 0.45), self.accent, 0.3)
            self.window_level = 1.0 if night else 0.3
            self.window_phase = np.asarray(self.noise_a * 20, dtype=np.float32)
        for depth in range(3):
            key = f"trees{depth}"
            if key in self.layers_static:
                tone = _lerp(
                    _lerp(self.sky[int(hz * h * 0.9), 0].tolist(), (0.1, 0.25, 0.15), 0.6),
                    (0.01, 0.04, 0.02),
                    depth / 2,
                )
                self.overlays[key] = self._overlay(self.layers_static[key], tone)
        if "aurora" in els:
            green, purple = (0.2, 1.0, 0.55), (0.6, 0.3, 1.0)
            # Per channel, a colour that shifts from green (top) to purple (bottom): (h, 1).
            self.aurora_mix = [
                np.asarray((green[c] * (1 - ys) + purple[c] * ys * 0.8) * 0.9, dtype=np.float32)
                for c in range(3)
            ]
        if "ocean" in els:
            self._prepare_ocean()
        if "neon" in els:
            below = np.clip((ys - hz) * h, 0, 1)
            d = np.clip(ys - hz, 1e-3, 1)
            xw = (xs - 0.5) / d
            self.neon_d = np.asarray(d, dtype=np.float32)
            self.neon_grid_x = np.asarray(
                np.exp(-((((xw * 3) % 1.0) - 0.5) ** 2) / (0.0006 / d)), dtype=np.float32
            )
            fade = np.broadcast_to(below * (0.4 + 0.6 * np.clip(d * 4, 0, 1)), (h, w))
            self.neon_fade = np.ascontiguousarray(fade, dtype=np.float32)
            self.neon_keep = _spread(np.broadcast_to(1 - below, (h, w)))
        # Grade: tint, darkening and saturation are linear in RGB, so one 3x3 matrix.
        luma_w = np.array([0.2126, 0.7152, 0.0722])
        matrix = np.eye(3)
        if self.tint:
            tint = (1 - self.tint) * np.eye(3)
            tint += self.tint * 1.6 * np.outer(np.asarray(self.accent), luma_w)
            matrix = tint @ matrix
        if "dark" in self.moods:
            matrix = 0.62 * matrix
        sat = 1.3 if "vibrant" in self.moods else 0.7 if "dark" in self.moods else 1.0
        if sat != 1.0:
            matrix = (sat * np.eye(3) + (1 - sat) * np.outer(np.ones(3), luma_w)) @ matrix
        self.grade_matrix: Float32Array | None = (
            None if np.array_equal(matrix, np.eye(3)) else matrix.astype(np.float32)
        )
        self.vignette3 = _spread(np.broadcast_to(self.vignette[..., 0], (h, w)))

    def _overlay(
        self, mask: Float32Array, colour: Colour, shade: Float32Array | None = None
    ) -> tuple[Float32Array, Float32Array]:
        """(keep, add) for painting `colour` (times `shade`) over the image where `mask` is 1."""
        cover = mask if shade is None else mask * shade
        return _spread(1 - mask), _paint(np.asarray(cover, dtype=np.float32), colour)

    def _prepare_ocean(self) -> None:
        h, hz, xs = self.h, self.horizon, self.xs
        self.ocean_row = r0 = min(h - 1, int(hz * h))
        d = np.clip(self.ys[r0:] - hz, 0.5 / h, 1)
        # Perspective: waves get denser towards the horizon, where they fade to a sheen.
        z = 0.2 / d
        xw = (xs - 0.5) * 0.2 / d
        self.wave_phase = (
            np.asarray(z * 3.0 + xw * 0.5, dtype=np.float32),
            np.asarray(z * 5.1 - xw * 0.9, dtype=np.float32),
        )
        self.wave_contrast = np.asarray(np.clip(d * 5, 0, 1), dtype=np.float32)
        horizon_col = self.sky[max(0, r0 - 1), 0]
        near = horizon_col * 0.75 + np.array((0.0, 0.04, 0.06), np.float32)
        deep = _lerp((float(horizon_col[0]) * 0.2, 0.12, 0.22), (0.0, 0.05, 0.12), 0.5)
        mixd = np.clip(d * 2.5, 0, 1)
        # The water's colour per channel, by distance: (rows, 1) each.
        self.water = [
            np.asarray(float(near[c]) * (1 - mixd) + deep[c] * mixd, dtype=np.float32)
            for c in range(3)
        ]
        if self.show_sun:
            spread = 0.03 + d * 0.35
            self.glitter = np.asarray(
                np.exp(-(((xs - self.sun_x) * self.aspect / spread) ** 2)), dtype=np.float32
            )

    # --- per frame ------------------------------------------------------------------------

    def _scroll(
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

    def field(self, t: float) -> Float32Array:
        """The frame's light at the field size, RGB float, roughly 0-1.

        Colours are applied channel by channel (`_paint`, `_spread`): numpy broadcasting of
        an (h, w, 1) plane against an RGB triple is several times slower than flat planes.
        """
        p = self.pace
        tp = t * p
        h = self.h
        els = self.els
        img = self.sky.copy()
        ys, xs = self.ys, self.xs
        hz = self.horizon
        swirl = 0.05 * tp if self.recipe.swirl else 0.0

        if "space" in els:
            neb = self._scroll(
                self.noise_b, 3.0 * tp * self.drift_dir, 1.2 * tp, 1.0 + 0.01 * tp, swirl * 0.6
            )
            neb2 = self._scroll(
                self.noise_a, -2.0 * tp, 2.0 * tp * self.drift_dir, 1.2, -swirl * 0.4
            )
            c1 = np.asarray(self.accent, dtype=np.float32) * 0.9 * 0.8
            c2 = (0.15, 0.3, 0.9) if self.accent[2] < 0.6 else (0.9, 0.25, 0.55)
            img += _paint(neb**2.2, c1)
            img += _paint(neb2 * neb2 * neb2, np.asarray(c2, dtype=np.float32) * 0.6)
        if "aurora" in els:
            wave = self._scroll(self.noise_a, 6.0 * tp, 0.0, 1.0, swirl)
            curtain_x = np.sin(xs * 9 + wave * 4 + 0.4 * tp)
            band = np.exp(-(((ys - 0.3 - 0.1 * curtain_x) / 0.16) ** 2)) * (0.5 + 0.5 * wave)
            rays = 0.6 + 0.4 * np.sin(xs * 70 + wave * 12)
            light = band * rays
            img += cv2.merge([light * mix for mix in self.aurora_mix])
        if "stars" in self.layers_static:
            twinkle = 0.75 + 0.25 * np.sin(self.star_phase + 2.2 * t)
            img += _paint(self.layers_static["stars"] * twinkle, (0.95, 0.95, 1.0))
        if self.show_sun:
            sx = self.sun_x + 0.01 * math.sin(0.05 * tp)
            sy = self.sun_y + (
                0.012 * tp if self.time == "sunset" else -0.008 * tp if self.time == "dawn" else 0.0
            )
            dist = np.sqrt(((xs - sx) * self.aspect) ** 2 + (ys - sy) ** 2)
            disc = np.clip((0.045 - dist) * h * 0.8, 0, 1)
            if "neon" in els:
                stripes = (np.sin(ys * h * 0.9 - 2 * tp) > (ys - sy) * 22).astype(np.float32)
                disc = np.clip((0.16 - dist) * h * 0.8, 0, 1) * np.where(
                    ys > sy, stripes, np.float32(1.0)
                )
            halo = np.exp(-dist / 0.12) * 0.45 + np.exp(-dist / 0.45) * 0.2
            strength = 0.35 if self.time == "night" else 1.0
            img += _paint(disc * 1.2 + halo * strength, self.sun_colour)
        if (
            "sky" in els
            or self.time in ("overcast", "storm", "sunset", "dawn")
            and not els & {"space", "neon"}
        ):
            speed = 4.0 if "sky" in els else 2.0
            cl = self._scroll(
                self.noise_a, speed * tp * (1 if self.drift_dir >= 0 else -1), 0.3 * tp, 1.0, swirl
            )
            cl2 = self._scroll(self.noise_b, speed * 1.7 * tp, 0.0, 1.4, swirl)
            cover = 0.45 if "sky" in els else 0.55
            dens = np.clip((cl * 0.7 + cl2 * 0.3 - cover) * 3.0, 0, 1) * np.clip(
                (hz - ys) * 4, 0, 1
            )
            lit = np.array(_lerp(self.sun_colour, (1.0, 1.0, 1.0), 0.5), dtype=np.float32)
            shade = np.array(
                (0.45, 0.47, 0.55) if self.time != "night" else (0.1, 0.1, 0.16), dtype=np.float32
            )
            # cloud = shade + (lit - shade) * (1 - cl2) * k: per channel, affine in cl2.
            span = (lit - shade) * (0.4 if self.time in ("storm", "overcast") else 1.0)
            cloud = _paint(cl2, -span, shade + span)
            # img * (1 - a) + cloud * a, with a = dens * 0.85.
            cloud -= img
            cloud *= _spread(dens * 0.85)
            img += cloud
        for depth in range(3):
            key = f"ridge{depth}"
            if key in self.overlays:
                keep, add = self.overlays[key]
                img *= keep
                img += add
        if "ocean" in els:
            r0 = self.ocean_row
            ripple = self._scroll(self.noise_b, 2.0 * tp * self.drift_dir, -5.0 * tp, 1.0, top=r0)
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
            if self.show_sun:
                sparkle = np.clip((waves - 0.7) * 3.5, 0, 1) ** 2 * (0.4 + ripple)
                glint = self.glitter * (sparkle * 1.3 + 0.12)
                planes = [
                    plane + glint * c for plane, c in zip(planes, self.sun_colour, strict=True)
                ]
            img[r0:] = cv2.merge([plane + extra for plane in planes])
        if "neon" in els:
            d = self.neon_d
            z = 0.08 / d + 0.9 * tp
            grid_z = np.exp(-(((z % 1.0) - 0.5) ** 2) / (0.001 / d))
            glow = np.clip(self.neon_grid_x + grid_z, 0, 1.5)
            colour = self.accent if self.recipe.colours else (0.95, 0.2, 0.85)
            base = (0.05, 0.0, 0.1)
            fade = self.neon_fade
            img *= self.neon_keep
            img += cv2.merge([(glow * colour[c] + base[c]) * fade for c in range(3)])
        if "skyline" in self.overlays:
            keep, add = self.overlays["skyline"]
            img *= keep
            img += add
            flicker = 0.85 + 0.15 * np.sin(3.0 * t + self.window_phase)
            img += _paint(
                self.layers_static["windows"] * flicker,
                np.asarray(self.window_light, dtype=np.float32) * self.window_level,
            )
        for depth in range(3):
            key = f"trees{depth}"
            if key in self.overlays:
                keep, add = self.overlays[key]
                img *= keep
                img += add
        if "forest" in els and self.time != "night":
            angle = 0.35 + 0.05 * math.sin(0.1 * tp)
            u = xs * math.cos(angle) * self.aspect + ys * math.sin(angle)
            shafts = (np.sin(u * 22 + 0.3 * tp) * 0.5 + 0.5) ** 6 * (
                np.sin(u * 7 - 0.2 * tp) * 0.5 + 0.5
            )
            img += _paint(shafts * np.clip(1.2 - ys, 0, 1) * 0.35, self.sun_colour)
        if "fire" in els:
            n1 = self._scroll(self.noise_a, 0.0, 40.0 * tp, 1.0, swirl)
            n2 = self._scroll(self.noise_b, 4.0 * math.sin(tp), 65.0 * tp, 1.0, -swirl)
            cx = 0.5 + 0.05 * math.sin(0.3 * tp)
            width = 0.28 + 0.04 * math.sin(0.7 * tp)
            spread = np.exp(-(((xs - cx) * self.aspect / width) ** 2))
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
            embers = np.exp(-(((xs - cx) * self.aspect) ** 2 + (ys - 0.95) ** 2) / 0.12) * 0.35
            img += _paint(embers, (1.0, 0.4, 0.1))
        if self.recipe.swirl and not els & {"space", "fire", "aurora"}:
            sw = self._scroll(self.noise_b, 0.0, 0.0, 1.3, 0.15 * tp)
            img += _paint(sw * sw * sw, np.asarray(self.accent, dtype=np.float32) * 0.35)
        for part in self.particles:
            img += part.render(tp if part.streak else t * max(p, 0.6))
        if "misty" in self.moods or (self.els & {"forest", "mountains"} and self.time == "dawn"):
            mist = self._scroll(self.noise_b, 5.0 * tp, 0.0, 1.6)
            band = np.exp(-(((ys - hz) / 0.18) ** 2)) * (0.45 + 0.4 * mist) * 0.6
            img *= _spread(1 - band)
            img += _paint(band, (0.8, 0.82, 0.86))
        return self._grade(img)

    def _grade(self, img: Float32Array) -> Float32Array:
        if self.grade_matrix is not None:
            # Tint towards the accent colour, darken, saturate: one linear map (see above).
            img = np.asarray(cv2.transform(img, self.grade_matrix), dtype=np.float32)
        bloom_amount = 0.45 if "dreamy" in self.moods else 0.18
        # Bloom computed at a quarter of the field size: it is a wide, soft glow anyway.
        bright = cv2.threshold(img - np.float32(0.75), 0.0, 0.0, cv2.THRESH_TOZERO)[1]
        small = cv2.resize(bright, (self.w // 4, self.h // 4), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), max(self.w, self.h) / 160)
        bloom = cv2.resize(small, (self.w, self.h), interpolation=cv2.INTER_LINEAR)
        img = np.asarray(cv2.scaleAdd(bloom, bloom_amount * 2, img), dtype=np.float32)
        if "dreamy" in self.moods:
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
