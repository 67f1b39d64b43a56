"""Sound beds for the procedural engine, synthesised from words in the audio prompt.

Sound types, chosen by words (several may mix, "rain in the city" is rain over traffic):

    rain, ocean (waves), wind, fire, birds, city (traffic), space (drone), music (a chord
    progression with a pad and an arpeggio), and `ambient` (a soft chord pad over filtered
    noise) when no word matches.

Everything is vectorised numpy at 48 kHz stereo and deterministic for (text, seed); a 60 s bed
takes about a second. Every bed fades in and out (smoothstep, up to 1.5 s) and lasts exactly
the number of samples asked for.

Loudness: the bed is normalised to TARGET_LOUDNESS_LUFS, measured as in ITU-R BS.1770 but
without gating: both channels K-weighted (the standard's high-shelf and high-pass pre-filter,
applied as their exact frequency response on the spectrum), mean square summed over the
channels, ``-0.691 + 10 log10(sum)``. A soft limiter then keeps peaks under PEAK_LIMIT_DBFS
and the gain is re-fitted, so the result lands within a fraction of a dB of the target
(`loudness_lufs` is the same measurement, exposed for tests and tools). AAC encoding moves the
measured value by well under 1 dB.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from generations.media.encode import AUDIO_SAMPLE_RATE

TARGET_LOUDNESS_LUFS = -20.0
PEAK_LIMIT_DBFS = -1.0
MAX_FADE_SECONDS = 1.5
FADE_FRACTION = 0.15
# At most this many sound types are layered; more would blur into noise.
MAX_LAYERS = 3

SOUND_WORDS: dict[str, tuple[str, ...]] = {
    "rain": (
        "rain",
        "rainy",
        "raining",
        "drizzle",
        "storm",
        "stormy",
        "thunderstorm",
        "downpour",
        "shower",
    ),
    "ocean": (
        "ocean",
        "sea",
        "wave",
        "waves",
        "surf",
        "beach",
        "shore",
        "coast",
        "tide",
        "seaside",
    ),
    "wind": ("wind", "windy", "breeze", "gust", "gusts", "blizzard", "desert", "mountain", "storm"),
    "fire": ("fire", "campfire", "fireplace", "flame", "flames", "bonfire", "crackling", "embers"),
    "birds": ("bird", "birds", "birdsong", "chirping", "forest", "jungle", "meadow", "garden"),
    "city": ("city", "traffic", "street", "urban", "cars", "car", "downtown", "cyberpunk", "town"),
    "space": (
        "space",
        "cosmic",
        "galaxy",
        "stars",
        "nebula",
        "drone",
        "universe",
        "planet",
        "scifi",
    ),
    "music": (
        "music",
        "musical",
        "song",
        "melody",
        "chord",
        "chords",
        "piano",
        "synth",
        "synthwave",
        "soundtrack",
        "tune",
        "arpeggio",
    ),
}
SOUND_TYPES = (*SOUND_WORDS, "ambient")
_MINOR_WORDS = ("dark", "night", "sad", "gloomy", "moody", "noir", "cold", "mystery", "melancholy")
_SLOW_WORDS = ("slow", "calm", "gentle", "peaceful", "soft", "quiet", "serene", "relaxing")
_FAST_WORDS = ("fast", "energetic", "upbeat", "busy", "dance", "driving", "heavy", "intense")

StereoAudio = npt.NDArray[np.float32]
Signal = npt.NDArray[np.float64]


def _words(text: str) -> set[str]:
    return {w.strip(".,;:!?\"'()[]-").lower() for w in text.replace("-", " ").split()}


def sound_types(text: str) -> list[str]:
    """The sound types `text` asks for, in SOUND_WORDS order; ["ambient"] when none."""
    words = _words(text)
    found = [kind for kind, vocab in SOUND_WORDS.items() if words & set(vocab)]
    return found[:MAX_LAYERS] or ["ambient"]


def _rng_for(text: str, seed: int, layer: str = "") -> np.random.Generator:
    digest = hashlib.sha256(f"audio\0{seed}\0{text}\0{layer}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


# --- loudness -------------------------------------------------------------------------------


def _biquad_response(
    b: tuple[float, float, float], a: tuple[float, float, float], w: Signal
) -> npt.NDArray[np.complex128]:
    z1 = np.exp(-1j * w)
    z2 = z1 * z1
    return np.asarray((b[0] + b[1] * z1 + b[2] * z2) / (a[0] + a[1] * z1 + a[2] * z2))


@functools.lru_cache(maxsize=4)
def _k_weighting_power(n: int, sample_rate: int) -> Signal:
    """|H(f)|^2 of the BS.1770 K-weighting pre-filter at the rfft frequencies of length n."""
    freqs = np.fft.rfftfreq(n, d=1.0 / sample_rate)
    w = 2 * np.pi * freqs / sample_rate
    # Stage 1 (high shelf, +4 dB above ~1.7 kHz) and stage 2 (RLB high-pass at ~38 Hz),
    # designed from the standard's analogue prototypes for the actual sample rate.
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf_b = (
        (vh + vb * k / q + k * k) / a0,
        2 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
    )
    shelf_a = (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    f1, q1 = 38.13547087602444, 0.5003270373238773
    k1 = math.tan(math.pi * f1 / sample_rate)
    a1 = 1 + k1 / q1 + k1 * k1
    hp_b = (1.0, -2.0, 1.0)
    hp_a = (1.0, 2 * (k1 * k1 - 1) / a1, (1 - k1 / q1 + k1 * k1) / a1)
    h = _biquad_response(shelf_b, shelf_a, w) * _biquad_response(hp_b, hp_a, w)
    power = np.asarray(np.abs(h) ** 2, dtype=np.float64)
    power.flags.writeable = False  # cached and shared between calls
    return power


def loudness_lufs(audio: npt.ArrayLike, sample_rate: int = AUDIO_SAMPLE_RATE) -> float:
    """Ungated BS.1770 loudness of (n, channels) audio, in LUFS (-inf for silence)."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n = x.shape[0]
    if n == 0:
        return -math.inf
    # Channels as rows: the FFT runs along contiguous memory (callers pass `signal.T`, whose
    # transpose is contiguous), half again as fast as along the strided axis, same result.
    spectrum = np.fft.rfft(np.ascontiguousarray(x.T), axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2) * _k_weighting_power(n, sample_rate)
    # Parseval for the real FFT: interior bins count twice.
    weights = np.full(power.shape[-1], 2.0)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    power *= weights
    mean_square = float(np.sum(power)) / (n * n)
    if mean_square <= 0:
        return -math.inf
    return -0.691 + 10 * math.log10(mean_square)


# --- building blocks ------------------------------------------------------------------------


def _shaped_noise(
    n: int, rng: np.random.Generator, shape: Callable[[Signal], Signal], channels: int = 2
) -> Signal:
    """Noise with the magnitude response `shape(freqs)`, peak-normalised, (channels, n)."""
    spectrum = np.fft.rfft(rng.standard_normal((channels, n)), axis=1)
    freqs = np.fft.rfftfreq(n, d=1.0 / AUDIO_SAMPLE_RATE)
    freqs[0] = freqs[1] if n > 1 else 1.0
    gain = shape(np.asarray(freqs, dtype=np.float64))
    gain[freqs < 25.0] = 0.0  # no sub-bass rumble
    # In place: a 60 s bed is 46 MB a copy, and this runs while the video encodes.
    spectrum *= gain
    out = np.fft.irfft(spectrum, n=n, axis=1)
    del spectrum
    out /= float(np.max(np.abs(out))) or 1.0
    return out


def _band(low: float, high: float, tilt: float = 0.0) -> Callable[[Signal], Signal]:
    """A soft band-pass (second-order skirts), optionally tilted by f^tilt."""

    def shape(f: Signal) -> Signal:
        hp = (f / low) ** 2 / (1 + (f / low) ** 2)
        lp = 1 / (1 + (f / high) ** 2)
        return np.asarray(hp * lp * (f / 1000.0) ** tilt, dtype=np.float64)

    return shape


def _slow_envelope(
    n: int, rng: np.random.Generator, period_s: float, depth: float, channels: int = 2
) -> Signal:
    """A smooth random envelope in [1 - depth, 1], varying over about `period_s`."""
    seconds = n / AUDIO_SAMPLE_RATE
    points = max(3, int(seconds / period_s) + 2)
    knots = rng.random((channels, points))
    pos = np.linspace(0.0, points - 1.0, n)
    index = np.minimum(pos.astype(np.int64), points - 2)
    frac = pos - index
    frac = frac * frac * (3 - 2 * frac)  # smoothstep between knots: no corners
    out = knots[:, index] * (1 - frac) + knots[:, index + 1] * frac
    lo, hi = float(out.min()), float(out.max())
    out = (out - lo) / ((hi - lo) or 1.0)
    return np.asarray(1.0 - depth + depth * out, dtype=np.float64)


def _impulses(n: int, rng: np.random.Generator, rate_per_s: float, channels: int = 2) -> Signal:
    """Sparse random clicks (Poisson times, random heavy-tailed sizes), (channels, n)."""
    out = np.zeros((channels, n))
    count = rng.poisson(rate_per_s * n / AUDIO_SAMPLE_RATE)
    pos = rng.integers(0, n, size=count)
    size = rng.pareto(2.5, size=count) + 0.2
    chan = rng.integers(0, channels, size=count)
    np.add.at(out, (chan, pos), size * rng.choice((-1.0, 1.0), size=count))
    return out


def _filtered(signal: Signal, shape: Callable[[Signal], Signal]) -> Signal:
    n = signal.shape[-1]
    freqs = np.fft.rfftfreq(n, d=1.0 / AUDIO_SAMPLE_RATE)
    freqs[0] = freqs[1] if n > 1 else 1.0
    out = np.fft.irfft(
        np.fft.rfft(signal, axis=-1) * shape(np.asarray(freqs, dtype=np.float64)), n=n, axis=-1
    )
    return out / (float(np.max(np.abs(out))) or 1.0)


def _tone(t: Signal, freq: float, phase: float, partials: tuple[float, ...]) -> Signal:
    out = np.zeros_like(t)
    for k, amp in enumerate(partials, start=1):
        out += amp * np.sin(2 * np.pi * freq * k * t + phase * k)
    return out


# --- sound types ----------------------------------------------------------------------------


def _rain(n: int, t: Signal, rng: np.random.Generator, pace: float) -> Signal:
    hiss = _shaped_noise(n, rng, _band(800.0, 9000.0, tilt=-0.3))
    drops = _filtered(_impulses(n, rng, 900.0 * pace), _band(1500.0, 7000.0))
    heavy = _filtered(_impulses(n, rng, 25.0 * pace), _band(300.0, 2500.0))
    return hiss * 0.6 * _slow_envelope(n, rng, 5.0, 0.3) + drops * 0.5 + heavy * 0.4


def _ocean(n: int, t: Signal, rng: np.random.Generator, pace: float) -> Signal:
    body = _shaped_noise(n, rng, _band(60.0, 700.0, tilt=-0.5))
    foam = _shaped_noise(n, rng, _band(1500.0, 8000.0))
    period = float(rng.uniform(6.0, 10.0)) / pace
    phase = rng.uniform(0, 2 * np.pi, size=(2, 1))
    # Each wave rises slowly and breaks quickly: a skewed, squared cosine per channel.
    cycle = (t[None, :] / period + phase / (2 * np.pi)) % 1.0
    rise = np.where(cycle < 0.7, cycle / 0.7, 1.0 - (cycle - 0.7) / 0.3)
    del cycle
    swell = 0.15 + 0.85 * (0.5 - 0.5 * np.cos(np.pi * rise)) ** 2
    del rise
    body *= swell
    foam *= swell * swell * swell * 0.5
    body += foam
    return body


def _wind(n: int, t: Signal, rng: np.random.Generator, pace: float) -> Signal:
    out = np.zeros((2, n))
    for low, high, level in ((80.0, 400.0, 0.8), (300.0, 1200.0, 0.6), (900.0, 3500.0, 0.35)):
        band = _shaped_noise(n, rng, _band(low, high))
        out += level * band * _slow_envelope(n, rng, 3.0 / pace, 0.85) ** 2
    return out


def _fire(n: int, t: Signal, rng: np.random.Generator, pace: float) -> Signal:
    roar = _shaped_noise(n, rng, _band(40.0, 300.0, tilt=-0.5)) * _slow_envelope(n, rng, 1.5, 0.4)
    crackle = _filtered(_impulses(n, rng, 60.0 * pace), _band(1200.0, 8000.0))
    pops = _filtered(_impulses(n, rng, 4.0 * pace), _band(200.0, 2000.0))
    return roar * 0.7 + crackle * 0.7 + pops * 0.6


def _birds(n: int, t: Signal, rng: np.random.Generator, pace: float) -> Signal:
    out = _shaped_noise(n, rng, _band(150.0, 2000.0)) * 0.05  # faint air
    seconds = n / AUDIO_SAMPLE_RATE
    species = [
        (
            float(rng.uniform(2200, 4500)),
            float(rng.uniform(-1500, 1500)),
            float(rng.uniform(0.05, 0.14)),
        )
        for _ in range(3)
    ]
    phrases = max(1, rng.poisson(0.8 * pace * seconds))
    for _ in range(phrases):
        base, sweep, length = species[int(rng.integers(0, len(species)))]
        start = float(rng.uniform(0, max(0.01, seconds - 0.5)))
        pan = float(rng.uniform(0.15, 0.85))
        level = float(rng.uniform(0.4, 1.0))
        for k in range(int(rng.integers(2, 6))):
            s0 = int((start + k * length * 1.6) * AUDIO_SAMPLE_RATE)
            m = int(length * AUDIO_SAMPLE_RATE)
            if s0 + m >= n:
                break
            tt = np.arange(m) / AUDIO_SAMPLE_RATE
            freq = base + sweep * (tt / length) + 300 * np.sin(2 * np.pi * 30 * tt)
            phase = 2 * np.pi * np.cumsum(freq) / AUDIO_SAMPLE_RATE
            chirp = np.sin(phase) * np.sin(np.pi * tt / length) ** 2 * level
            out[0, s0 : s0 + m] += chirp * (1 - pan)
            out[1, s0 : s0 + m] += chirp * pan
    return out


def _city(n: int, t: Signal, rng: np.random.Generator, pace: float) -> Signal:
    rumble = _shaped_noise(n, rng, _band(40.0, 250.0, tilt=-0.5)) * 0.6
    hum = _shaped_noise(n, rng, _band(400.0, 3000.0)) * 0.12
    out = rumble + hum
    seconds = n / AUDIO_SAMPLE_RATE
    tyre = _shaped_noise(n, rng, _band(200.0, 1800.0))
    cars = max(1, rng.poisson(0.5 * pace * seconds))
    for _ in range(cars):
        centre = float(rng.uniform(0, seconds))
        width = float(rng.uniform(1.0, 2.5))
        bell = np.exp(-(((t - centre) / width) ** 2))
        direction = float(rng.choice((-1.0, 1.0)))
        pan = 0.5 + 0.45 * np.tanh(direction * (t - centre) / width)
        level = float(rng.uniform(0.4, 0.9))
        out[0] += tyre[0] * bell * (1 - pan) * level
        out[1] += tyre[1] * bell * pan * level
    if seconds > 3 and rng.random() < 0.7:
        start = int(rng.uniform(1, seconds - 1.5) * AUDIO_SAMPLE_RATE)
        m = int(0.4 * AUDIO_SAMPLE_RATE)
        tt = np.arange(m) / AUDIO_SAMPLE_RATE
        horn = (
            np.sign(np.sin(2 * np.pi * 415 * tt)) + np.sign(np.sin(2 * np.pi * 523 * tt))
        ) * 0.08
        horn *= np.minimum(1.0, np.minimum(tt, tt[-1] - tt) / 0.02)
        out[:, start : start + m] += horn
    return out


def _space(n: int, t: Signal, rng: np.random.Generator, pace: float) -> Signal:
    root = 55.0 * 2 ** (int(rng.integers(0, 7)) / 12)
    out = np.zeros((2, n))
    for ratio, level in ((1.0, 1.0), (1.5, 0.5), (2.0, 0.45), (3.0, 0.2), (4.0, 0.12), (6.0, 0.06)):
        lfo_rate = float(rng.uniform(1 / 25, 1 / 9)) * pace
        env = 0.55 + 0.45 * np.sin(2 * np.pi * lfo_rate * t + rng.uniform(0, 2 * np.pi))
        for c, detune in enumerate((-0.15, 0.15)):
            out[c] += (
                level * env * np.sin(2 * np.pi * (root * ratio + detune) * t + rng.uniform(0, 6.3))
            )
    shimmer = _shaped_noise(n, rng, _band(3000.0, 9000.0)) * 0.04 * _slow_envelope(n, rng, 6.0, 1.0)
    return out / (float(np.max(np.abs(out))) or 1.0) + shimmer


_PROGRESSIONS = {
    "major": ((0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12)),  # I V vi IV
    "minor": ((0, 3, 7), (8, 12, 15), (3, 7, 10), (10, 14, 17)),  # i VI III VII
}


def _music(n: int, t: Signal, rng: np.random.Generator, pace: float, minor: bool) -> Signal:
    progression = _PROGRESSIONS["minor" if minor else "major"]
    root = 130.81 * 2 ** (int(rng.integers(-3, 4)) / 12)  # around C3
    chord_s = 2.4 / pace
    chord_n = max(1, int(chord_s * AUDIO_SAMPLE_RATE))
    out = np.zeros((2, n))
    step_n = max(1, chord_n // 8)
    pluck_t = np.arange(step_n) / AUDIO_SAMPLE_RATE
    pluck_env = np.exp(-pluck_t * 9.0) * np.minimum(1.0, pluck_t / 0.004)
    arp_order = (0, 1, 2, 3, 2, 1, 0, 1)
    for index, start in enumerate(range(0, n, chord_n)):
        chord = progression[index % len(progression)]
        stop = min(n, start + chord_n)
        tt = t[start:stop]
        local = tt - tt[0]
        # Pad: soft attack and release inside each chord so the changes glide.
        env = np.minimum(1.0, local / 0.25) * np.minimum(1.0, (chord_s - local) / 0.35 + 0.2)
        for k, semis in enumerate(chord):
            f = root * 2 ** (semis / 12)
            for c, detune in enumerate((-0.3, 0.3)):
                out[c, start:stop] += 0.3 * env * _tone(tt, f + detune, k * 1.3, (1.0, 0.35, 0.12))
        bass = root / 2 * 2 ** (chord[0] / 12)
        out[:, start:stop] += 0.35 * env * np.sin(2 * np.pi * bass * tt)
        # Arpeggio: eight plucked notes per chord, an octave up, alternating sides.
        notes = (*chord, chord[0] + 12)
        for step, which in enumerate(arp_order):
            s0 = start + step * step_n
            if s0 >= stop:
                break
            m = min(step_n, stop - s0)
            f = root * 2 * 2 ** (notes[which] / 12)
            tone = _tone(pluck_t[:m], f, 0.0, (1.0, 0.5, 0.25, 0.12)) * pluck_env[:m] * 0.35
            out[step % 2, s0 : s0 + m] += tone
            out[1 - step % 2, s0 : s0 + m] += tone * 0.5
    return out


def _ambient(n: int, t: Signal, rng: np.random.Generator, pace: float, minor: bool) -> Signal:
    chord = (0, 3, 7, 10) if minor else (0, 4, 7, 11)
    root = 110.0 * 2 ** (int(rng.integers(0, 12)) / 12)
    pad = np.zeros((2, n))
    for index, semitones in enumerate(chord):
        freq = root * 2 ** (semitones / 12)
        level = 1.0 / (1 + index * 0.35)
        lfo = float(rng.uniform(1 / 20, 1 / 8)) * pace
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * lfo * t + rng.uniform(0, 2 * np.pi))
        for channel, detune in enumerate((-0.12, 0.12)):
            f = freq + detune * (1 + index * 0.3)
            pad[channel] += level * envelope * _tone(t, f, float(rng.uniform(0, 6.3)), (1.0, 0.25))
    pad /= float(np.max(np.abs(pad))) or 1.0
    air = _shaped_noise(n, rng, _band(100.0, 1200.0, tilt=-0.5))
    return pad * 0.8 + air * 0.25


# Relative level of each layer when several are mixed (before loudness normalisation).
_LAYER_LEVEL = {
    "rain": 1.0,
    "ocean": 1.0,
    "wind": 0.8,
    "fire": 0.9,
    "birds": 0.7,
    "city": 0.9,
    "space": 0.9,
    "music": 0.9,
    "ambient": 1.0,
}


def _fade(mix: Signal, sample_rate: int) -> None:
    n = mix.shape[1]
    fade = min(MAX_FADE_SECONDS, FADE_FRACTION * n / sample_rate)
    fade_samples = min(n, max(1, int(fade * sample_rate)))
    ramp = np.linspace(0.0, 1.0, fade_samples)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no corner at the ends of the ramp
    mix[:, :fade_samples] *= ramp
    mix[:, n - fade_samples :] *= ramp[::-1]


def _normalise(mix: Signal, sample_rate: int) -> Signal:
    """Fit the gain to the loudness target; soft-limit peaks; refit (twice is enough)."""
    limit = 10 ** (PEAK_LIMIT_DBFS / 20)
    knee = 0.5 * limit
    out = mix  # scaled in place: the caller is done with the unnormalised mix
    for _ in range(3):
        level = loudness_lufs(out.T, sample_rate)
        if not math.isfinite(level):
            return out
        out *= 10 ** ((TARGET_LOUDNESS_LUFS - level) / 20)
        over = np.abs(out) > knee
        if not over.any():
            return out  # nothing was limited: the gain just applied is exact
        # Above the knee, tanh bends the curve smoothly towards the limit.
        mag = np.abs(out[over])
        out[over] = np.sign(out[over]) * (
            knee + (limit - knee) * np.tanh((mag - knee) / (limit - knee))
        )
    return out


def synthesize(
    text: str, seed: int, num_samples: int, sample_rate: int = AUDIO_SAMPLE_RATE
) -> StereoAudio:
    """Return float32 stereo audio, shape (num_samples, 2), for the sound `text` describes."""
    if num_samples <= 0:
        return np.zeros((0, 2), dtype=np.float32)
    words = _words(text)
    pace = 1.0
    if words & set(_SLOW_WORDS):
        pace = 0.7
    elif words & set(_FAST_WORDS):
        pace = 1.5
    minor = bool(words & set(_MINOR_WORDS))
    t = np.arange(num_samples, dtype=np.float64) / sample_rate
    mix = np.zeros((2, num_samples))
    for kind in sound_types(text):
        rng = _rng_for(text, seed, kind)
        if kind == "music":
            layer = _music(num_samples, t, rng, pace, minor)
        elif kind == "ambient":
            layer = _ambient(num_samples, t, rng, pace, minor)
        else:
            layer = _LAYERS[kind](num_samples, t, rng, pace)
        # Each layer at a comparable loudness before the mix level applies.
        level = loudness_lufs(layer.T, sample_rate)
        if math.isfinite(level):
            layer *= 10 ** ((-20.0 - level) / 20)
            layer *= _LAYER_LEVEL[kind]
        mix += layer
        del layer
    _fade(mix, sample_rate)
    out = _normalise(mix, sample_rate)
    return np.ascontiguousarray(out.T, dtype=np.float32)


_LAYERS: dict[str, Callable[[int, Signal, np.random.Generator, float], Signal]] = {
    "rain": _rain,
    "ocean": _ocean,
    "wind": _wind,
    "fire": _fire,
    "birds": _birds,
    "city": _city,
    "space": _space,
}
