"""The Framepack-compatible surface: `POST /v1/generate-video` (CONTRACT 3b).

One endpoint submits (a body with generation fields) and polls (a body with only
`request_id`). `wait_for_result` holds the request until the job is final or the wait limit
passes (then 504 with the `request_id`). The wait is async: it holds no thread, only a timer
and a cheap status query now and then."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from generations.api.common import (
    api_endpoint,
    authenticate,
    json_body,
    public_url,
    submit,
    videogen_error,
)
from generations.api.idempotency import idempotent
from generations.db.prepared import PreparedQuery
from generations.errors import ApiError, invalid
from generations.models import ApiKey, Generation
from generations.web.dbthreads import run_in_db_thread

POLL_FIELDS = {"request_id", "wait_for_result"}
DEFAULT_MODEL = "framepack"
# The reference's status words: a finished job is "success" to a poll, "complete" to a wait.
PENDING, SUCCESS, COMPLETE, FAILED = "pending", "success", "complete", "failed"
STATUSES = (PENDING, SUCCESS, COMPLETE, FAILED)
# How often a waiting request looks at its generation: quickly at first, then calmer.
WAIT_POLL_FIRST_S = 0.2
WAIT_POLL_MAX_S = 1.0

_BY_REQUEST_ID = PreparedQuery(
    lambda team_id, request_id: Generation.objects.filter(team_id=team_id, request_id=request_id),
    fields={"request_id": Generation._meta.get_field("request_id")},
    team_id=-(2**40),
    request_id=uuid.UUID("00000000-0000-0000-0000-00000000dead"),
)


def _created(gen: Generation) -> int:
    return int(gen.created_at.timestamp())


def framepack_body(request: HttpRequest, gen: Generation, *, waited: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_id": str(gen.request_id),
        "model": gen.model,
        "created": _created(gen),
    }
    if gen.requested_model:
        body["requested_model"] = gen.requested_model  # the alias asked for
    if gen.status == Generation.Status.COMPLETED:
        video_url = public_url(request, reverse("api-video", args=[gen.generation_id]))
        body.update(
            status=COMPLETE if waited else SUCCESS,
            video={"url": video_url},
            thumbnail={
                "url": public_url(request, reverse("api-thumbnail", args=[gen.generation_id]))
            },
            seed=gen.seed,
            processing_time=gen.processing_time,
        )
    elif gen.status in (Generation.Status.FAILED, Generation.Status.CANCELED):
        body.update(
            status=FAILED,
            error={
                "code": gen.error_code or "canceled",
                "message": gen.error_message or "The generation was canceled.",
            },
        )
    else:
        body.update(status=PENDING, progress=gen.progress)
    if gen.test_mode:
        body["test_mode"] = True
    return body


def _find(key: ApiKey, request_id: object) -> Generation:
    try:
        parsed = uuid.UUID(str(request_id))
    except ValueError:
        raise invalid("request_id", "`request_id` must be a UUID.") from None
    gen = _BY_REQUEST_ID.first(team_id=key.team_id, request_id=parsed)
    if gen is None:
        raise ApiError(404, "not_found", "No generation with this request_id in this team.",
                       "request_id")  # fmt: skip
    return gen


def _submit(request: HttpRequest, key: ApiKey, data: dict[str, Any]) -> Generation:
    gen, _ = submit(request, key, data, source="framepack", default_model=DEFAULT_MODEL)
    return gen


def _reload(pk: int) -> Generation:
    return Generation.objects.get(pk=pk)


async def _wait(gen: Generation, deadline: float) -> Generation:
    interval = WAIT_POLL_FIRST_S
    while not gen.is_final and time.monotonic() < deadline:
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(WAIT_POLL_MAX_S, interval * 1.5)
        gen = await run_in_db_thread(_reload, gen.pk)
    return gen


def _read(request: HttpRequest) -> tuple[ApiKey, dict[str, Any]]:
    return authenticate(request), json_body(request)


@api_endpoint(("POST",), videogen_error)
async def generate_video(request: HttpRequest) -> HttpResponse:
    started = time.monotonic()
    key, data = await run_in_db_thread(_read, request)
    wait = data.get("wait_for_result", False)
    if not isinstance(wait, bool):
        raise invalid("wait_for_result", "`wait_for_result` must be true or false.")
    fields = {k: v for k, v in data.items() if k != "wait_for_result"}
    if "request_id" in data and set(data) <= POLL_FIELDS:
        gen = await run_in_db_thread(_find, key, data["request_id"])
    elif "request_id" in data:
        raise invalid(
            "request_id", "Send `request_id` alone to poll, or no `request_id` to submit."
        )
    else:
        # Submitting: idempotent like every create endpoint, then maybe wait.
        def create() -> Generation:
            made = _submit(request, key, fields)
            request.framepack_generation = made  # type: ignore[attr-defined]
            return made

        def respond(made: Generation) -> HttpResponse:
            body = framepack_body(request, made, waited=False)
            body.pop("progress", None)  # the submit answer is exactly the reference's
            return JsonResponse(body)

        response = await run_in_db_thread(idempotent, request, key, create, respond)
        created: Generation | None = getattr(request, "framepack_generation", None)
        if created is None:  # an idempotent replay: the generation was made earlier
            created = await run_in_db_thread(_find, key, _request_id_of(response))
        gen = created
        if not wait:
            assert isinstance(response, HttpResponse)
            return response
    if wait:
        gen = await _wait(gen, started + settings.VIDEOGEN_WAIT_TIMEOUT)
        if not gen.is_final:
            return JsonResponse(
                {
                    "request_id": str(gen.request_id),
                    "status": PENDING,
                    "model": gen.model,
                    "created": _created(gen),
                    "error": {
                        "code": "timeout",
                        "message": f"Not finished within {settings.VIDEOGEN_WAIT_TIMEOUT} s; "
                        "poll with this request_id.",
                    },
                },
                status=504,
            )
    return JsonResponse(framepack_body(request, gen, waited=wait))


def _request_id_of(response: Any) -> str:
    return str(json.loads(response.content)["request_id"])
