"""The OpenAI-compatible surface under /v1/videos (CONTRACT 3c).

Drives with the official `openai` SDK pointed at `base_url=<server>/v1`: create (JSON or
multipart with `input_reference`), retrieve, list (`after`, `limit`, `order`, `has_more`),
delete, download_content (video, thumbnail, spritesheet), remix and create_and_poll.
Errors use OpenAI's `{"error": {"message", "type", "param", "code"}}` shape."""

from __future__ import annotations

import base64
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

from generations import catalog
from generations.api.common import api_endpoint, authenticate, json_body, submit
from generations.api.idempotency import idempotent
from generations.core import library, submissions, validation
from generations.errors import ApiError, invalid
from generations.models import ApiKey, Generation
from generations.routing import failover
from generations.web.files import serve_file

DEFAULT_MODEL = "sora-2"
DEFAULT_SECONDS = "4"
DEFAULT_SIZE = "720x1280"
# OpenAI's portrait/landscape "pro" sizes have no exact match in our size rule (short side
# = resolution): they are served as 1080p in the same orientation.
PRO_SIZES = {"1024x1792": ("1080p", "9:16"), "1792x1024": ("1080p", "16:9")}
POLL_AFTER_MS = 1000
MAX_LIST_LIMIT = 100
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               402: "insufficient_quota", 403: "permission_error", 404: "not_found_error",
               409: "conflict_error", 422: "invalid_request_error",
               429: "rate_limit_error"}  # fmt: skip
STATUS = {
    Generation.Status.PENDING: "queued",
    Generation.Status.IN_QUEUE: "queued",
    Generation.Status.IN_PROGRESS: "in_progress",
    Generation.Status.COMPLETED: "completed",
    Generation.Status.FAILED: "failed",
    Generation.Status.CANCELED: "failed",
}
# Our field names as OpenAI's parameters, for error messages.
PARAMS = {"duration": "seconds", "resolution": "size", "aspect_ratio": "size",
          "image_url": "input_reference"}  # fmt: skip


def openai_error(exc: ApiError) -> JsonResponse:
    param = PARAMS.get(exc.field or "", exc.field)
    body = {
        "error": {
            "message": exc.message,
            "type": ERROR_TYPES.get(exc.status, "api_error"),
            "param": param,
            "code": exc.code,
        }
    }
    response = JsonResponse(body, status=exc.status)
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="videogen"'
    return response


endpoint = api_endpoint


def _size_to_request(size: str) -> tuple[str, str]:
    if size in PRO_SIZES:
        return PRO_SIZES[size]
    for resolution in catalog.RESOLUTIONS:
        for ratio in catalog.ALL_ASPECTS:
            width, height = catalog.frame_size(resolution, ratio)
            if f"{width}x{height}" == size:
                return resolution, ratio
    raise invalid("size", f"`size` {size!r} is not a size this server makes (e.g. 1280x720).")


def video_object(gen: Generation) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": gen.generation_id,
        "object": "video",
        "created_at": int(gen.created_at.timestamp()),
        "completed_at": int(gen.finished_at.timestamp())
        if gen.status == Generation.Status.COMPLETED and gen.finished_at
        else None,
        "expires_at": None,
        "status": STATUS[Generation.Status(gen.status)],
        "model": gen.model,
        "progress": gen.progress,
        "prompt": gen.prompt,
        "seconds": str(gen.duration),
        "size": f"{gen.width}x{gen.height}",
        "remixed_from_video_id": gen.remixed_from.generation_id if gen.remixed_from else None,
        "error": None,
        # Ours, beyond OpenAI's object: the hosted provider serving it, and every one tried.
        "provider": failover.serving_provider(gen),
        "attempts": failover.public_attempts(gen),
    }
    if gen.requested_model:
        body["requested_model"] = gen.requested_model  # the alias asked for; `model` serves
    if gen.status in (Generation.Status.FAILED, Generation.Status.CANCELED):
        body["error"] = {
            "code": gen.error_code or "canceled",
            "message": gen.error_message or "The video was canceled.",
        }
    if gen.test_mode:
        body["test_mode"] = True
    return body


def _video_response(gen: Generation, status: int = 200) -> JsonResponse:
    response = JsonResponse(video_object(gen), status=status)
    if not gen.is_final:
        response["openai-poll-after-ms"] = str(POLL_AFTER_MS)
    return response


def _team_video(key: ApiKey, video_id: str) -> Generation:
    gen = (
        Generation.objects.select_related("remixed_from")
        .filter(team_id=key.team_id, generation_id=video_id)
        .first()
    )
    if gen is None:
        raise ApiError(404, "video_not_found", f"No video {video_id!r}.", "video_id")
    return gen


def _create_fields(request: HttpRequest) -> tuple[dict[str, Any], str | None]:
    """(fields, image data URL or URL) from a JSON or multipart body."""
    if request.content_type == "multipart/form-data":
        fields: dict[str, Any] = request.POST.dict()
        upload = request.FILES.get("input_reference")
        if upload is not None:
            kind = (upload.content_type or "application/octet-stream").split(";")[0]
            encoded = base64.b64encode(upload.read()).decode()
            return fields, f"data:{kind};base64,{encoded}"
        return fields, fields.pop("input_reference[image_url]", None)
    fields = json_body(request)
    reference = fields.pop("input_reference", None)
    if isinstance(reference, dict):
        reference = reference.get("image_url")
    if reference is not None and not isinstance(reference, str):
        raise invalid("input_reference", "`input_reference` must be an image URL or upload.")
    return fields, reference


def _create(request: HttpRequest, key: ApiKey) -> Generation:
    fields, reference = _create_fields(request)
    resolution, ratio = _size_to_request(str(fields.get("size") or DEFAULT_SIZE))
    data: dict[str, object] = {
        "model": fields.get("model") or DEFAULT_MODEL,
        "prompt": fields.get("prompt"),
        "duration": fields.get("seconds") or DEFAULT_SECONDS,
        "resolution": resolution,
        "aspect_ratio": ratio,
    }
    if reference:
        data["image_url"] = reference
    if fields.get("end_image_url") is not None:
        data["end_image_url"] = fields["end_image_url"]  # the SDK's extra_body (CONTRACT 6)
    if fields.get("webhook_url"):
        data["webhook_url"] = fields["webhook_url"]
    gen, _ = submit(request, key, data, source="openai")
    return gen


@endpoint(("GET", "POST"), openai_error)
def videos(request: HttpRequest) -> HttpResponseBase:
    key = authenticate(request)
    if request.method == "POST":
        return idempotent(request, key, lambda: _create(request, key), _video_response)
    return _list(request, key)


def _list(request: HttpRequest, key: ApiKey) -> HttpResponse:
    try:
        limit = int(request.GET.get("limit", "20"))
    except ValueError:
        raise invalid("limit", "`limit` must be an integer.") from None
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise invalid("limit", f"`limit` must be between 1 and {MAX_LIST_LIMIT}.")
    order = request.GET.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid("order", "`order` must be asc or desc.")
    rows = Generation.objects.filter(team_id=key.team_id).select_related("remixed_from")
    rows = (
        rows.order_by("created_at", "pk") if order == "asc" else rows.order_by("-created_at", "-pk")
    )
    after = request.GET.get("after")
    if after:
        cursor = Generation.objects.filter(team_id=key.team_id, generation_id=after).first()
        if cursor is None:
            raise invalid("after", f"No video {after!r} to continue after.")
        if order == "asc":
            rows = rows.filter(created_at__gte=cursor.created_at).exclude(
                created_at=cursor.created_at, pk__lte=cursor.pk
            )
        else:
            rows = rows.filter(created_at__lte=cursor.created_at).exclude(
                created_at=cursor.created_at, pk__gte=cursor.pk
            )
    page = list(rows[: limit + 1])
    data = [video_object(g) for g in page[:limit]]
    return JsonResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(page) > limit,
        }
    )


@endpoint(("GET", "DELETE"), openai_error)
def video(request: HttpRequest, video_id: str) -> HttpResponseBase:
    key = authenticate(request)
    gen = _team_video(key, video_id)
    if request.method == "DELETE":
        library.generation_delete(generation=gen)
        return JsonResponse({"id": video_id, "object": "video.deleted", "deleted": True})
    return _video_response(gen)


@endpoint(("GET",), openai_error)
def content(request: HttpRequest, video_id: str) -> HttpResponseBase:
    key = authenticate(request)
    gen = _team_video(key, video_id)
    variant = request.GET.get("variant", "video")
    if variant not in ("video", "thumbnail", "spritesheet"):
        raise invalid("variant", "`variant` must be video, thumbnail or spritesheet.")
    if gen.status != Generation.Status.COMPLETED:
        raise ApiError(
            409, "video_not_ready", f"The video is {STATUS[Generation.Status(gen.status)]}."
        )
    if gen.files_purged_at is not None:
        raise ApiError(
            410,
            "video_expired",
            f"This video's files were deleted on {gen.files_purged_at:%Y-%m-%d} under the "
            "server's retention policy; its record remains.",
        )
    stored = {"video": gen.video, "thumbnail": gen.poster, "spritesheet": gen.spritesheet}[variant]
    if not stored:
        raise ApiError(404, "content_not_found", f"This video has no {variant}.", "variant")
    kind = {"video": "video/mp4", "thumbnail": "image/jpeg", "spritesheet": "image/jpeg"}[variant]
    if stored.name.endswith(".webp"):
        kind = "image/webp"
    return serve_file(request, stored, kind, etag=f"{gen.generation_id}-{variant}")


@endpoint(("POST",), openai_error)
def remix(request: HttpRequest, video_id: str) -> HttpResponseBase:
    key = authenticate(request)
    original = _team_video(key, video_id)

    def create() -> Generation:
        prompt = json_body(request).get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise invalid("prompt", "`prompt` is required.")
        if len(prompt) > validation.MAX_PROMPT_CHARS:
            raise invalid(
                "prompt", f"`prompt` must be at most {validation.MAX_PROMPT_CHARS} characters."
            )
        return submissions.generation_again(
            generation=original, user=key.user, api_key=key, source="openai", prompt=prompt.strip()
        )

    return idempotent(request, key, create, _video_response)
