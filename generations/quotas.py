"""Monthly limits: reserved with a conditional UPDATE so concurrent submits stay exact."""

from __future__ import annotations

from datetime import UTC

from django.db.models import F
from django.utils import timezone

from generations.errors import ApiError
from generations.models import MonthlyUsage, Team


def current_month() -> str:
    """The calendar month in UTC, e.g. "2026-11"."""
    return timezone.now().astimezone(UTC).strftime("%Y-%m")


def month_usage(team: Team, month: str | None = None) -> int:
    row = MonthlyUsage.objects.filter(team=team, month=month or current_month()).first()
    return row.used if row else 0


def reserve(team: Team, month: str) -> int:
    """Take one generation from this month's allowance or raise 429. Returns the new usage.

    Must run inside the caller's transaction: the reservation and the generation row
    commit together or not at all."""
    MonthlyUsage.objects.get_or_create(team=team, month=month)
    taken = MonthlyUsage.objects.filter(team=team, month=month, used__lt=team.monthly_limit).update(
        used=F("used") + 1
    )
    if not taken:
        raise ApiError(
            429,
            "monthly_limit_exceeded",
            f"This team has used all {team.monthly_limit} generations of {month}. "
            "The allowance resets on the first day of next month (UTC).",
            current_month_usage=month_usage(team, month),
            monthly_limit=team.monthly_limit,
        )
    return month_usage(team, month)


def release(team: Team, month: str) -> None:
    MonthlyUsage.objects.filter(team=team, month=month, used__gt=0).update(used=F("used") - 1)
