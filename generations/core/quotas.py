"""Monthly limits, per-member caps and credits (request rates: generations/api/ratelimit.py).

Every reservation is a conditional UPDATE (`... WHERE used < limit`), so concurrent submits
stay exact on SQLite and PostgreSQL alike; the caller's transaction makes the reservations
and the generation row commit together or not at all."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any

from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone

from generations.errors import ApiError
from generations.models import (
    DEFAULT_PLAN_NAME,
    MemberMonthlyUsage,
    MonthlyUsage,
    Plan,
    Team,
    UsageEvent,
    User,
)

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


def seconds_to_next_month() -> int:
    """Whole seconds until the monthly allowances reset (00:00 UTC on the 1st), at least 1:
    the `Retry-After` of a monthly-limit 429."""
    now = timezone.now().astimezone(UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    reset = (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )
    return max(1, math.ceil((reset - now).total_seconds()))


@dataclass(frozen=True)
class Reservation:
    usage: int  # the team's generations this month, this one included
    credits: Decimal  # credits taken (0 for a team that does not pay in credits)
    usd: Decimal = Decimal(0)  # US dollars reserved against the month's spend


def month_spent(team: Team, month: str | None = None) -> Decimal:
    """US dollars the team spent (or holds reserved) at providers in the month."""
    row = MonthlyUsage.objects.filter(team=team, month=month or current_month()).first()
    return row.spent_usd if row else Decimal(0)


def charge_for(team: Team, cost: Decimal) -> Decimal:
    """The credits a generation of this cost takes from this team: 0 unless it pays in
    credits. Known before the reservation, so the ledger row can be written first."""
    return cost if cost and team.credits is not None else Decimal(0)


def reserve(
    team: Team,
    user: User,
    month: str,
    credits: Decimal,
    units: int = 1,
    usd: Decimal = Decimal(0),
) -> Reservation:
    """Take `units` generations (and `credits`, see charge_for, and `usd`, their estimate
    in US dollars) or raise, all or nothing: a batch of 5 with 4 left takes none.

    429 when the team's or the member's monthly allowance is used up, 402 when credits are
    short or the estimate does not fit the plan's monthly budget.

    Each step is one conditional UPDATE of a row every submit of the team contends
    for, so callers run this last in their transaction: the row locks are then held only
    until the commit that follows."""
    plan = team.plan
    used = _reserve_units(MonthlyUsage, plan.monthly_limit, units, team_id=team.pk, month=month)
    if used is None:
        now = month_usage(team, month)
        left = max(0, plan.monthly_limit - now)
        raise ApiError(
            429,
            "monthly_limit_exceeded",
            (
                f"This team has used all {plan.monthly_limit} generations of {month}. "
                if not left
                else f"These {units} generations do not fit: this team has {left} of its "
                f"{plan.monthly_limit} generations of {month} left. "
            )
            + _next_month_note(),
            retry_after=seconds_to_next_month(),
            current_month_usage=now,
            monthly_limit=plan.monthly_limit,
        )
    if plan.member_monthly_cap is not None and _reserve_units(
        MemberMonthlyUsage, plan.member_monthly_cap, units,
        team_id=team.pk, user_id=user.pk, month=month,
    ) is None:  # fmt: skip
        mine = member_usage(team, user, month)
        raise ApiError(
            429,
            "member_limit_exceeded",
            (
                f"You have used all {plan.member_monthly_cap} generations a member may "
                f"make in {month} on this team's plan. "
                if mine >= plan.member_monthly_cap
                else f"These {units} generations do not fit: you have "
                f"{plan.member_monthly_cap - mine} of the {plan.member_monthly_cap} a "
                f"member may make in {month} left. "
            )
            + _next_month_note(),
            retry_after=seconds_to_next_month(),
            member_monthly_cap=plan.member_monthly_cap,
        )
    if credits and not Team.objects.filter(pk=team.pk, credits__gte=credits).update(
        credits=F("credits") - credits
    ):
        balance = Team.objects.values_list("credits", flat=True).get(pk=team.pk)
        raise ApiError(
            402,
            "insufficient_credits",
            (
                f"This generation costs {credits} credits and the team has {balance} left."
                if units == 1
                else f"These {units} generations cost {credits} credits and the team has "
                f"{balance} left."
            ),
            credits_needed=str(credits),
            credits_left=str(balance),
        )
    if usd:
        _spend(team, plan, month, usd, units)
    return Reservation(usage=used, credits=credits, usd=usd)


def _spend(team: Team, plan: Plan, month: str, usd: Decimal, units: int) -> None:
    """`spent_usd += usd` on the team's counter of the month, within the plan's budget when
    it has one (one conditional UPDATE, like the monthly limit's): 402 budget_exceeded,
    naming the budget, the spend so far and this estimate, when it would not fit. Rounded
    to the ledger's 4 places in the statement, so that SQLite's floating point sums
    compare like PostgreSQL's numerics."""
    table = connection.ops.quote_name(MonthlyUsage._meta.db_table)
    budget = plan.monthly_budget_usd
    # The amounts travel as text on SQLite (Django's Decimal adapter), which compares
    # greater than any number there: cast, on both databases alike.
    amount = "CAST(%s AS NUMERIC)"
    sql = (
        f"UPDATE {table} SET spent_usd = ROUND(spent_usd + {amount}, 4) "
        "WHERE team_id = %s AND month = %s"
    )
    params: list[Any] = [usd, team.pk, month]
    if budget is not None:
        sql += f" AND ROUND(spent_usd + {amount}, 4) <= {amount}"
        params += [usd, budget]
    with connection.cursor() as cursor:
        cursor.execute(sql + " RETURNING spent_usd", params)
        found = cursor.fetchone()
    if found is not None:
        return
    assert budget is not None  # the counter row exists (reserve made it)
    spent = month_spent(team, month)
    what = "This generation is" if units == 1 else f"These {units} generations are"
    raise ApiError(
        402,
        "budget_exceeded",
        f"{what} estimated at ${usd:.2f} and this team has spent ${spent:.2f} of its "
        f"${budget:.2f} budget for {month}. " + _next_month_note(),
        budget_usd=str(budget),
        spent_usd=str(spent),
        estimate_usd=str(usd),
    )


def spend_adjust(team_id: int, month: str, delta: Decimal) -> None:
    """Move the month's spend by `delta`: a settle's (cost - estimate), a refund's
    (-estimate). Never refused: the money is spent (or given back) already."""
    if delta:
        MonthlyUsage.objects.filter(team_id=team_id, month=month).update(
            spent_usd=F("spent_usd") + delta
        )


def _reserve_units(
    model: type[MonthlyUsage] | type[MemberMonthlyUsage], limit: int, units: int, **row: Any
) -> int | None:
    """`used += units` on the month's counter row within `limit` (see _increment_below),
    the row made first when the month has none yet. The UPDATE comes first: the row exists
    on every submit but a month's first, which is then one get_or_create and the UPDATE
    again (a concurrent first submit that made it meanwhile is found, not made twice)."""
    used = _increment_below(model, limit, units, **row)
    if used is None:
        model.objects.get_or_create(**row)
        used = _increment_below(model, limit, units, **row)
    return used


def _increment_below(
    model: type[models.Model], limit: int, units: int, **row: object
) -> int | None:
    """`used += units` on the row where that stays within `limit`, returning the new count
    (one statement: UPDATE ... RETURNING, on PostgreSQL and SQLite alike); None when it
    would not fit."""
    table = model._meta.db_table
    where = " AND ".join(f"{connection.ops.quote_name(name)} = %s" for name in row)
    params: list[Any] = [units, *row.values(), limit - units]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(table)} SET used = used + %s "
            f"WHERE {where} AND used <= %s RETURNING used",
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


def team_set_plan_limits(*, team: Team, **limits: object) -> Plan:
    """Change one team's limits. A plan shared with other teams is not edited: the team
    gets its own copy first."""
    plan = team.plan
    if plan.teams.exclude(pk=team.pk).exists() or plan.name == DEFAULT_PLAN_NAME:
        plan = Plan.objects.create(
            name=f"{team.name} (custom {team.code.hex[:8]})",
            monthly_limit=plan.monthly_limit,
            premium_allowed=plan.premium_allowed,
            member_monthly_cap=plan.member_monthly_cap,
            requests_per_minute=plan.requests_per_minute,
            monthly_budget_usd=plan.monthly_budget_usd,
        )
        team.plan = plan
        team.save(update_fields=["plan"])
    for name, value in limits.items():
        setattr(plan, name, value)
    plan.save()
    return plan


def team_grant_credits(*, team: Team, amount: Decimal, note: str = "") -> None:
    """Add credits (an admin action); a team without credits starts paying in credits."""
    with transaction.atomic():
        updated = Team.objects.filter(pk=team.pk, credits__isnull=False).update(
            credits=F("credits") + amount
        )
        if not updated:
            Team.objects.filter(pk=team.pk).update(credits=amount)
        UsageEvent.objects.create(
            team=team, kind=UsageEvent.Kind.GRANT, units=0, credits=amount,
            month=current_month(), model="", note=note[:200],
        )  # fmt: skip
    team.refresh_from_db(fields=["credits"])
