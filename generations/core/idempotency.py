"""Idempotency-Key records (the HTTP side is generations/api/idempotency.py): which record the
request being handled holds, so that the generation it makes is linked to it in the same
transaction, and how long records are kept."""

from __future__ import annotations

import contextvars
from datetime import timedelta

from django.utils import timezone

from generations.models import IdempotencyRecord

KEEP_FOR = timedelta(hours=24)

# The Idempotency-Key record of the create request being handled: core.submit links the
# generation it saves to this record in the same transaction.
current_record: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "idempotency_record", default=None
)


def forget_expired() -> int:
    """Delete the records past KEEP_FOR (the reaper runs this every minute)."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - KEEP_FOR).delete()
    return deleted
