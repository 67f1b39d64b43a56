"""`Idempotency-Key` on create endpoints: a retried request returns the first response.

Same key and same request: the stored response is replayed (`Idempotent-Replayed: true`).
Same key, different request: 422. Same key while the first request is still being handled:
409; once that request is presumed dead (its web process killed), the retry runs it again, or,
if it had already saved its generation, answers with that generation. Records are kept 24
hours (core/idempotency.py keeps them). Only successful responses are stored, so a request
refused for a reason that can change (a limit, a bad image URL) may be retried with the
same key."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar, cast

from django.http import HttpRequest, HttpResponse, HttpResponseBase

from generations.core import idempotency
from generations.core.idempotency import HEADER
from generations.errors import ApiError
from generations.models import ApiKey, Batch, Generation, IdempotencyRecord, Sequence

# What a create endpoint makes. The request's fingerprint includes its path, so a record made
# by one endpoint is only ever answered by the same endpoint: its kind is the one it made.
Made = TypeVar("Made", Generation, Batch, Sequence)

MAX_KEY_CHARS = 255


def _request_hash(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for part in (request.method or "", request.path, request.content_type or ""):
        digest.update(part.encode() + b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def idempotent(
    request: HttpRequest,
    key: ApiKey,
    create: Callable[[], Made],
    respond: Callable[[Made], HttpResponse],
) -> HttpResponseBase:
    """`respond(create())`, at most once per key: a retry gets the first answer. What
    create makes (a generation, a batch or a sequence) is linked to the record as it is saved."""
    value = request.headers.get(HEADER)
    if value is None:
        return respond(create())
    value = value.strip()
    if not value or len(value) > MAX_KEY_CHARS:
        raise ApiError(400, "invalid_idempotency_key",
                       f"`{HEADER}` must be 1 to {MAX_KEY_CHARS} characters.", HEADER)  # fmt: skip
    taken = idempotency.claim(key, value, _request_hash(request))
    if isinstance(taken, idempotency.Stored):
        replay = HttpResponse(taken.body, status=taken.status, content_type="application/json")
        replay["Idempotent-Replayed"] = "true"
        return replay
    if taken.made is not None:  # made, but its process died before answering: answer now
        response = _complete(taken.record, respond(cast(Made, taken.made)))
        response["Idempotent-Replayed"] = "true"
        return response
    token = idempotency.current_record.set(taken.record.pk)
    try:
        gen = create()
    except BaseException:
        idempotency.release(taken.record)
        raise
    finally:
        idempotency.current_record.reset(token)
    return _complete(taken.record, respond(gen))


def _complete(record: IdempotencyRecord, response: HttpResponse) -> HttpResponse:
    if response.status_code < 400:
        idempotency.store_answer(record, response.status_code, response.content.decode())
    return response
