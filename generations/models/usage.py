"""The usage ledger and the monthly counters that limits are checked against."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from generations.models.accounts import ApiKey, Team, User
from generations.models.generation import Generation


class UsageEvent(models.Model):
    """The ledger: one row per charge and per refund; usage is their sum."""

    class Kind(models.TextChoices):
        CHARGE = "charge"  # reserved at submit
        SETTLE = "settle"  # the reservation became final: the video was delivered
        REFUND = "refund"
        GRANT = "grant"  # credits added by an admin

    team = models.ForeignKey(Team, models.CASCADE, related_name="usage_events")
    user = models.ForeignKey(User, models.SET_NULL, null=True, blank=True)
    api_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True)
    generation = models.ForeignKey(Generation, models.SET_NULL, null=True, related_name="usage")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    units = models.IntegerField()  # +1 for a charge, -1 for a refund
    credits = models.DecimalField(max_digits=14, decimal_places=2, default=0)  # signed like units
    # Money at the provider, signed: a charge reserves the estimate, the settle adds the
    # actual cost less the estimate, a refund takes the estimate back; so a generation's
    # events sum to what it cost.
    usd = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    provider = models.CharField(max_length=40, blank=True)  # who served (or was to serve) it
    month = models.CharField(max_length=7)  # "2026-11", calendar month in UTC
    model = models.CharField(max_length=40)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # A generation is charged at most once and refunded at most once.
            models.UniqueConstraint(
                fields=["generation", "kind"],
                condition=models.Q(generation__isnull=False),
                name="one_event_per_kind",
            )
        ]
        # A month's rows, and a report's live part: the month's rows since the team's usage
        # was last rolled up (core/rollups.py).
        indexes = [models.Index(fields=["team", "month", "created_at"], name="usage_team_month_at")]


class MonthlyUsage(models.Model):
    """A counter per team and month, moved only by conditional UPDATEs (exact under races):
    generations, and US dollars reserved or spent (checked against the plan's budget)."""

    team = models.ForeignKey(Team, models.CASCADE, related_name="monthly_usage")
    month = models.CharField(max_length=7)
    used = models.IntegerField(default=0)
    spent_usd = models.DecimalField(max_digits=14, decimal_places=4, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "month"], name="one_counter")]


class MemberMonthlyUsage(models.Model):
    """The same counter per member, for plans with a per-member monthly cap."""

    team = models.ForeignKey(Team, models.CASCADE, related_name="member_usage")
    user = models.ForeignKey(User, models.CASCADE, related_name="monthly_usage")
    month = models.CharField(max_length=7)
    used = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user", "month"], name="one_member_counter")
        ]
