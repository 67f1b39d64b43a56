"""A modest ambient sound bed for the procedural engine: filtered noise plus a soft chord pad.

Words in the prompt pick the mood (major/minor/suspended chord, bright or dark noise, slow
swells for water and wind); the seed picks the rest. Everything is vectorised numpy, so a
60 s bed takes well under a second.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from generations.media.encode import AUDIO_SAMPLE_RATE

# Loudness targets: quiet enough to sit under a video, with headroom for AAC.
TARGET_RMS_DBFS = -20.0
PEAK_LIMIT_DBFS = -3.0
MAX_FADE_SECONDS = 1.5
FADE_FRACTION = 0.15

# Semitone offsets from the root.
_CHORDS: dict[str, tuple[int, ...]] = {
    "major": (0, 4, 7, 11),  # major seventh: warm, open
    "minor": (0, 3, 7, 10),  # minor seventh: dusky
    "sus": (0, 5, 7, 14),  # suspended: floating, unresolved
}
_MOOD_WORDS: dict[str, tuple[str, ...]] = {
    "minor": (
        "dark",
        "night",
        "rain",
        "storm",
        "sad",
        "gloom",
        "fog",
        "mist",
        "shadow",
        "moody",
        "noir",
        "cold",
        "winter",
        "haunted",
        "mystery",
        "melancholy",
    ),
    "major": (
        "sun",
        "sunny",
        "happy",
        "bright",
        "summer",
        "joy",
        "warm",
        "golden",
        "spring",
        "flower",
        "beach",
        "morning",
        "cheerful",
        "gold",
    ),
    "sus": ("space", "dream", "cosmic", "stars", "ethereal", "galaxy", "float", "aurora", "calm"),
}
_SWELL_WORDS = ("ocean", "sea", "wave", "waves", "water", "wind", "beach", "shore", "storm")
_BRIGHT_WORDS = ("rain", "waterfall", "city", "fire", "crowd", "river", "stream", "storm")

StereoAudio = npt.NDArray[np.float32]


def _words(text: str) -> set[str]:
    return {w.strip(".,;:!?\"'()[]").lower() for w in text.split()}


def _rng_for(text: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"audio\0{seed}\0{text}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _mood(words: set[str], rng: np.random.Generator) -> str:
    scores = {mood: len(words & set(vocab)) for mood, vocab in _MOOD_WORDS.items()}
    best = max(scores.values())
    if best == 0:
        return str(rng.choice(sorted(_CHORDS)))
    return sorted(m for m, s in scores.items() if s == best)[0]


def _shaped_noise(n: int, rng: np.random.Generator, bright: bool) -> npt.NDArray[np.float64]:
    """Stereo noise with a soft spectral tilt, filtered in the frequency domain (no loops)."""
    white = rng.standard_normal((2, n))
    spectrum = np.fft.rfft(white, axis=1)
    freqs = np.fft.rfftfreq(n, d=1.0 / AUDIO_SAMPLE_RATE)
    freqs[0] = freqs[1] if n > 1 else 1.0
    # Pinkish (1/sqrt f) below a cutoff, rolling off above it: rain is brighter than surf.
    cutoff = 4000.0 if bright else 900.0
    shape = 1.0 / np.sqrt(freqs) / (1.0 + (freqs / cutoff) ** 2)
    shape[freqs < 30.0] *= (freqs[freqs < 30.0] / 30.0) ** 2  # no sub-bass rumble
    filtered = np.fft.irfft(spectrum * shape, n=n, axis=1)
    peak = float(np.max(np.abs(filtered))) or 1.0
    return np.asarray(filtered / peak, dtype=np.float64)


def synthesize_ambient(
    prompt: str, seed: int, num_samples: int, sample_rate: int = AUDIO_SAMPLE_RATE
) -> StereoAudio:
    """Return float32 stereo audio, shape (num_samples, 2), derived from prompt and seed."""
    if num_samples <= 0:
        return np.zeros((0, 2), dtype=np.float32)
    rng = _rng_for(prompt, seed)
    words = _words(prompt)
    t = np.arange(num_samples, dtype=np.float64) / sample_rate

    # Chord pad: a root between A2 and G#3, each note a detuned pair per channel so the
    # pad slowly beats and spreads across the stereo field.
    chord = _CHORDS[_mood(words, rng)]
    root = 110.0 * 2 ** (int(rng.integers(0, 12)) / 12)
    pad = np.zeros((2, num_samples))
    for index, semitones in enumerate(chord):
        freq = root * 2 ** (semitones / 12)
        level = 1.0 / (1 + index * 0.35)
        # Each note swells on its own slow cycle (8-20 s), never fully silent.
        lfo_rate = rng.uniform(1 / 20, 1 / 8)
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * lfo_rate * t + rng.uniform(0, 2 * np.pi))
        for channel, detune in enumerate((-0.12, 0.12)):
            phase = rng.uniform(0, 2 * np.pi)
            f = freq + detune * (1 + index * 0.3)
            # Fundamental plus a quieter octave: soft, organ-like, no harsh partials.
            tone = np.sin(2 * np.pi * f * t + phase) + 0.25 * np.sin(4 * np.pi * f * t + phase)
            pad[channel] += level * envelope * tone
    pad /= float(np.max(np.abs(pad))) or 1.0

    # Noise bed: swelling like surf or wind when the prompt mentions them.
    noise = _shaped_noise(num_samples, rng, bright=bool(words & set(_BRIGHT_WORDS)))
    if words & set(_SWELL_WORDS):
        swell_rate = rng.uniform(1 / 9, 1 / 5)
        swell = 0.35 + 0.65 * (0.5 + 0.5 * np.sin(2 * np.pi * swell_rate * t)) ** 2
        noise_level = 0.8
    else:
        swell = np.ones_like(t)
        noise_level = 0.35
    mix = pad * 0.7 + noise * swell * noise_level

    # Fade in and out so the clip never starts or stops with a click.
    fade = min(MAX_FADE_SECONDS, FADE_FRACTION * num_samples / sample_rate)
    fade_samples = max(1, int(fade * sample_rate))
    ramp = np.linspace(0.0, 1.0, min(fade_samples, num_samples))
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no corner at the ends of the ramp
    mix[:, : len(ramp)] *= ramp
    mix[:, num_samples - len(ramp) :] *= ramp[::-1]

    # Normalise to the RMS target, then make sure the peak stays under the limit.
    rms = float(np.sqrt(np.mean(mix**2))) or 1.0
    peak = float(np.max(np.abs(mix))) or 1.0
    gain = min(10 ** (TARGET_RMS_DBFS / 20) / rms, 10 ** (PEAK_LIMIT_DBFS / 20) / peak)
    return np.ascontiguousarray((mix * gain).T, dtype=np.float32)
