"""Sequences under /api/v1/sequences (CONTRACT 6), a finished sequence's public files, and
the exports of a finished video or sequence (`GET /api/v1/video/{id}?format=gif|webm|loop`).
The VideoGenAPI surface's error shape and authentication."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.urls import reverse

from generations.api.common import (
    api_endpoint,
    authenticate,
    json_body,
    public_url,
    videogen_error,
    wire_time,
)
from generations.api.idempotency import idempotent
from generations.core import exports, quotas, sequences, submissions
from generations.errors import ApiError, invalid
from generations.models import ApiKey, Export, Generation, Sequence
from generations.vocabulary import FINAL_STATUSES, Status
from generations.web.files import serve_file

endpoint = api_endpoint
EXPORT_TYPES = {"gif": "image/gif", "webm": "video/webm", "loop": "video/mp4"}
EXPORT_SUFFIX = {"gif": "gif", "webm": "webm", "loop": "loop.mp4"}


# --- sequences -----------------------------------------------------------------------------


def _team_sequence(key: ApiKey, sequence_id: str) -> Sequence:
    found = Sequence.objects.filter(team_id=key.team_id, sequence_id=sequence_id).first()
    if found is None:
        raise ApiError(404, "not_found", f"No sequence {sequence_id!r} in this team.")
    return found


def sequence_body(request: HttpRequest, seq: Sequence) -> dict[str, Any]:
    shots = list(seq.shots.order_by("shot_index"))
    status = seq.status
    if status == Status.PENDING and any(s.status != Status.PENDING for s in shots):
        status = Status.IN_PROGRESS
    body: dict[str, Any] = {
        "success": True,
        "sequence_id": seq.sequence_id,
        "status": status,
        "progress": sequences.progress_of(seq, shots),
        "model": seq.model,
        "resolution": seq.resolution,
        "aspect_ratio": seq.aspect_ratio,
        "width": seq.width,
        "height": seq.height,
        "fps": seq.fps,
        "transition": seq.transition,
        "created_at": wire_time(seq.created_at),
        "completed_at": wire_time(seq.finished_at) if status == Status.COMPLETED else None,
        "status_url": public_url(request, reverse("api-sequence", args=[seq.sequence_id])),
        "shots": [
            {
                "index": shot.shot_index,
                "generation_id": shot.generation_id,
                "prompt": shot.prompt,
                "duration": shot.duration,
                "status": shot.status,
                "progress": 100 if shot.status == Status.COMPLETED else shot.progress,
                **({"start": seq.markers[i]} if i < len(seq.markers) else {}),
            }
            for i, shot in enumerate(shots)
        ],
    }
    if status == Status.COMPLETED and seq.video:
        body["duration"] = round(seq.duration, 3)
        body["frames"] = seq.num_frames
        body["video_url"] = public_url(request, reverse("api-video", args=[seq.sequence_id]))
        body["thumbnail_url"] = public_url(
            request, reverse("api-thumbnail", args=[seq.sequence_id])
        )
        body["preview_url"] = public_url(request, reverse("api-preview", args=[seq.sequence_id]))
        body["markers"] = seq.markers
    if status in (Status.FAILED, Status.CANCELED):
        body["error"] = {"code": seq.error_code, "message": seq.error_message}
        if seq.failed_shot is not None:
            body["error"]["shot"] = seq.failed_shot
    if seq.test_mode:
        body["test_mode"] = True
    return body


@endpoint(("GET", "POST"), videogen_error)
def sequences_view(request: HttpRequest) -> HttpResponseBase:
    """POST: make a sequence. GET: the team's sequences, newest first (50)."""
    key = authenticate(request)
    if request.method == "GET":
        rows = Sequence.objects.filter(team_id=key.team_id).order_by("-created_at", "-pk")[:50]
        return JsonResponse(
            {
                "success": True,
                "sequences": [
                    {
                        "sequence_id": s.sequence_id,
                        "status": s.status,
                        "title": s.title,
                        "transition": s.transition,
                        "created_at": wire_time(s.created_at),
                    }
                    for s in rows
                ],
            }
        )
    data = json_body(request)
    usage: list[int] = []

    def create() -> Sequence:
        plan = sequences.plan(data, test_mode=key.is_test)
        images = [
            submissions.input_image_load(url, f"shots[{i}].image_url")
            if (url := spec.image_url)
            else None
            for i, spec in enumerate(plan.specs)
        ]
        seq, _, used = sequences.sequence_create(
            team=key.team,
            user=key.user,
            api_key=key,
            plan=plan,
            images=images,
            source="api",
            public_base=public_url(request, ""),
            title=str(data.get("title") or "")[:200],
        )
        usage.append(used)
        return seq

    def respond(seq: Sequence) -> HttpResponse:
        shots = list(seq.shots.order_by("shot_index"))
        body: dict[str, Any] = {
            "success": True,
            "sequence_id": seq.sequence_id,
            "generations": [gen.generation_id for gen in shots],
            "status_url": public_url(request, reverse("api-sequence", args=[seq.sequence_id])),
            "duration": round(sequences.planned_duration(seq, shots), 3),
            "usage": {
                "current_month_usage": usage[0] if usage else quotas.month_usage(key.team),
                "monthly_limit": key.team.monthly_limit,
            },
        }
        if seq.test_mode:
            body["test_mode"] = True
        return JsonResponse(body, status=200)

    return idempotent(request, key, create, respond)


@endpoint(("GET",), videogen_error)
def sequence(request: HttpRequest, sequence_id: str) -> HttpResponse:
    key = authenticate(request)
    return JsonResponse(sequence_body(request, _team_sequence(key, sequence_id)))


@endpoint(("POST",), videogen_error)
def sequence_cancel(request: HttpRequest, sequence_id: str) -> HttpResponse:
    key = authenticate(request)
    seq = _team_sequence(key, sequence_id)
    if seq.status in FINAL_STATUSES:
        raise ApiError(409, "already_final", f"This sequence is already {seq.status}.")
    sequences.sequence_cancel(sequence=seq)
    return JsonResponse(sequence_body(request, _team_sequence(key, sequence_id)))


# --- public media: a sequence's files, and exports -------------------------------------------


def completed_sequence(sequence_id: str) -> Sequence:
    seq = Sequence.objects.filter(sequence_id=sequence_id, status=Status.COMPLETED).first()
    if seq is None or not seq.video:
        raise ApiError(404, "not_found", "No finished video with this id.")
    return seq


def export_response(
    request: HttpRequest,
    fmt: str,
    *,
    generation: Generation | None = None,
    sequence: Sequence | None = None,
) -> HttpResponseBase:
    """The export when ready; 202 with Retry-After while a worker makes it."""
    if fmt not in EXPORT_TYPES:
        raise invalid("format", f"`format` must be one of {', '.join(EXPORT_TYPES)}.")
    made = exports.export_request(generation=generation, sequence=sequence, fmt=fmt)
    owner_id = generation.generation_id if generation else sequence.sequence_id  # type: ignore[union-attr]
    if made.state == Export.State.FAILED:
        raise ApiError(422, "export_failed", made.error_message or "The export failed.", "format")
    if made.state != Export.State.READY or not made.file:
        response = JsonResponse(
            {
                "success": True,
                "status": "processing",
                "format": fmt,
                "message": f"The {fmt} export is being made; ask again shortly.",
            },
            status=202,
        )
        response["Retry-After"] = str(exports.RETRY_AFTER_S)
        return response
    return serve_file(
        request,
        made.file,
        EXPORT_TYPES[fmt],
        etag=f"{owner_id}-{fmt}",
        download_name=f"{owner_id}.{EXPORT_SUFFIX[fmt]}",
    )
