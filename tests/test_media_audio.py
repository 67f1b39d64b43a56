from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from generations.media.audio import (
    SOUND_TYPES,
    TARGET_LOUDNESS_LUFS,
    loudness_lufs,
    sound_types,
    synthesize,
)

RATE = 48_000
PROMPTS = {
    "rain": "soft rain on a window",
    "ocean": "waves on the shore",
    "wind": "wind over the desert",
    "fire": "a crackling campfire",
    "birds": "birds singing",
    "city": "city traffic",
    "space": "deep space",
    "music": "gentle piano music",
    "ambient": "a quiet moment",
}


def test_every_sound_type_has_a_prompt_here():
    assert set(PROMPTS) == set(SOUND_TYPES)
    for kind, prompt in PROMPTS.items():
        assert sound_types(prompt) == [kind]


def test_several_words_mix_several_sounds():
    assert sound_types("rain in the city") == ["rain", "city"]
    assert sound_types("") == ["ambient"]


@pytest.mark.parametrize("kind", sorted(PROMPTS))
def test_each_sound_is_normalised_to_the_target_loudness(kind):
    audio = synthesize(PROMPTS[kind], 3, 3 * RATE)
    assert audio.shape == (3 * RATE, 2) and audio.dtype == np.float32
    assert loudness_lufs(audio) == pytest.approx(TARGET_LOUDNESS_LUFS, abs=2.0)
    assert np.max(np.abs(audio)) < 0.9  # headroom for AAC
    assert not np.array_equal(audio[:, 0], audio[:, 1])  # stereo, not dual mono


@pytest.mark.parametrize("samples", [1, 1023, 48_000, 48_000 * 2 + 1601])
def test_the_length_is_exact(samples):
    assert synthesize("rain", 1, samples).shape == (samples, 2)


def test_it_is_deterministic_for_a_seed():
    a = synthesize("ocean waves", 7, RATE)
    assert np.array_equal(a, synthesize("ocean waves", 7, RATE))
    assert not np.array_equal(a, synthesize("ocean waves", 8, RATE))


def test_it_fades_in_and_out():
    audio = synthesize("rain", 1, 4 * RATE)

    def rms(x):
        return float(np.sqrt(np.mean(x**2)))

    middle = rms(audio[RATE : 3 * RATE])
    assert rms(audio[:480]) < 0.05 * middle
    assert rms(audio[-480:]) < 0.05 * middle
    assert audio[0].tolist() == [0.0, 0.0]


def _band_profile(audio):
    spectrum = np.abs(np.fft.rfft(audio.mean(axis=1))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    edges = np.geomspace(40, 16_000, 13)
    bands = np.array(
        [spectrum[(freqs >= lo) & (freqs < hi)].sum() for lo, hi in itertools.pairwise(edges)]
    )
    profile = 10 * np.log10(bands / bands.sum() + 1e-12)
    return profile


def test_the_sound_types_sound_different():
    profiles = {k: _band_profile(synthesize(p, 2, 3 * RATE)) for k, p in PROMPTS.items()}
    for a, b in itertools.combinations(profiles, 2):
        distance = float(np.sqrt(np.mean((profiles[a] - profiles[b]) ** 2)))
        assert distance > 2.0, (a, b, distance)


def test_the_loudness_meter_matches_the_standard_reference():
    # BS.1770: a full-scale 997 Hz sine in one channel reads -3.01 LKFS.
    t = np.arange(RATE * 2) / RATE
    sine = np.sin(2 * np.pi * 997 * t)
    one_channel = np.stack([sine, np.zeros_like(sine)], axis=1)
    assert loudness_lufs(one_channel) == pytest.approx(-3.01, abs=0.1)
    assert loudness_lufs(np.zeros((100, 2))) == -math.inf
