"""What the workers share about the hosted providers: each provider's circuit breaker, the
keys taken out of rotation, and the in-flight slots that cap how many jobs a provider (per
key) holds at once. Moved only by conditional UPDATEs and unique inserts, so every worker
process and host sees one truth."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from generations.models.generation import Generation


class ProviderCircuit(models.Model):
    """One provider's circuit breaker: closed (calls go through), open (calls skip this
    provider until `retry_at`), then one probe (`probe_claim`, until `probe_until`) decides
    between closed and open again."""

    class State(models.TextChoices):
        CLOSED = "closed"
        OPEN = "open"
        HALF_OPEN = "half_open"  # a probe is out: its outcome closes or reopens the circuit

    provider = models.CharField(max_length=40, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.CLOSED)
    failures = models.PositiveIntegerField(default=0)  # consecutive transient failures
    opened_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)  # an open circuit's end of cool-down
    probe_claim = models.CharField(max_length=32, blank=True)
    probe_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    opened_count = models.PositiveIntegerField(default=0)  # times it opened (for /metrics)

    def __str__(self) -> str:
        return f"{self.provider}: {self.state}"


class ProviderKey(models.Model):
    """A key of a provider's pool (FAL_KEY="k1,k2,...") that the provider refused: out of
    rotation until `disabled_until`. Named by a fingerprint (a digest prefix), never by
    the key itself."""

    provider = models.CharField(max_length=40)
    fingerprint = models.CharField(max_length=16)
    disabled_at = models.DateTimeField(default=timezone.now)
    disabled_until = models.DateTimeField()
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "fingerprint"], name="one_key_state")
        ]

    def __str__(self) -> str:
        return f"{self.provider} key {self.fingerprint}"


class ProviderSlot(models.Model):
    """A job in flight at a provider under one of its keys: slot `slot` of the limit
    VIDEOGEN_PROVIDER_CONCURRENCY sets for that provider (per key). Taken by a unique insert
    before the submit, deleted when the job leaves the provider."""

    provider = models.CharField(max_length=40)
    key = models.CharField(max_length=16)  # the key's fingerprint
    slot = models.PositiveSmallIntegerField()
    generation = models.OneToOneField(Generation, models.CASCADE, related_name="provider_slot")
    taken_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "key", "slot"], name="one_slot_holder")
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.key} slot {self.slot}"
