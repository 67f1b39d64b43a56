"""`Idempotency-Key` on create endpoints: a retried request returns the first response.

Same key and same request: the stored response is replayed (`Idempotent-Replayed: true`).
Same key, different request: 422. Same key while the first request is still being handled:
409; once that request is presumed dead (its web process killed), the retry runs it again, or,
if it had already saved its generation, answers with that generation. Records are kept 24
hours. Only successful responses are stored, so a request refused for a reason that can
change (a limit, a bad image URL) may be retried with the same key."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone

from generations.core import idempotency
from generations.errors import ApiError
from generations.models import ApiKey, Generation, IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
KEEP_FOR = timedelta(hours=24)


def _request_hash(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for part in (request.method or "", request.path, request.content_type or ""):
        digest.update(part.encode() + b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def idempotent(
    request: HttpRequest,
    key: ApiKey,
    create: Callable[[], Generation],
    respond: Callable[[Generation], HttpResponse],
) -> HttpResponseBase:
    """`respond(create())`, at most once per key: a retry gets the first answer.

    The record is linked to its generation in the transaction that saves the generation
    (submissions.generation_create), so even a web process killed between that commit and
    storing the answer leaves nothing half-made: the retry answers with that generation."""
    value = request.headers.get(HEADER)
    if value is None:
        return respond(create())
    value = value.strip()
    if not value or len(value) > MAX_KEY_CHARS:
        raise ApiError(400, "invalid_idempotency_key",
                       f"`{HEADER}` must be 1 to {MAX_KEY_CHARS} characters.", HEADER)  # fmt: skip
    fingerprint = _request_hash(request)
    IdempotencyRecord.objects.filter(
        api_key=key, key=value, created_at__lt=timezone.now() - KEEP_FOR
    ).delete()
    taken = _take(key, value, fingerprint)
    if isinstance(taken, HttpResponseBase):
        return taken  # the earlier answer
    record, made = taken
    if made is not None:  # made, but its process died before answering: answer now
        response = _complete(record, respond(made))
        response["Idempotent-Replayed"] = "true"
        return response
    token = idempotency.current_record.set(record.pk)
    try:
        gen = create()
    except BaseException:
        # Refused before anything was saved: the key may be used again. (Were the generation
        # saved, the record is linked to it and stays.)
        IdempotencyRecord.objects.filter(pk=record.pk, generation__isnull=True).delete()
        raise
    finally:
        idempotency.current_record.reset(token)
    return _complete(record, respond(gen))


def _take(
    key: ApiKey, value: str, fingerprint: str
) -> tuple[IdempotencyRecord, Generation | None] | HttpResponseBase:
    """(a new record, None) for this request; (its record, the generation) when an earlier
    try made the generation but never answered; or the stored answer."""
    for _ in range(2):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    api_key=key, key=value, request_hash=fingerprint
                )
            return record, None
        except IntegrityError:
            pass
        earlier = (
            IdempotencyRecord.objects.select_related("generation")
            .filter(api_key=key, key=value)
            .first()
        )
        if earlier is None:
            continue  # deleted in between (refused, or abandoned): take it now
        if earlier.request_hash != fingerprint:
            raise ApiError(422, "idempotency_key_reused",
                           f"This `{HEADER}` was used with a different request.",
                           HEADER) from None  # fmt: skip
        if earlier.response_status is not None:
            replay = HttpResponse(earlier.response_body, status=earlier.response_status,
                                  content_type="application/json")  # fmt: skip
            replay["Idempotent-Replayed"] = "true"
            return replay
        if earlier.generation is not None:
            return earlier, earlier.generation
        if earlier.created_at > timezone.now() - abandoned_after():
            raise ApiError(409, "idempotency_key_in_use",
                           f"A request with this `{HEADER}` is still being processed.",
                           HEADER) from None  # fmt: skip
        # Its process died before saving anything: the request is free to run again.
        IdempotencyRecord.objects.filter(
            pk=earlier.pk, response_status__isnull=True, generation__isnull=True
        ).delete()
    raise ApiError(409, "idempotency_key_in_use",
                   f"A request with this `{HEADER}` is still being processed.", HEADER)  # fmt: skip


def _complete(record: IdempotencyRecord, response: HttpResponse) -> HttpResponse:
    if response.status_code < 400:
        record.response_status = response.status_code
        record.response_body = response.content.decode()
        record.save(update_fields=["response_status", "response_body"])
    return response


def abandoned_after() -> timedelta:
    """How long a record may wait for its request's answer before the request is presumed
    dead (its web process killed). Longer than any live submit: the image fetch has
    VIDEOGEN_FETCH_TIMEOUT for connecting and for reading."""
    return timedelta(seconds=max(60, 2 * settings.VIDEOGEN_FETCH_TIMEOUT + 20))


def forget_expired() -> int:
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - KEEP_FOR).delete()
    return deleted
