"""Idempotency-Key records: the writes behind generations/api/idempotency.py, which speaks
the HTTP side (the header, the fingerprint of the request, replayed answers).

One record per API key and Idempotency-Key value, kept KEEP_FOR: it holds the fingerprint
of the request that took it, then the answer once there is one. While the request runs,
`current_record` names its record, so that the generation (or batch, or sequence) it makes
is linked to the record in the same transaction (core.submissions): a web process killed
between that commit and storing the answer leaves nothing half-made."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from generations.errors import ApiError
from generations.models import ApiKey, Batch, Generation, IdempotencyRecord, Sequence

HEADER = "Idempotency-Key"  # the field that errors name
KEEP_FOR = timedelta(hours=24)

# The Idempotency-Key record of the create request being handled: core.submissions links
# the generation it saves to this record in the same transaction.
current_record: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "idempotency_record", default=None
)


class Stored(NamedTuple):
    """An earlier try's answer: replay it."""

    status: int
    body: str


@dataclass(frozen=True)
class Claim:
    """The record this request now holds; `made` is the generation an earlier try saved
    before it died unanswered (answer with it, make nothing)."""

    record: IdempotencyRecord
    made: Generation | Batch | Sequence | None = None


def claim(key: ApiKey, value: str, fingerprint: str) -> Claim | Stored:
    """Take the key's record for this request, or say what an earlier try left. ApiError
    422 when the key came with another request, 409 while an earlier try is still live."""
    IdempotencyRecord.objects.filter(
        api_key=key, key=value, created_at__lt=timezone.now() - KEEP_FOR
    ).delete()
    for _ in range(2):
        try:
            with transaction.atomic():
                return Claim(
                    IdempotencyRecord.objects.create(
                        api_key=key, key=value, request_hash=fingerprint
                    )
                )
        except IntegrityError:
            pass
        earlier = (
            IdempotencyRecord.objects.select_related("generation", "batch", "sequence")
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
            return Stored(earlier.response_status, earlier.response_body)
        made = earlier.generation or earlier.batch or earlier.sequence
        if made is not None:
            return Claim(earlier, made)
        if earlier.created_at > timezone.now() - abandoned_after():
            raise ApiError(409, "idempotency_key_in_use",
                           f"A request with this `{HEADER}` is still being processed.",
                           HEADER) from None  # fmt: skip
        # Its process died before saving anything: the request is free to run again.
        IdempotencyRecord.objects.filter(
            pk=earlier.pk,
            response_status__isnull=True,
            generation__isnull=True,
            batch__isnull=True,
            sequence__isnull=True,
        ).delete()
    raise ApiError(409, "idempotency_key_in_use",
                   f"A request with this `{HEADER}` is still being processed.", HEADER)  # fmt: skip


def store_answer(record: IdempotencyRecord, status: int, body: str) -> None:
    record.response_status, record.response_body = status, body
    record.save(update_fields=["response_status", "response_body"])


def release(record: IdempotencyRecord) -> None:
    """The request was refused before it saved anything: the key may be used again. (Were
    the generation saved, the record is linked to it and stays.)"""
    IdempotencyRecord.objects.filter(
        pk=record.pk, generation__isnull=True, batch__isnull=True, sequence__isnull=True
    ).delete()


def abandoned_after() -> timedelta:
    """How long a record may wait for its request's answer before the request is presumed
    dead (its web process killed). Longer than any live submit: the image fetch has
    VIDEOGEN_FETCH_TIMEOUT for connecting and for reading."""
    return timedelta(seconds=max(60, 2 * settings.VIDEOGEN_FETCH_TIMEOUT + 20))


def forget_expired() -> int:
    """Delete the records past KEEP_FOR (the reaper runs this every minute)."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - KEEP_FOR).delete()
    return deleted
