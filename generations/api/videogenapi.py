"""The VideoGenAPI-compatible surface under /api/v1/ (CONTRACT 3a)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.urls import reverse

from generations import catalog
from generations.api import sequences
from generations.api.common import (
    api_endpoint,
    authenticate,
    json_body,
    page_param,
    public_url,
    submit,
    videogen_error,
    wire_time,
)
from generations.api.idempotency import idempotent
from generations.core import lifecycle, quotas, rollups
from generations.db import keyset
from generations.db.prepared import PreparedQuery
from generations.errors import ApiError
from generations.models import ApiKey, Generation, Sequence, Team
from generations.rendering import registry
from generations.rendering.hosted.audio_routes import in_audio_phase
from generations.rendering.hosted.state import HostedState
from generations.routing import aliases, failover
from generations.web.files import serve_file

endpoint = api_endpoint
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
SUBMITTED = "Video generation request submitted successfully."
SEQUENCE_PREFIX = "seq_"


def model_summary(key: str) -> dict[str, str]:
    info = catalog.get_model(key)
    if info is None:
        return {"key": key, "name": key, "provider": "unknown"}
    return {"key": info.key, "name": info.name, "provider": info.provider}


def model_entry(info: catalog.ModelInfo) -> dict[str, Any]:
    return {
        "key": info.key,
        "name": info.name,
        "provider": info.provider,
        "description": info.description,
        "modes": list(info.modes),
        "resolutions": list(info.resolutions),
        "durations": {
            "min": info.min_duration,
            "max": info.max_duration,
            "allowed": list(info.durations),
        },
        "default_duration": info.default_duration,
        "default_resolution": info.default_resolution,
        "aspect_ratios": list(info.aspect_ratios),
        "fps": info.fps,
        "premium": info.premium,
        "available": registry.is_available(info),
        "unavailable_reason": registry.unavailable_reason(info),
        "engine": registry.engine_name_for(info, test_mode=False),
        "available_modes": registry.available_modes(info),
        "capabilities": list(info.capabilities),
        "procedural": info.procedural,
        "notes": info.notes,
        **({"parameters": parameters} if (parameters := registry.parameter_use(info)) else {}),
        # VIDEOGEN_MODEL_ALIASES: the names served by this model, and, when this model's
        # own key is an alias, the model that serves requests for it instead.
        "aliases": aliases.current().of(info.key),
        **({"alias_of": target} if (target := aliases.current().targets.get(info.key)) else {}),
    }


# The columns generation_body reads.
BODY_FIELDS = (
    "generation_id", "request_id", "status", "progress", "mode", "model", "prompt", "duration",
    "resolution", "style", "fps", "aspect_ratio", "width", "height", "seed", "camera_fixed",
    "add_audio", "created_at", "started_at", "finished_at", "image_url", "error_code",
    "error_message", "test_mode", "preview", "spritesheet", "files_purged_at", "engine_handle",
    "end_image_url", "extended_from", "sequence", "shot_index", "requested_model", "audio_source",
    "engine", "route_attempts", "est_usd", "cost_usd", "cost_source",
)  # fmt: skip


# What polling clients ask for again and again: compiled once (see prepared.py).
_TEAM_GENERATION = PreparedQuery(
    lambda team_id, generation_id: Generation.objects.only(*BODY_FIELDS).filter(
        team_id=team_id, generation_id=generation_id
    ),
    team_id=-(2**40),
    generation_id="\x00generation_id",
)


def generation_body(request: HttpRequest, gen: Generation) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": True,
        "generation_id": gen.generation_id,
        "request_id": str(gen.request_id),
        "status": gen.status,
        "progress": gen.progress,
        "type": gen.mode,
        "model": model_summary(gen.model),  # the model that serves it (an alias's target)
        "prompt": gen.prompt,
        "duration": gen.duration,
        "resolution": gen.resolution,
        "style": gen.style,
        "fps": gen.fps,
        "aspect_ratio": gen.aspect_ratio,
        "width": gen.width,
        "height": gen.height,
        "seed": gen.seed,
        "camera_fixed": gen.camera_fixed,
        "add_audio": gen.add_audio,
        "created_at": wire_time(gen.created_at),
        "processing_time": gen.processing_time,
        "completed_at": wire_time(gen.finished_at)
        if gen.status == Generation.Status.COMPLETED
        else None,
        "status_url": public_url(request, reverse("api-status", args=[gen.generation_id])),
    }
    if gen.requested_model:
        body["requested_model"] = gen.requested_model  # the alias the request named
    if gen.image_url:
        body["image_url"] = gen.image_url
    if gen.end_image_url:
        body["end_image_url"] = gen.end_image_url
    # A page of the list reads the source with the row; a status poll asks for its id alone.
    source = gen.extended_from if Generation.extended_from.is_cached(gen) else None
    if source is not None:
        body["extended_from"] = source.generation_id
    elif gen.extended_from_id is not None:
        source_id = Generation.objects.filter(pk=gen.extended_from_id).values_list(
            "generation_id", flat=True
        )
        body["extended_from"] = source_id.first()
    if gen.sequence is not None:
        body["sequence_id"] = gen.sequence.sequence_id
        body["shot_index"] = gen.shot_index
    # The hosted provider serving it (after any failover), and every provider it tried.
    body["provider"] = failover.serving_provider(gen)
    body["attempts"] = failover.public_attempts(gen)
    if gen.est_usd is not None or gen.cost_usd is not None:
        body["cost"] = {  # US dollars: reserved at submit, then what it cost
            "estimated_usd": None if gen.est_usd is None else str(gen.est_usd),
            "usd": None if gen.cost_usd is None else str(gen.cost_usd),
            "source": gen.cost_source or None,
        }
    queue_position = HostedState.load(gen.engine_handle).queue_position
    if gen.status == Generation.Status.IN_PROGRESS and isinstance(queue_position, int):
        body["queue_position"] = queue_position  # jobs ahead of this one at the provider
    if gen.status == Generation.Status.IN_PROGRESS and in_audio_phase(gen.engine_handle):
        body["phase"] = "audio"  # the video is done; its sound is being made (tasks/audio.py)
    if gen.audio_source:
        body["audio_source"] = gen.audio_source  # "native", an audio route, "procedural"
    if gen.files_purged_at is not None:
        # Retention (generations/retention.py): the record stays, the files are gone.
        body["files_expired"] = True
        body["files_expired_at"] = wire_time(gen.files_purged_at)
    elif gen.status == Generation.Status.COMPLETED:
        body["video_url"] = public_url(request, reverse("api-video", args=[gen.generation_id]))
        body["thumbnail_url"] = public_url(
            request, reverse("api-thumbnail", args=[gen.generation_id])
        )
        for name in ("preview", "spritesheet"):
            if getattr(gen, name):
                body[f"{name}_url"] = public_url(
                    request, reverse(f"api-{name}", args=[gen.generation_id])
                )
    if gen.status == Generation.Status.FAILED:
        body["error"] = {"code": gen.error_code, "message": gen.error_message}
    if gen.test_mode:
        body["test_mode"] = True
    return body


def _with_test_flag(body: dict[str, Any], key: ApiKey) -> dict[str, Any]:
    if key.is_test:
        body["test_mode"] = True
    return body


def _team_generation(key: ApiKey, generation_id: str) -> Generation:
    """The generation if it belongs to the key's team; outsiders get the same 404."""
    gen = _TEAM_GENERATION.first(team_id=key.team_id, generation_id=generation_id)
    if gen is None:
        raise ApiError(404, "not_found", f"No generation {generation_id!r} in this team.")
    return gen


@endpoint(("POST",), videogen_error)
def generate(request: HttpRequest) -> HttpResponseBase:
    key = authenticate(request)
    usage: list[int] = []  # the month's usage right after this submit's reservation

    def create() -> Generation:
        gen, used = submit(request, key, json_body(request), source="videogenapi")
        usage.append(used)
        return gen

    return idempotent(request, key, create, lambda gen: submitted(request, key, gen, usage))


def submitted(request: HttpRequest, key: ApiKey, gen: Generation, usage: list[int]) -> HttpResponse:
    """The answer to a submit (generate, extend): the generation, and the month's usage
    right after its reservation (`usage`, empty when an earlier try made it)."""
    body = generation_body(request, gen)
    body.pop("progress")
    used = usage[0] if usage else quotas.month_usage(key.team)
    body.update(
        message=SUBMITTED,
        usage={"current_month_usage": used, "monthly_limit": key.team.monthly_limit},
    )
    return JsonResponse(body, status=200)


@endpoint(("GET",), videogen_error)
def status(request: HttpRequest, generation_id: str) -> HttpResponse:
    """Two queries, both compiled once (db/prepared.py): the key, with its team, plan and
    user; and the generation's BODY_FIELDS. (A third writes the key's last_used_at, at most
    once a minute per key.) tests/test_queries.py holds it to that."""
    key = authenticate(request)
    return JsonResponse(generation_body(request, _team_generation(key, generation_id)))


@endpoint(("POST",), videogen_error)
def cancel(request: HttpRequest, generation_id: str) -> HttpResponse:
    """Queued: never starts. Running: stops at its next frame. Refunded either way."""
    key = authenticate(request)
    gen = _team_generation(key, generation_id)
    if gen.is_final:
        raise ApiError(409, "already_final", f"This generation is already {gen.status}.")
    lifecycle.cancel(generation=gen)
    gen = _team_generation(key, generation_id)
    body = generation_body(request, gen)
    body["cancel_requested"] = True
    return JsonResponse(body)


# The list's order, newest first; a cursor holds the last row's values of these.
LIST_ORDER = ("-created_at", "-pk")


@endpoint(("GET",), videogen_error)
def generations(request: HttpRequest) -> HttpResponse:
    """Newest first, `page=` as the reference has it (OFFSET: the deeper the page, the more
    rows read and skipped), or `cursor=` (the `next_cursor` of the page before: found
    through the index at any depth). `total` comes from the usage summaries."""
    key = authenticate(request)
    limit = page_param(request, "limit", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    # What generation_body reads of other rows comes with each: no query per generation.
    rows = Generation.objects.filter(team=key.team).select_related("extended_from", "sequence")
    cursor = request.GET.get("cursor")
    page: int | None
    if cursor:
        values = keyset.decode(cursor, LIST_ORDER)
        if values is None:
            raise ApiError(400, "invalid_parameter", "`cursor` is not a cursor of this list "
                           "(use the `next_cursor` of a page).", "cursor")  # fmt: skip
        window = keyset.window(rows, LIST_ORDER, size=limit, after=values)
        found, page, more = window.items, None, window.after is not None
    else:
        page = page_param(request, "page", 1, 10**6)
        offset = (page - 1) * limit
        found = list(rows.order_by(*LIST_ORDER)[offset : offset + limit + 1])
        more = len(found) > limit
        found = found[:limit]
    items = [generation_body(request, g) for g in found]
    for item in items:
        item.pop("success")
    return JsonResponse(
        _with_test_flag(
            {
                "success": True,
                "generations": items,
                "total": rollups.generation_count(key.team),
                "page": page,
                "limit": limit,
                "has_more": more,
                "next_cursor": keyset.encode(found[-1], LIST_ORDER) if more else None,
            },
            key,
        )
    )


@endpoint(("GET",), videogen_error)
def user(request: HttpRequest) -> HttpResponse:
    key = authenticate(request)
    team = key.team
    used = quotas.month_usage(team)
    return JsonResponse(
        _with_test_flag(
            {
                "success": True,
                "user": {
                    "email": key.user.email,
                    "name": key.user.name,
                    "joined_at": wire_time(key.user.date_joined),
                },
                "team": {"id": str(team.code), "name": team.name, "personal": team.personal},
                "api_key": {"name": key.name, "key": key.display, "test": key.is_test},
                "plan": {
                    "name": team.plan.name,
                    "monthly_limit": team.plan.monthly_limit,
                    "premium_allowed": team.plan.premium_allowed,
                    "member_monthly_cap": team.plan.member_monthly_cap,
                    "requests_per_minute": team.plan.requests_per_minute,
                    "monthly_budget_usd": None
                    if team.plan.monthly_budget_usd is None
                    else str(team.plan.monthly_budget_usd),
                },
                "usage": {
                    "month": quotas.current_month(),
                    "current_month_usage": used,
                    "monthly_limit": team.monthly_limit,
                    "remaining": max(0, team.monthly_limit - used),
                },
                "credits": None if team.credits is None else {"balance": str(team.credits)},
                "spend": _spend(team),
            },
            key,
        )
    )


def _spend(team: Team) -> dict[str, Any]:
    """The month's US dollars at providers (spent, and reserved by work not yet settled),
    against the plan's budget when it has one."""
    spent = quotas.month_spent(team)
    budget = team.plan.monthly_budget_usd
    return {
        "month": quotas.current_month(),
        "spent_usd": str(spent),
        "monthly_budget_usd": None if budget is None else str(budget),
        "remaining_usd": None if budget is None else str(max(budget - spent, 0)),
    }


@endpoint(("GET",), videogen_error)
def models(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"success": True, "models": [model_entry(m) for m in catalog.MODELS]})


def _completed(generation_id: str) -> Generation:
    gen = Generation.objects.filter(
        generation_id=generation_id, status=Generation.Status.COMPLETED
    ).first()
    if gen is not None and gen.files_purged_at is not None:
        raise ApiError(
            410,
            "expired",
            f"This video's files were deleted on {gen.files_purged_at:%Y-%m-%d} under the "
            "server's retention policy; the generation's record remains.",
        )
    if gen is None or not gen.video:
        raise ApiError(404, "not_found", "No finished video with this id.")
    return gen


@endpoint(("GET", "HEAD"), videogen_error)
def video(request: HttpRequest, generation_id: str) -> HttpResponseBase:
    """Public: the generation id is the unguessable capability, as in the reference. A
    sequence's id gives its stitched video; `format` one of its exports (CONTRACT 6)."""
    fmt = request.GET.get("format")
    if generation_id.startswith(SEQUENCE_PREFIX):
        seq = sequences.completed_sequence(generation_id)
        if fmt:
            return sequences.export_response(request, fmt, sequence=seq)
        return serve_file(request, seq.video, "video/mp4", etag=f"{seq.sequence_id}-v",
                          download_name=f"{seq.sequence_id}.mp4")  # fmt: skip
    gen = _completed(generation_id)
    if fmt:
        return sequences.export_response(request, fmt, generation=gen)
    return serve_file(
        request,
        gen.video,
        "video/mp4",
        etag=f"{gen.generation_id}-v",
        download_name=f"{gen.generation_id}.mp4",
    )


IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".png": "image/png",
}


def _public_image(request: HttpRequest, generation_id: str, field: str) -> HttpResponseBase:
    gen: Generation | Sequence
    if generation_id.startswith(SEQUENCE_PREFIX):
        gen = sequences.completed_sequence(generation_id)
    else:
        gen = _completed(generation_id)
    stored = getattr(gen, field)
    if not stored:
        raise ApiError(404, "not_found", f"This generation has no {field}.")
    suffix = "." + stored.name.rsplit(".", 1)[-1].lower()
    return serve_file(
        request, stored, IMAGE_TYPES.get(suffix, "application/octet-stream"),
        etag=f"{generation_id}-{field}",
    )  # fmt: skip


@endpoint(("GET", "HEAD"), videogen_error)
def thumbnail(request: HttpRequest, generation_id: str) -> HttpResponseBase:
    """Public, like the video: the poster frame."""
    return _public_image(request, generation_id, "poster")


@endpoint(("GET", "HEAD"), videogen_error)
def preview(request: HttpRequest, generation_id: str) -> HttpResponseBase:
    """Public: a short animated WebP of the video."""
    return _public_image(request, generation_id, "preview")


@endpoint(("GET", "HEAD"), videogen_error)
def spritesheet(request: HttpRequest, generation_id: str) -> HttpResponseBase:
    """Public: a grid of evenly spaced thumbnails (for scrubbing)."""
    return _public_image(request, generation_id, "spritesheet")
