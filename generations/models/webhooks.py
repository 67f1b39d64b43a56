"""Team webhook endpoints and the log of every delivery."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from generations.models.accounts import Team
from generations.models.generation import Generation


class WebhookEndpoint(models.Model):
    """A team-wide URL that receives every generation event of the team."""

    team = models.ForeignKey(Team, models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2048)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event for one URL, with its attempts: the dashboard's delivery log."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    team = models.ForeignKey(Team, models.CASCADE, related_name="webhook_deliveries")
    generation = models.ForeignKey(
        Generation, models.SET_NULL, null=True, related_name="webhook_deliveries"
    )
    message_id = models.CharField(max_length=40, unique=True)
    event = models.CharField(max_length=40)
    url = models.URLField(max_length=2048)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due")]
