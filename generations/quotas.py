"""Monthly limits, per-member caps, credits and request rates.

Every reservation is a conditional UPDATE (`... WHERE used < limit`), so concurrent submits
stay exact on SQLite and PostgreSQL alike; the caller's transaction makes the reservations
and the generation row commit together or not at all."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import connection, models
from django.db.models import F
from django.utils import timezone

from generations.errors import ApiError
from generations.models import ApiKey, MemberMonthlyUsage, MonthlyUsage, Team, User

log = logging.getLogger(__name__)

RATE_WINDOW_S = 60


def current_month() -> str:
    """The calendar month in UTC, e.g. "2026-11"."""
    return timezone.now().astimezone(UTC).strftime("%Y-%m")


def month_usage(team: Team, month: str | None = None) -> int:
    row = MonthlyUsage.objects.filter(team=team, month=month or current_month()).first()
    return row.used if row else 0


def member_usage(team: Team, user: User, month: str | None = None) -> int:
    row = MemberMonthlyUsage.objects.filter(
        team=team, user=user, month=month or current_month()
    ).first()
    return row.used if row else 0


def _next_month_note() -> str:
    return "The allowance resets on the first day of next month (UTC)."


@dataclass(frozen=True)
class Reservation:
    usage: int  # the team's generations this month, this one included
    credits: Decimal  # credits taken (0 for a team that does not pay in credits)


def charge_for(team: Team, cost: Decimal) -> Decimal:
    """The credits a generation of this cost takes from this team: 0 unless it pays in
    credits. Known before the reservation, so the ledger row can be written first."""
    return cost if cost and team.credits is not None else Decimal(0)


def reserve(team: Team, user: User, month: str, credits: Decimal) -> Reservation:
    """Take one generation (and `credits`, see charge_for) or raise.

    429 when the team's or the member's monthly allowance is used up, 402 when credits are
    short. Each step is one conditional UPDATE of a row every submit of the team contends
    for, so callers run this last in their transaction: the row locks are then held only
    until the commit that follows."""
    plan = team.plan
    MonthlyUsage.objects.get_or_create(team=team, month=month)
    used = _increment_below(MonthlyUsage, plan.monthly_limit, team_id=team.pk, month=month)
    if used is None:
        raise ApiError(
            429,
            "monthly_limit_exceeded",
            f"This team has used all {plan.monthly_limit} generations of {month}. "
            + _next_month_note(),
            current_month_usage=month_usage(team, month),
            monthly_limit=plan.monthly_limit,
        )
    if plan.member_monthly_cap is not None:
        MemberMonthlyUsage.objects.get_or_create(team=team, user=user, month=month)
        if _increment_below(MemberMonthlyUsage, plan.member_monthly_cap, team_id=team.pk,
                            user_id=user.pk, month=month) is None:  # fmt: skip
            raise ApiError(
                429,
                "member_limit_exceeded",
                f"You have used all {plan.member_monthly_cap} generations a member may make "
                f"in {month} on this team's plan. " + _next_month_note(),
                member_monthly_cap=plan.member_monthly_cap,
            )
    if credits and not Team.objects.filter(pk=team.pk, credits__gte=credits).update(
        credits=F("credits") - credits
    ):
        left = Team.objects.values_list("credits", flat=True).get(pk=team.pk)
        raise ApiError(
            402,
            "insufficient_credits",
            f"This generation costs {credits} credits and the team has {left} left.",
            credits_needed=str(credits),
            credits_left=str(left),
        )
    return Reservation(usage=used, credits=credits)


def _increment_below(model: type[models.Model], limit: int, **row: object) -> int | None:
    """`used += 1` on the row where `used < limit`, returning the new count (one statement:
    UPDATE ... RETURNING, on PostgreSQL and SQLite alike); None when the limit is reached."""
    table = model._meta.db_table
    where = " AND ".join(f"{connection.ops.quote_name(name)} = %s" for name in row)
    params: list[Any] = [*row.values(), limit]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(table)} SET used = used + 1 "
            f"WHERE {where} AND used < %s RETURNING used",
            params,
        )
        found = cursor.fetchone()
    return None if found is None else int(found[0])


def release(team_id: int, user_id: int | None, month: str, credits: Decimal) -> None:
    """Undo one reservation (a failed or canceled generation)."""
    MonthlyUsage.objects.filter(team_id=team_id, month=month, used__gt=0).update(used=F("used") - 1)
    if user_id is not None:
        MemberMonthlyUsage.objects.filter(
            team_id=team_id, user_id=user_id, month=month, used__gt=0
        ).update(used=F("used") - 1)
    if credits:
        Team.objects.filter(pk=team_id, credits__isnull=False).update(
            credits=F("credits") + credits
        )


def _count(name: str) -> int:
    if cache.add(name, 1, timeout=RATE_WINDOW_S + 5):
        return 1
    try:
        return int(cache.incr(name))
    except ValueError:  # expired between add and incr
        cache.add(name, 1, timeout=RATE_WINDOW_S + 5)
        return 1


_last_warning = 0.0


def _warn_uncounted() -> None:
    global _last_warning
    if time.monotonic() - _last_warning > RATE_WINDOW_S:
        _last_warning = time.monotonic()
        log.warning("rate limits are not counted: the cache is unreachable", exc_info=True)


@dataclass(frozen=True)
class RateLimit:
    limit: int
    remaining: int
    reset: int  # seconds until the window resets

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
            # draft-ietf-httpapi-ratelimit-headers: the policy and the current state.
            "RateLimit-Policy": f'"default";q={self.limit};w={RATE_WINDOW_S}',
            "RateLimit": f'"default";r={self.remaining};t={self.reset}',
        }


# Kept hand-written on purpose: a fixed one-minute window counted with cache.add/incr in
# Django's cache (one count for every process through Redis) that fails open; that is all
# it needs. django-ratelimit counts the same way but is keyed on an HttpRequest, and its
# RATELIMIT_FAIL_OPEN covers only a count the cache did not return: a Redis refusing
# connections raises through it, so we would wrap it just as we wrap our own counter.
def rate_limit_take(key: ApiKey) -> RateLimit | None:
    """Count one request for this key in the current fixed one-minute window.

    The counter lives in the cache: Redis when REDIS_URL is set, so that every web process
    shares it; otherwise each process counts on its own. While the cache cannot be reached
    (Redis restarting) requests are let through uncounted and without rate-limit headers:
    keys cannot be guessed, so the limit is about fairness, and the API stays up. (Login
    throttling, which guards guessable passwords, fails closed instead: a 503.)"""
    limit = key.team.plan.requests_per_minute
    now = time.time()
    window = int(now // RATE_WINDOW_S)
    reset = max(1, math.ceil((window + 1) * RATE_WINDOW_S - now))
    name = f"vg:rl:{key.pk}:{window}"
    try:
        used = _count(name)
    except Exception:
        _warn_uncounted()
        return None
    state = RateLimit(limit=limit, remaining=max(0, limit - used), reset=reset)
    if used > limit:
        raise ApiError(
            429,
            "rate_limit_exceeded",
            f"Too many requests: {limit} per minute for this key. Retry in {reset} s.",
            rate_limit=state,
        )
    return state
