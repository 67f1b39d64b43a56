"""`enable_safety_checker`: prompt screening before anything runs, frame screening before a
video is published.

What the default catches, honestly: prompts (and audio prompts) containing words or phrases
from the built-in lists below, matched as whole words after Unicode normalisation and case
folding. It does not understand meaning: misspellings, other languages, euphemisms and
descriptions that avoid the listed words get through, and innocent prompts that use a listed
word are refused. Output frames are screened only when the operator plugs in an image
classifier (`VIDEOGEN_SAFETY_IMAGE_CLASSIFIER`, a dotted path to a callable); without one,
frames are not screened at all. `nudenet_classifier` below is a ready adapter for the
`nudenet` detector (an optional install; its licence is AGPL-3.0).

Operators replace or extend the word lists with `VIDEOGEN_SAFETY_WORDLIST` (a file of
`category: word or phrase` lines; `#` starts a comment) and can add words with
`VIDEOGEN_SAFETY_EXTRA_WORDS` (comma-separated, category "custom")."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.utils.module_loading import import_string

# A deliberately small default: clear-cut requests a self-hosted service should refuse.
DEFAULT_WORDS: dict[str, tuple[str, ...]] = {
    "sexual_minors": ("child porn", "child pornography", "cp video", "underage sex",
                      "sexualized minor", "loli porn", "preteen nude"),
    "sexual": ("porn", "pornographic", "hardcore sex", "explicit sex", "nude sex",
               "xxx video"),
    "gore": ("beheading", "decapitation", "dismemberment", "disembowel", "gore video",
             "snuff film"),
    "self_harm": ("suicide tutorial", "how to kill myself", "self harm tutorial"),
    "extremism": ("isis propaganda", "terrorist recruitment", "nazi propaganda"),
}  # fmt: skip
FRAMES_TO_SCREEN = 8


@dataclass(frozen=True)
class Verdict:
    blocked: bool
    category: str = ""
    detail: str = ""


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\W_]+", " ", text).strip()


def _load_wordlist(path: str) -> dict[str, list[str]]:
    words: dict[str, list[str]] = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        category, _, phrase = line.partition(":")
        if not phrase:
            category, phrase = "custom", category
        words.setdefault(category.strip() or "custom", []).append(phrase.strip())
    return words


@cache
def _patterns(wordlist: str, extra: tuple[str, ...]) -> list[tuple[str, re.Pattern[str]]]:
    source: dict[str, list[str]] = (
        _load_wordlist(wordlist) if wordlist else {k: list(v) for k, v in DEFAULT_WORDS.items()}
    )
    if extra:
        source.setdefault("custom", []).extend(extra)
    compiled = []
    for category, phrases in source.items():
        cleaned = [_normalise(p) for p in phrases if _normalise(p)]
        if cleaned:
            alternatives = "|".join(re.escape(p) for p in sorted(cleaned, key=len, reverse=True))
            compiled.append((category, re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")))
    return compiled


def screen_text(*texts: str) -> Verdict:
    extra = tuple(w.strip() for w in settings.VIDEOGEN_SAFETY_EXTRA_WORDS if w.strip())
    normalised = " | ".join(_normalise(t) for t in texts if t)
    for category, pattern in _patterns(settings.VIDEOGEN_SAFETY_WORDLIST, extra):
        match = pattern.search(normalised)
        if match:
            return Verdict(True, category, match.group(0))
    return Verdict(False)


FrameClassifier = Callable[[Sequence[np.ndarray[Any, Any]]], Verdict]


# Documented values of VIDEOGEN_SAFETY_IMAGE_CLASSIFIER whose code has moved since: an
# operator's setting keeps working.
MOVED_CLASSIFIERS = {
    "generations.safety.nudenet_classifier": "generations.core.safety.nudenet_classifier",
}


def image_classifier() -> FrameClassifier | None:
    path = settings.VIDEOGEN_SAFETY_IMAGE_CLASSIFIER
    return import_string(MOVED_CLASSIFIERS.get(path, path)) if path else None


def sample_frames(video: Path, count: int = FRAMES_TO_SCREEN) -> list[np.ndarray[Any, Any]]:
    """Evenly spaced RGB frames of a finished video, decoded one at a time."""
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        total = stream.frames or 0
        wanted = {round(i * max(total - 1, 0) / max(count - 1, 1)) for i in range(count)}
        frames = []
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                frames.append(frame.to_ndarray(format="rgb24"))
            if total and index >= max(wanted):
                break
        return frames


def screen_video(video: Path) -> Verdict:
    classify = image_classifier()
    if classify is None:
        return Verdict(False)
    return classify(sample_frames(video))


def nudenet_classifier(frames: Sequence[np.ndarray[Any, Any]]) -> Verdict:
    """Adapter for `nudenet` (pip install nudenet; AGPL-3.0): blocks exposed genitalia,
    breasts and buttocks detected with at least 60 % confidence."""
    from nudenet import NudeDetector  # type: ignore[import-not-found]

    detector = NudeDetector()
    blocked = {"FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED",
               "BUTTOCKS_EXPOSED", "ANUS_EXPOSED"}  # fmt: skip
    for frame in frames:
        for found in detector.detect(frame[:, :, ::-1].copy()):
            if found.get("class") in blocked and found.get("score", 0) >= 0.6:
                return Verdict(True, "nudity", str(found.get("class")))
    return Verdict(False)
