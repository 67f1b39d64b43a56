"""Summaries kept so that reads do not scan history: a team's usage per closed day
(core/rollups.py rolls it up once the day can no longer change), and the heavy series of
`/metrics`, refreshed by the worker (ops/metrics.py)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from generations.models.accounts import ApiKey, Team, User


class UsageDay(models.Model):
    """A team's usage on one closed UTC day, per member, key, model and engine: the ledger's
    units and US dollars (`ledger` rows), and the generations created that day, their
    outcomes and recorded costs (the others, with the engine that ran them). A month's report
    sums these for the days before its team's `UsageRolled.until` and reads the rest live."""

    team = models.ForeignKey(Team, models.CASCADE, related_name="usage_days")
    month = models.CharField(max_length=7)  # the ledger's month (a generation's: created_at's)
    day = models.DateField()
    user = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    api_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True, related_name="+")
    model = models.CharField(max_length=40)
    engine = models.CharField(max_length=40, blank=True)
    test_mode = models.BooleanField(default=False)
    ledger = models.BooleanField(default=False)
    # From the ledger.
    units = models.IntegerField(default=0)
    usd = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    # From the generations created that day.
    submitted = models.IntegerField(default=0)
    completed = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    seconds = models.IntegerField(default=0)  # of video, completed ones
    costed = models.IntegerField(default=0)  # generations with a recorded cost
    cost_usd = models.DecimalField(max_digits=14, decimal_places=4, default=0)

    class Meta:
        indexes = [models.Index(fields=["team", "month", "day"], name="usageday_team_month")]


class UsageRolled(models.Model):
    """How far a team's usage is rolled up: every day before `until` is in UsageDay."""

    team = models.OneToOneField(Team, models.CASCADE, primary_key=True, related_name="+")
    until = models.DateField()


class MetricsSnapshot(models.Model):
    """A series of `/metrics` too heavy to compute at every scrape, as the worker last
    computed it (ops/metrics.py): `name` -> JSON."""

    name = models.CharField(max_length=40, primary_key=True)
    body = models.JSONField(default=dict)
    computed_at = models.DateTimeField(default=timezone.now)
    took_s = models.FloatField(default=0)
