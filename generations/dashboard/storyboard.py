"""Sequences (CONTRACT 6) on the dashboard: the team's sequences, the storyboard that makes
one (shot cards, edited in the page by static/js/storyboard.js), and a sequence's page: its
shots as they render, then the stitched video with a shot timeline (static/js/sequence.js).

The storyboard posts each shot as `shots-<n>-prompt`, `shots-<n>-duration`,
`shots-<n>-image` (a file) and `shots-<n>-image_url`, in order of `n`. Its Add, Remove and
Move buttons are submit buttons (`op`): without JavaScript the server edits the list and
shows the storyboard again; with it, the page does the same without a round trip. The
request is validated by core/sequences.plan, as on the API, and an error naming a shot's
field (`shots[1].duration`) is shown beside that field of that card."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generations import catalog
from generations.core import accounts, sequences, submissions
from generations.core.validation import MAX_PROMPT_CHARS
from generations.dashboard import paging
from generations.dashboard.access import (
    can_create,
    current_team,
    request_user,
    team_sequence_or_404,
)
from generations.dashboard.confirm import ask_first
from generations.dashboard.forms import StoryboardForm, upload_data_url
from generations.dashboard.library import EXPORT_FORMATS
from generations.errors import ApiError
from generations.models import Generation, Sequence
from generations.vocabulary import FINAL_STATUSES, I2V, STATUS_CHOICES, Status

SEQUENCES_PAGE_SIZE = 20
# Shot cards a new storyboard starts with.
STARTING_SHOTS = 2
# Shot numbers read from a post beyond this are ignored (plan refuses more than MAX_SHOTS).
MAX_POSTED_SHOTS = 2 * sequences.MAX_SHOTS
SHOT_FIELD = re.compile(r"^shots-(\d{1,3})-(prompt|duration|image_url|image)$")
# An error's field as plan names it: `shots[2]`, `shots[2].duration`.
PLAN_FIELD = re.compile(r"^shots\[(\d+)\](?:\.(\w+))?$")
# A shot's own fields on its card; plan's names for them.
CARD_FIELDS = {"prompt": "prompt", "duration": "duration", "image_url": "image"}
LABELS = dict(STATUS_CHOICES)


@dataclass
class ShotDraft:
    """One shot card as the person filled it in (kept as typed, to show again)."""

    prompt: str = ""
    duration: str = ""
    image_url: str = ""
    upload: UploadedFile | None = None
    # Beside which part of the card: "prompt", "duration", "image", or "shot" (the card).
    errors: dict[str, list[str]] = field(default_factory=dict)
    # With `continue`, every shot after the first starts on the last frame of the one
    # before: its image field is hidden.
    follows: bool = False

    def add_error(self, where: str, message: str) -> None:
        self.errors.setdefault(where, []).append(message)

    def request(self) -> dict[str, object]:
        """The shot as plan takes it: {"prompt", "duration", "image_url"?}."""
        shot: dict[str, object] = {"prompt": self.prompt}
        text = self.duration.strip()
        if text:
            shot["duration"] = int(text) if text.isdigit() else text
        if self.upload is not None:
            shot["image_url"] = upload_data_url(self.upload)
        elif self.image_url.strip():
            shot["image_url"] = self.image_url.strip()
        return shot


def drafts_from(request: HttpRequest) -> list[ShotDraft]:
    """The posted shot cards, in order of their numbers."""
    found: dict[int, ShotDraft] = {}
    for source in (request.POST, request.FILES):
        for key in source:
            match = SHOT_FIELD.match(key)
            if match is None or int(match[1]) >= MAX_POSTED_SHOTS:
                continue
            draft = found.setdefault(int(match[1]), ShotDraft())
            if match[2] == "image":
                draft.upload = request.FILES.get(key)
            else:
                setattr(draft, match[2], str(request.POST.get(key, "")))
    return [found[n] for n in sorted(found)]


def _apply(op: str, drafts: list[ShotDraft], duration: int) -> list[ShotDraft]:
    """An Add, Remove or Move button pressed without JavaScript: the list edited."""
    name, _, number = op.partition("-")
    index = int(number) if number.isdigit() else -1
    if name == "add" and len(drafts) < sequences.MAX_SHOTS:
        drafts.append(ShotDraft(duration=str(duration)))
    elif 0 <= index < len(drafts):
        if name == "remove" and len(drafts) > sequences.MIN_SHOTS:
            drafts.pop(index)
        elif name == "up" and index > 0:
            drafts[index - 1], drafts[index] = drafts[index], drafts[index - 1]
        elif name == "down" and index < len(drafts) - 1:
            drafts[index + 1], drafts[index] = drafts[index], drafts[index + 1]
    return drafts


def _render_storyboard(
    request: HttpRequest,
    form: StoryboardForm,
    drafts: list[ShotDraft],
    status: int = 200,
    *,
    shots_errors: list[str] | None = None,
) -> HttpResponse:
    transition = str(form["transition"].value() or Sequence.Transition.CUT)
    for index, draft in enumerate(drafts):
        draft.follows = transition == Sequence.Transition.CONTINUE and index > 0
    return render(
        request,
        "storyboard.html",
        {
            **_model_context(form),
            "form": form,
            "shots": drafts,
            "shots_errors": shots_errors or [],
            "min_shots": sequences.MIN_SHOTS,
            "max_shots": sequences.MAX_SHOTS,
            "max_total_s": sequences.MAX_TOTAL_S,
            "crossfade_s": sequences.CROSSFADE_S,
            "max_prompt": MAX_PROMPT_CHARS,
            "can_create": can_create(request, current_team(request)),
            "i2v_models": [m.key for m in form.available_models if I2V in m.modes],
        },
        status=status,
    )


def _model_context(form: StoryboardForm) -> dict[str, Any]:
    info: catalog.ModelInfo = form.model_info
    durations = info.durations
    if len(durations) > 2 and durations == tuple(range(durations[0], durations[-1] + 1)):
        lengths = f"{durations[0]}–{durations[-1]} s"
    else:
        lengths = " or ".join(str(d) for d in durations) + " s"
    return {"model_info": info, "shot_lengths": lengths}


@login_required
@require_http_methods(["GET", "POST"])
def sequence_new(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        form = StoryboardForm(model_key=request.GET.get("model"))
        if request.headers.get("HX-Request") == "true":
            # The model changed: its sizes and shot lengths (the picker's htmx swap).
            context = {**_model_context(form), "form": form}
            return render(request, "storyboard.html#model-fields", context)
        default = str(form.model_info.default_duration)
        drafts = [ShotDraft(duration=default) for _ in range(STARTING_SHOTS)]
        return _render_storyboard(request, form, drafts)

    drafts = drafts_from(request)
    op = request.POST.get("op", "render")
    if op != "render":
        edited = StoryboardForm(initial=request.POST.dict(), model_key=request.POST.get("model"))
        edited.initial["add_audio"] = bool(request.POST.get("add_audio"))
        drafts = _apply(op, drafts, edited.model_info.default_duration)
        return _render_storyboard(request, edited, drafts)

    form = StoryboardForm(request.POST)
    if not form.is_valid():
        return _render_storyboard(request, form, drafts, status=400)
    team, user = current_team(request), request_user(request)
    try:
        accounts.require_role(team=team, user=user, roles=accounts.CREATORS,
                              action="rendering sequences")  # fmt: skip
        for index, draft in enumerate(drafts):
            if draft.upload is not None and draft.image_url.strip():
                raise ApiError(400, "invalid_parameter", "Give an image file or an image URL, "
                               "not both.", f"shots[{index}].image_url")  # fmt: skip
        data = {**form.request_data(), "shots": [draft.request() for draft in drafts]}
        plan = sequences.plan(data, test_mode=False)
        images = [
            submissions.input_image_load(spec.image_url, f"shots[{index}].image_url")
            if spec.image_url
            else None
            for index, spec in enumerate(plan.specs)
        ]
        seq, _, _ = sequences.sequence_create(
            team=team,
            user=user,
            plan=plan,
            images=images,
            source="dashboard",
            public_base=f"{request.scheme}://{request.get_host()}",
            title=form.cleaned_data.get("title") or "",
        )
    except ApiError as exc:
        shots_errors = _place_error(exc, form, drafts)
        return _render_storyboard(request, form, drafts, exc.status, shots_errors=shots_errors)
    return redirect("sequence", sequence_id=seq.sequence_id)


def _place_error(exc: ApiError, form: StoryboardForm, drafts: list[ShotDraft]) -> list[str]:
    """Put plan's error beside the field it names: a shot's field on its card, a
    sequence setting beside that setting; what names the shot list as a whole is
    returned, to show above the cards."""
    match = PLAN_FIELD.match(exc.field or "")
    if match is not None and int(match[1]) < len(drafts):
        where = CARD_FIELDS.get(match[2] or "", "shot")
        drafts[int(match[1])].add_error(where, exc.message)
        return []
    if exc.field == "shots":
        return [exc.message]
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    return []


@login_required
@require_GET
def sequence_list(request: HttpRequest) -> HttpResponse:
    rows = (
        Sequence.objects.filter(team=current_team(request))
        .select_related("user")
        .annotate(
            n_shots=Count("shots"),
            n_done=Count("shots", filter=Q(shots__status=Status.COMPLETED)),
        )
    )
    page, pager = paging.page(request, rows, ("-created_at", "-pk"), SEQUENCES_PAGE_SIZE)
    return render(
        request,
        "sequences.html",
        {"page": page, "pager": pager, "can_create": can_create(request, current_team(request))},
    )


def shown_status(seq: Sequence, shots: list[Generation]) -> str:
    """The sequence's status as the page shows it: in progress as soon as a shot is
    (the sequence's own row moves when a shot ends), as the API says it."""
    if seq.status == Status.PENDING and any(s.status != Status.PENDING for s in shots):
        return str(Status.IN_PROGRESS)
    return str(seq.status)


@dataclass(frozen=True)
class TimelineShot:
    """One shot on the finished video's timeline: where it starts and ends (seconds)."""

    number: int
    start: float
    end: float
    shot: Generation


def timeline(seq: Sequence, shots: list[Generation]) -> list[TimelineShot]:
    starts = [float(s) for s in seq.markers][: len(shots)]
    ends = [*starts[1:], seq.duration]
    return [
        TimelineShot(number=i + 1, start=start, end=end, shot=shots[i])
        for i, (start, end) in enumerate(zip(starts, ends, strict=True))
    ]


@login_required
@require_GET
def sequence(request: HttpRequest, sequence_id: str) -> HttpResponse:
    seq = team_sequence_or_404(request, sequence_id)
    shots = list(seq.shots.order_by("shot_index"))
    status = shown_status(seq, shots)
    htmx = request.headers.get("HX-Request") == "true"
    context = {
        "seq": seq,
        "shots": shots,
        "status": status,
        "status_label": LABELS.get(status, status),
        "final": status in FINAL_STATUSES,
        "progress": sequences.progress_of(seq, shots),
        "timeline": timeline(seq, shots) if seq.status == Status.COMPLETED else [],
        "can_create": can_create(request, seq.team),
        "export_formats": EXPORT_FORMATS,
    }
    return render(request, "sequence.html#status" if htmx else "sequence.html", context)


@login_required
@require_POST
def sequence_cancel(request: HttpRequest, sequence_id: str) -> HttpResponse:
    seq = team_sequence_or_404(request, sequence_id)
    try:
        accounts.require_role(team=seq.team, user=request_user(request),
                              roles=accounts.CREATORS, action="canceling sequences")  # fmt: skip
    except ApiError as exc:
        messages.error(request, exc.message)
        return redirect("sequence", sequence_id=seq.sequence_id)
    if seq.is_final:
        messages.info(request, f"This sequence is already {seq.get_status_display().lower()}.")
        return redirect("sequence", sequence_id=seq.sequence_id)
    asked = ask_first(request, "Cancel this sequence? The shots that have not finished are "
                               "canceled and refunded.", "Cancel the sequence")  # fmt: skip
    if asked is not None:
        return asked
    canceled = sequences.sequence_cancel(sequence=seq)
    messages.info(request, f"Canceled; {canceled} shots stopped, each refunded.")
    return redirect("sequence", sequence_id=seq.sequence_id)
