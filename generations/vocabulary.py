"""The words every layer shares, defined once: the two modes of a generation and the
statuses of its lifecycle. Plain enums (no Django), so that the value types, the engines and
the models all use the same members; `str` subclasses, so they compare equal to the strings
stored in the database and sent on the wire."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Mode(StrEnum):
    """What a generation starts from: a prompt alone, or a prompt and a first frame."""

    TEXT = "text-to-video"
    IMAGE = "image-to-video"


T2V = Mode.TEXT
I2V = Mode.IMAGE
MODES: tuple[Mode, ...] = tuple(Mode)
# The labels Django shows for them (model field choices; unchanged since migration 0001).
MODE_CHOICES = [(Mode.TEXT.value, "Text"), (Mode.IMAGE.value, "Image")]


class Status(StrEnum):
    """A generation's place in its lifecycle. generations/core/lifecycle.py owns every move
    from one to another (TRANSITIONS there)."""

    PENDING = "pending"  # saved, waiting for its turn (core/fairshare.py hands it over)
    IN_QUEUE = "in_queue"  # waiting in the broker for a worker
    IN_PROGRESS = "in_progress"  # claimed by a run (rendering, or waiting on a provider)
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


WAITING_STATUSES = frozenset({Status.PENDING, Status.IN_QUEUE})
FINAL_STATUSES = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELED})
# The others, spelled out as a list: an index on status serves an IN list, not a NOT IN.
NOT_FINAL_STATUSES = (Status.PENDING, Status.IN_QUEUE, Status.IN_PROGRESS)
STATUS_CHOICES = [(s.value, s.name.replace("_", " ").title()) for s in Status]


class Lane(IntEnum):
    """Within a team's waiting generations, who goes first (core/fairshare.py): a single
    generation someone is waiting for at a screen before the items of a batch."""

    INTERACTIVE = 0
    BATCH = 1
