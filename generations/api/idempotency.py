"""`Idempotency-Key` on create endpoints: a retried request returns the first response.

Same key and same request: the stored response is replayed (`Idempotent-Replayed: true`).
Same key, different request: 422. Same key while the first request is still being handled:
409. Records are kept 24 hours. Only successful responses are stored, so a request refused
for a reason that can change (a limit, a bad image URL) may be retried with the same key."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone

from generations.errors import ApiError
from generations.models import ApiKey, IdempotencyRecord

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
    request: HttpRequest, key: ApiKey, create: Callable[[], HttpResponseBase]
) -> HttpResponseBase:
    value = request.headers.get(HEADER)
    if value is None:
        return create()
    value = value.strip()
    if not value or len(value) > MAX_KEY_CHARS:
        raise ApiError(400, "invalid_idempotency_key",
                       f"`{HEADER}` must be 1 to {MAX_KEY_CHARS} characters.", HEADER)  # fmt: skip
    fingerprint = _request_hash(request)
    IdempotencyRecord.objects.filter(
        api_key=key, key=value, created_at__lt=timezone.now() - KEEP_FOR
    ).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                api_key=key, key=value, request_hash=fingerprint
            )
    except IntegrityError:
        earlier = IdempotencyRecord.objects.get(api_key=key, key=value)
        if earlier.request_hash != fingerprint:
            raise ApiError(422, "idempotency_key_reused",
                           f"This `{HEADER}` was used with a different request.",
                           HEADER) from None  # fmt: skip
        if earlier.response_status is None:
            raise ApiError(409, "idempotency_key_in_use",
                           f"A request with this `{HEADER}` is still being processed.",
                           HEADER) from None  # fmt: skip
        replay = HttpResponse(
            earlier.response_body, status=earlier.response_status, content_type="application/json"
        )
        replay["Idempotent-Replayed"] = "true"
        return replay
    try:
        response = create()
    except BaseException:
        record.delete()
        raise
    if response.status_code < 400 and isinstance(response, HttpResponse):
        record.response_status = response.status_code
        record.response_body = response.content.decode()
        record.save(update_fields=["response_status", "response_body"])
    else:
        record.delete()
    return response


def forget_expired() -> int:
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - KEEP_FOR).delete()
    return deleted
