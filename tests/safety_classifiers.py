"""Image classifiers for the safety-checker tests (plugged in by dotted path)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from generations.core.safety import Verdict

seen: list[int] = []


def block_everything(frames: Sequence[np.ndarray[Any, Any]]) -> Verdict:
    seen.append(len(frames))
    return Verdict(True, "test_category", "every frame")


def allow_everything(frames: Sequence[np.ndarray[Any, Any]]) -> Verdict:
    seen.append(len(frames))
    return Verdict(False)
