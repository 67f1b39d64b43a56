"""Camera moves for image-to-video: which one, and where the camera is at each moment.

A move is a window over the input image: a zoom (1 = the cover crop, larger = closer) and a
centre (fractions of the image). Every move starts exactly on the cover crop (zoom 1, centred)
and eases in and out (sine ease), so the first frame is the input and the motion starts and
ends at rest. Moves:

    push_in     zoom in, drifting gently towards a seeded point
    pull_out    zoom out past the edges of the image (the border is a soft, blurred mirror)
    pan_left    the camera turns left: the picture slides right (with a slight zoom, so
    pan_right   little or no border is revealed)
    tilt_up     the camera tilts up: the picture slides down
    tilt_down
    drift       a slow diagonal glide with a slight push in, direction from the seed

Words in the prompt choose ("zoom in", "push in", "zoom out", "pull back", "pan left", "tilt
up", "drift", ...); otherwise the seed does. "slow", "gentle" make the move smaller, "fast",
"dramatic" larger.

With an end frame the camera travels instead (`Travel`): one eased move carries it through
the first image and on into the second, which dissolves in as the first dissolves out. Both
images ride the same move (the first from rest to the move's end, the second from the move's
start to rest), so the motion has one speed and one direction across the dissolve: the first
frame is the first image and the last frame the second, each exactly as cover-cropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from generations.rendering.local.scenes import stable_seed, words_of

MOVES = ("push_in", "pull_out", "pan_left", "pan_right", "tilt_up", "tilt_down", "drift")
# Phrases (checked on the prompt's words joined by single spaces) that pick a move.
MOVE_PHRASES: dict[str, tuple[str, ...]] = {
    "push_in": (
        "zoom in",
        "zooms in",
        "zooming in",
        "push in",
        "pushes in",
        "dolly in",
        "close up",
    ),
    "pull_out": (
        "zoom out",
        "zooms out",
        "zooming out",
        "pull back",
        "pull out",
        "pulls back",
        "dolly out",
        "pulling back",
    ),
    "pan_left": ("pan left", "pans left", "panning left"),
    "pan_right": ("pan right", "pans right", "panning right"),
    "tilt_up": ("tilt up", "tilts up", "tilting up"),
    "tilt_down": ("tilt down", "tilts down", "tilting down"),
    "drift": ("drift", "drifting", "glide", "gliding", "float", "floating"),
}
SLOW_WORDS = ("slow", "slowly", "gentle", "gently", "subtle", "calm", "soft")
FAST_WORDS = ("fast", "quick", "quickly", "dramatic", "rapid", "swift")

# How far a move goes: zoom gained per second of clip, clamped to [MIN, MAX].
AMOUNT_PER_SECOND = 0.035
AMOUNT_MIN = 0.08
AMOUNT_MAX = 0.22
# Pans go this much further than the zoom alone would allow (the rest is soft border).
PAN_OVERSHOOT = 1.3
# Push-in: the centre may wander this share of the room the zoom leaves.
PUSH_DRIFT = 0.6


def ease(p: float) -> float:
    """Sine ease-in-out on [0, 1]: zero speed at both ends."""
    return 0.5 - 0.5 * math.cos(math.pi * min(1.0, max(0.0, p)))


@dataclass(frozen=True)
class CameraMove:
    kind: str
    amount: float  # zoom gained (or lost, for pull_out) over the clip
    direction: tuple[float, float] = (0.0, 0.0)  # unit-ish (x, y) for push_in and drift

    @property
    def max_zoom(self) -> float:
        return 1.0 if self.kind == "pull_out" else 1.0 + self.amount

    @property
    def padding(self) -> float:
        """Border (fraction of the image on each side) the move may reveal, with a margin."""
        if self.kind == "pull_out":
            return (1.0 / self.min_zoom - 1.0) / 2 + 0.02
        if self.kind.startswith(("pan", "tilt")) or self.kind == "drift":
            z = self.max_zoom
            return (PAN_OVERSHOOT - 1.0) * (0.5 - 0.5 / z) + 0.02
        return 0.02

    @property
    def min_zoom(self) -> float:
        return 1.0 / (1.0 + self.amount) if self.kind == "pull_out" else 1.0

    def at(self, p: float) -> tuple[float, float, float]:
        """(zoom, centre x, centre y) at clip position p in [0, 1]."""
        e = ease(p)
        if self.kind == "pull_out":
            zoom = 1.0 + (self.min_zoom - 1.0) * e
            return zoom, 0.5, 0.5
        zoom = 1.0 + self.amount * e
        room = 0.5 - 0.5 / zoom  # how far the centre may move with the window still inside
        dx, dy = self.direction
        if self.kind == "push_in":
            return zoom, 0.5 + dx * PUSH_DRIFT * room, 0.5 + dy * PUSH_DRIFT * room
        if self.kind == "pan_left":
            return zoom, 0.5 - PAN_OVERSHOOT * room, 0.5
        if self.kind == "pan_right":
            return zoom, 0.5 + PAN_OVERSHOOT * room, 0.5
        if self.kind == "tilt_up":
            return zoom, 0.5, 0.5 - PAN_OVERSHOOT * room
        if self.kind == "tilt_down":
            return zoom, 0.5, 0.5 + PAN_OVERSHOOT * room
        # drift
        return zoom, 0.5 + dx * PAN_OVERSHOOT * room, 0.5 + dy * PAN_OVERSHOOT * room


def choose_move(prompt: str, seed: int, seconds: float) -> CameraMove:
    words = words_of(prompt)
    joined = " " + " ".join(prompt.lower().replace("-", " ").replace(",", " ").split()) + " "
    kind = ""
    for candidate, phrases in MOVE_PHRASES.items():
        if any(f" {phrase} " in joined for phrase in phrases):
            kind = candidate
            break
    rng = np.random.default_rng(stable_seed("camera", seed, prompt))
    if not kind:
        kind = MOVES[int(rng.integers(0, len(MOVES)))]
    amount = min(AMOUNT_MAX, max(AMOUNT_MIN, AMOUNT_PER_SECOND * seconds))
    if words & set(SLOW_WORDS):
        amount *= 0.6
    elif words & set(FAST_WORDS):
        amount = min(AMOUNT_MAX * 1.3, amount * 1.6)
    angle = float(rng.uniform(0, 2 * math.pi))
    direction = (math.cos(angle), math.sin(angle))
    return CameraMove(kind=kind, amount=amount, direction=direction)


# End frame: the travel's zoom (in log units, per image) and sideways shift (frame fractions)
# for a move of `amount` (see `choose_move`), and how much of it a pan or a drift keeps.
TRAVEL_ZOOM_PER_AMOUNT = 1.2
TRAVEL_SHIFT_PER_AMOUNT = 0.5
TRAVEL_PAN_ZOOM = 0.3


@dataclass(frozen=True)
class Travel:
    """The camera's path from the first image into the second (an end frame's transition).

    `log_zoom` > 0 pushes forward through both pictures, < 0 pulls back; `shift` moves the
    window sideways. Each image covers the whole path once: the first from rest at p = 0,
    the second arriving at rest at p = 1."""

    log_zoom: float
    shift: tuple[float, float]

    @property
    def max_zoom(self) -> float:
        return math.exp(abs(self.log_zoom))

    @property
    def padding(self) -> float:
        """Border (fraction of the image on each side) the widest window may reveal."""
        widest = 0.5 * self.max_zoom - 0.5  # the window at zoom exp(-|log_zoom|)
        return widest + max(abs(self.shift[0]), abs(self.shift[1])) + 0.02

    def first_at(self, p: float) -> tuple[float, float, float]:
        """(zoom, centre x, centre y) of the first image at clip position p."""
        return self._at(ease(p))

    def second_at(self, p: float) -> tuple[float, float, float]:
        return self._at(ease(p) - 1.0)

    def _at(self, s: float) -> tuple[float, float, float]:
        dx, dy = self.shift
        return math.exp(self.log_zoom * s), 0.5 + dx * s, 0.5 + dy * s


def choose_travel(prompt: str, seed: int, seconds: float) -> Travel:
    """The travel for an end frame: the move the prompt or the seed picks, as a path."""
    move = choose_move(prompt, seed, seconds)
    zoom = math.log1p(move.amount * TRAVEL_ZOOM_PER_AMOUNT)
    shift = move.amount * TRAVEL_SHIFT_PER_AMOUNT
    dx, dy = move.direction
    pans = {"pan_left": (-1.0, 0.0), "pan_right": (1.0, 0.0),
            "tilt_up": (0.0, -1.0), "tilt_down": (0.0, 1.0)}  # fmt: skip
    if move.kind in pans:
        px, py = pans[move.kind]
        return Travel(zoom * TRAVEL_PAN_ZOOM, (px * shift, py * shift))
    if move.kind == "pull_out":
        return Travel(-zoom, (0.0, 0.0))
    if move.kind == "drift":
        return Travel(zoom * 0.5, (dx * shift, dy * shift))
    # push_in: forward, drifting a little towards the seeded point
    return Travel(zoom, (dx * shift * PUSH_DRIFT / 2, dy * shift * PUSH_DRIFT / 2))
