"""Sequences: 2 to 20 shots, each an ordinary generation, stitched into one video with a
transition between neighbours (CONTRACT 6). Every surface that makes sequences (the API,
the storyboard page) comes here.

- `cut`: the shots back to back; `crossfade`: neighbours overlap by CROSSFADE_S, the total
  shortened by that much per join; `continue`: each shot starts on the previous shot's last
  frame (image-to-video), so the shots run one after another.
- Shots are admitted as a whole (each charged as a generation; the stitch is free). With
  `cut` and `crossfade` they wait in their team's line like any generation and render in
  parallel; with `continue` each later shot is held (fairshare.HELD) until the shot before
  it completes, then joins the line.
- When a shot becomes final, lifecycle queues the sequence's next step (tasks/shots.py):
  `advance` here says what it is. A failed shot fails the sequence, cancels (and refunds)
  the shots that had not finished, and the sequence says which shot failed.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from generations import catalog
from generations.core import fairshare, lifecycle, submissions
from generations.core.submissions import InputImage
from generations.core.validation import build_spec
from generations.errors import ApiError, invalid
from generations.models import ApiKey, Generation, Sequence, Team, User
from generations.rendering import registry
from generations.spec import GenerationSpec
from generations.vocabulary import FINAL_STATUSES, I2V, Status

MIN_SHOTS = 2
MAX_SHOTS = 20
MAX_TOTAL_S = 120
CROSSFADE_S = 0.5
TRANSITIONS = tuple(Sequence.Transition.values)
# What a shot may set for itself; the rest (model, size, audio, style) is the sequence's.
SHOT_FIELDS = ("prompt", "duration", "image_url", "seed", "negative_prompt", "camera_fixed")
COMMON_FIELDS = (
    "model",
    "resolution",
    "aspect_ratio",
    "add_audio",
    "audio_prompt",
    "style",
    "negative_prompt",
    "seed",
    "camera_fixed",
    "enable_safety_checker",
)
# Share of a sequence's progress spent on its shots; the stitch is the rest.
SHOTS_PROGRESS_SHARE = 95


@dataclass(frozen=True)
class SequencePlan:
    """A sequence request, validated: one spec per shot in order, the transition."""

    specs: list[GenerationSpec]
    transition: str
    model: catalog.ModelInfo

    @property
    def duration(self) -> float:
        """Seconds of the stitched video."""
        total = sum(spec.num_frames for spec in self.specs) / self.specs[0].fps
        if self.transition == Sequence.Transition.CROSSFADE:
            total -= overlap_frames(self.specs[0].fps) * (len(self.specs) - 1) / self.specs[0].fps
        return total


def overlap_frames(fps: int) -> int:
    """Frames two neighbours share in a crossfade."""
    return round(CROSSFADE_S * fps)


def plan(data: Mapping[str, Any], *, test_mode: bool) -> SequencePlan:
    """Validate a sequence request; ApiError(400) names the first field at fault
    (`shots[2].duration` for a shot's own)."""
    if not isinstance(data, Mapping):
        raise ApiError(400, "invalid_request", "The request body must be a JSON object.")
    transition = data.get("transition") or Sequence.Transition.CUT
    if transition not in TRANSITIONS:
        raise invalid("transition", f"`transition` must be one of {', '.join(TRANSITIONS)}.")
    shots = data.get("shots")
    if not isinstance(shots, list):
        raise invalid("shots", '`shots` must be a list of shots ({"prompt", "duration"}).')
    if not MIN_SHOTS <= len(shots) <= MAX_SHOTS:
        raise invalid(
            "shots",
            f"A sequence has {MIN_SHOTS} to {MAX_SHOTS} shots ({len(shots)} given).",
            "too_many_shots" if shots else "invalid_parameter",
        )
    common = {name: data[name] for name in COMMON_FIELDS if name in data}
    specs: list[GenerationSpec] = []
    for index, shot in enumerate(shots):
        specs.append(_shot_spec(index, shot, common, transition, test_mode))
    model = catalog.get_model(specs[0].model)
    assert model is not None  # build_spec checked it
    result = SequencePlan(specs=specs, transition=str(transition), model=model)
    if result.duration > MAX_TOTAL_S:
        raise invalid(
            "shots",
            f"The shots last {result.duration:g} s in all; a sequence lasts "
            f"at most {MAX_TOTAL_S} s.",
            "sequence_too_long",
        )
    if transition == Sequence.Transition.CROSSFADE:
        overlap = overlap_frames(specs[0].fps)
        for index, spec in enumerate(specs):
            # A middle shot fades in and out: its two overlaps may meet, not cross.
            need = overlap * ((index > 0) + (index < len(specs) - 1))
            if spec.num_frames < need:
                raise invalid(
                    f"shots[{index}].duration",
                    f"A crossfade overlaps each join by {CROSSFADE_S:g} s: this shot needs "
                    f"at least {need / spec.fps:g} s.",
                )
    return result


def _shot_spec(
    index: int, shot: object, common: dict[str, Any], transition: object, test_mode: bool
) -> GenerationSpec:
    where = f"shots[{index}]"
    if not isinstance(shot, Mapping):
        raise invalid(where, f"`{where}` must be an object with a `prompt` and a `duration`.")
    unknown = sorted(set(shot) - set(SHOT_FIELDS))
    if unknown:
        raise invalid(
            f"{where}.{unknown[0]}",
            f"A shot takes {', '.join(SHOT_FIELDS)}; "
            f"`{unknown[0]}` is the sequence's to set, or unknown.",
        )
    follows = transition == Sequence.Transition.CONTINUE and index > 0
    if follows and shot.get("image_url"):
        raise invalid(
            f"{where}.image_url",
            "With `continue` every shot after the first starts "
            "on the previous shot's last frame: leave out its `image_url`.",
        )
    try:
        spec = build_spec({**common, **shot}, test_mode=test_mode)
    except ApiError as exc:
        if exc.field in SHOT_FIELDS or exc.field == "num_frames":
            raise ApiError(exc.status, exc.code, exc.message, f"{where}.{exc.field}") from None
        raise
    if follows:
        model = catalog.get_model(spec.model)
        assert model is not None
        if registry.engine_name_for(model, test_mode=test_mode, mode=I2V) is None:
            raise invalid(
                "transition",
                f"Model {model.key!r} cannot start a shot on a frame "
                "here (no image-to-video): use `cut` or `crossfade`.",
            )
        spec = dataclasses.replace(spec, mode=I2V)
    return spec


def sequence_create(
    *,
    team: Team,
    user: User,
    plan: SequencePlan,
    images: Seq[InputImage | None],
    api_key: ApiKey | None = None,
    source: str = "api",
    public_base: str = "",
    title: str = "",
) -> tuple[Sequence, list[Generation], int]:
    """Admit every shot or none (429/402 with nothing created): (sequence, shots, usage)."""
    test_mode = bool(api_key and api_key.is_test)
    specs = plan.specs
    submissions.screen(team=team, user=user, specs=list(specs), test_mode=test_mode)
    first = specs[0]
    sequence = Sequence(
        team=team,
        user=user,
        api_key=api_key,
        source=source,
        test_mode=test_mode,
        title=(title or first.prompt)[:200],
        model=first.model,
        resolution=first.resolution,
        aspect_ratio=first.aspect_ratio,
        width=first.width,
        height=first.height,
        fps=first.fps,
        transition=plan.transition,
        add_audio=first.add_audio,
        public_base=public_base[:300],
    )
    items = []
    for index, spec in enumerate(specs):
        gen, charged = submissions.prepare(
            team=team,
            user=user,
            spec=spec,
            api_key=api_key,
            source=source,
            public_base=public_base,
        )
        gen.sequence, gen.shot_index = sequence, index
        if plan.transition == Sequence.Transition.CONTINUE and index > 0:
            gen.queue = fairshare.HELD  # starts once the shot before it completes
        items.append((gen, charged))
    usage = submissions.admit(
        team=team, user=user, items=items, images=list(images), sequence=sequence
    )
    return sequence, [gen for gen, _ in items], usage


def sequence_cancel(*, sequence: Sequence) -> int:
    """Cancel every shot that has not finished (each refunded) and the sequence with them;
    how many shots were canceled or asked to stop."""
    canceled = 0
    for gen in sequence.shots.exclude(status__in=FINAL_STATUSES).order_by("shot_index"):
        canceled += lifecycle.cancel(generation=gen)
    Sequence.objects.filter(pk=sequence.pk).exclude(status__in=FINAL_STATUSES).update(
        status=Status.CANCELED,
        finished_at=timezone.now(),
        error_code="canceled",
        error_message="The sequence was canceled.",
    )
    return canceled


# --- its course ----------------------------------------------------------------------------


STITCH = "stitch"


def advance(sequence: Sequence) -> str:
    """The sequence's next step after one of its shots became final: fail it (a shot
    failed or was canceled), start the next held shot (`continue`), or STITCH (every shot
    completed). Safe to run twice: each move is conditional."""
    if sequence.is_final:
        return "final"
    shots = list(sequence.shots.order_by("shot_index"))
    broken = next((s for s in shots if s.status in (Status.FAILED, Status.CANCELED)), None)
    if broken is not None:
        return _break(sequence, shots, broken)
    if all(s.status == Status.COMPLETED for s in shots):
        return STITCH
    if sequence.transition == Sequence.Transition.CONTINUE:
        for before, shot in zip(shots, shots[1:], strict=False):
            if before.status == Status.COMPLETED and shot.queue == fairshare.HELD:
                model = catalog.get_model(shot.model)
                queue = submissions.queue_for(model, test_mode=shot.test_mode, mode=shot.mode)
                fairshare.unhold(generation=shot, queue=queue)
    Sequence.objects.filter(pk=sequence.pk, status=Status.PENDING).update(status=Status.IN_PROGRESS)
    return "waiting"


def _break(sequence: Sequence, shots: list[Generation], broken: Generation) -> str:
    number = (broken.shot_index or 0) + 1
    if broken.status == Status.FAILED:
        status, code = Status.FAILED, "shot_failed"
        message = f"Shot {number} failed ({broken.error_code}): {broken.error_message}"
    else:
        status, code = Status.CANCELED, "canceled"
        message = f"Shot {number} was canceled."
    for shot in shots:
        if shot.status not in FINAL_STATUSES:
            lifecycle.cancel(generation=shot)
    with transaction.atomic():
        Sequence.objects.filter(pk=sequence.pk).exclude(status__in=FINAL_STATUSES).update(
            status=status,
            finished_at=timezone.now(),
            error_code=code,
            error_message=message[:2000],
            failed_shot=broken.shot_index,
        )
    return str(status)


def stitch_claim(sequence: Sequence) -> str | None:
    """Take the stitch (one run at a time; a run silent for VIDEOGEN_STALE_AFTER seconds
    loses it): the run's token, or None."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.VIDEOGEN_STALE_AFTER)
    token = uuid.uuid4().hex
    taken = (
        Sequence.objects.filter(pk=sequence.pk, status__in=(Status.PENDING, Status.IN_PROGRESS))
        .filter(Q(stitch_claim="") | Q(stitch_started_at__lt=stale))
        .update(status=Status.IN_PROGRESS, stitch_claim=token, stitch_started_at=now)
    )
    return token if taken else None


def stitch_heartbeat(sequence: Sequence, claim: str) -> bool:
    """Still ours: push the stale time on (False once another run took it over)."""
    return bool(
        Sequence.objects.filter(pk=sequence.pk, stitch_claim=claim).update(
            stitch_started_at=timezone.now()
        )
    )


def stitch_complete(sequence: Sequence, claim: str, **results: object) -> bool:
    return bool(
        Sequence.objects.filter(
            pk=sequence.pk, stitch_claim=claim, status=Status.IN_PROGRESS
        ).update(status=Status.COMPLETED, finished_at=timezone.now(), progress=100, **results)
    )


def stitch_fail(sequence: Sequence, claim: str, message: str) -> bool:
    return bool(
        Sequence.objects.filter(
            pk=sequence.pk, stitch_claim=claim, status=Status.IN_PROGRESS
        ).update(
            status=Status.FAILED,
            finished_at=timezone.now(),
            error_code="stitch_failed",
            error_message=message[:2000],
        )
    )


def stalled(now: datetime | None = None) -> list[int]:
    """Sequences that stand still (the reaper moves them on): not final, no shot handed to
    a worker or running, and no stitch running (or one gone silent). Their next step was
    lost (a broker that refused it, a worker killed mid-stitch)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.VIDEOGEN_STALE_AFTER)
    moving = Generation.objects.filter(
        sequence=OuterRef("pk"), status__in=(Status.IN_QUEUE, Status.IN_PROGRESS)
    )
    waiting = Generation.objects.filter(sequence=OuterRef("pk"), status=Status.PENDING).exclude(
        queue=fairshare.HELD
    )
    candidates = (
        Sequence.objects.filter(status__in=(Status.PENDING, Status.IN_PROGRESS))
        .filter(Q(stitch_claim="") | Q(stitch_started_at__lt=stale))
        .filter(created_at__lt=now - timedelta(seconds=30))
        .exclude(Exists(moving))
        .exclude(Exists(waiting))
    )
    return list(candidates.values_list("pk", flat=True)[:100])


def progress_of(sequence: Sequence, shots: Seq[Generation]) -> int:
    """0-100: the shots' progress, then the stitch's share."""
    if sequence.status == Status.COMPLETED:
        return 100
    if not shots:
        return 0
    done = sum(100 if s.status == Status.COMPLETED else s.progress for s in shots)
    return int(SHOTS_PROGRESS_SHARE * done / (100 * len(shots)))
