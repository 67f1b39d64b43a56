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

import cv2
import numpy as np

from generations.rendering.local.canvas import (
    Canvas,
    Float32Array,
    colour_of,
    periodic_noise,
    rgb,
    three_channels,
)
from generations.rendering.local.layers import build_layers
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
    Family,
    LayerKind,
    SceneRecipe,
    TimeOfDay,
)


def stable_seed(*parts: object) -> int:
    """64 bits of a sha256 digest: the same on every run and every machine."""
    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def words_of(text: str) -> set[str]:
    cleaned = text.lower().replace("-", " ").replace("/", " ")
    return {w.strip(".,;:!?\"'()[]") for w in cleaned.split()}


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
        self.vignette3 = three_channels(np.broadcast_to(vignette, (self.h, self.w)))

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
        zenith = colour_of(np.clip(c + n * 0.5, 0, 1) for c, n in zip(zenith, nudge, strict=True))
        horizon = colour_of(np.clip(c + n, 0, 1) for c, n in zip(horizon, nudge, strict=True))

        colours = [COLOUR_WORDS[c] for c in recipe.colours]
        accent = (
            colour_of(float(np.mean([c[i] for c in colours])) for i in range(3))
            if colours
            else colour_of(prompt_rng.uniform(0.3, 1.0, 3))
        )

        # Coordinates: y 0 (top) to 1 (bottom); x 0-1; horizon line seeded.
        ys = np.asarray((np.arange(h, dtype=np.float32) + 0.5) / h, dtype=np.float32)[:, None]
        xs = np.asarray((np.arange(w, dtype=np.float32) + 0.5) / w, dtype=np.float32)[None, :]
        hz = float(rng.uniform(0.52, 0.68)) if any(f.ground for f in families) else 1.15
        sky_t = np.clip(ys / max(hz, 0.3), 0, 1) ** 1.3
        sky = (rgb(zenith) * (1 - sky_t[..., None]) + rgb(horizon) * sky_t[..., None]).astype(
            np.float32
        )
        sun_x = float(rng.uniform(0.2, 0.8))
        sun_y = (
            hz - float(rng.uniform(0.06, 0.3)) if time.low_sun else float(rng.uniform(0.12, 0.35))
        )
        noise_a = periodic_noise(rng, h, w, 3.2, max(w, h) / 6)
        noise_b = periodic_noise(rng, h, w, 2.6, max(w, h) / 3)
        drift_dir = float(rng.uniform(-1, 1))
        self.canvas = canvas = Canvas(
            recipe=recipe, families=families, time=time,
            kinds=compose_layers(recipe, families, time),
            w=w, h=h, xs=xs, ys=ys, horizon=hz, sky=np.broadcast_to(sky, (h, w, 3)).copy(),
            sun_colour=sun, sun_x=sun_x, sun_y=sun_y, retro_sun=retro_sun, accent=accent,
            noise_a=noise_a, noise_b=noise_b, drift_dir=drift_dir,
        )  # fmt: skip
        self.layers = build_layers(canvas, rng)
        # Only colour words tint the grade; the prompt's own accent colours just the lights.
        self.grade = _Grade(canvas, 0.35 if colours else 0.0)

    def field(self, t: float) -> Float32Array:
        """The frame's light at the field size, RGB float, roughly 0-1: every layer in turn."""
        img = self.canvas.sky.copy()
        for layer in self.layers:
            layer.paint(img, t)
        return self.grade(img)
