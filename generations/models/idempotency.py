"""Idempotency-Key records of create requests (generations/api/idempotency.py)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from generations.models.accounts import ApiKey


class IdempotencyRecord(models.Model):
    """An `Idempotency-Key` seen on a create request, and the response it produced (24 h)."""

    api_key = models.ForeignKey(ApiKey, models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)  # None: running
    response_body = models.TextField(blank=True)
    # Set in the transaction that saves the generation: a request killed after that commit
    # but before its answer was stored is answered from here on retry.
    generation = models.OneToOneField(
        "Generation", models.SET_NULL, null=True, blank=True, related_name="idempotency_record"
    )
    # The same for a batch (POST /api/v1/batches).
    batch = models.OneToOneField(
        "Batch", models.SET_NULL, null=True, blank=True, related_name="idempotency_record"
    )
    # And for a sequence (POST /api/v1/sequences).
    sequence = models.OneToOneField(
        "Sequence", models.SET_NULL, null=True, blank=True, related_name="idempotency_record"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="one_record_per_key")
        ]
