"""Usage reports from the ledger: per member, per key, per model and per day of a month
(UTC), in generations and in US dollars, and per provider. The dashboard shows them
(dashboard/usage.py: the page, its chart and its CSV).

US dollars per member, key and model are the ledger's: each generation's rows sum to its
cost once settled (its estimate while it runs, nothing once refunded). Per provider they
are the recorded costs of the month's generations by the provider that served them (the
ledger's charge names the provider estimated at submit, which a failover may change)."""

from __future__ import annotations

import calendar
import re
import statistics
from dataclasses import dataclass, field
from datetime import UTC, date
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from generations.core import quotas
from generations.models import Generation, Team, UsageEvent


@dataclass
class MonthReport:
    month: str
    used: int
    limit: int
    members: list[dict[str, object]] = field(default_factory=list)
    models: list[dict[str, object]] = field(default_factory=list)
    keys: list[dict[str, object]] = field(default_factory=list)
    days: list[tuple[date, int]] = field(default_factory=list)
    providers: list[dict[str, object]] = field(default_factory=list)
    spent_usd: Decimal = Decimal(0)  # the month's counter: settled costs and reservations
    budget_usd: Decimal | None = None  # the plan's monthly budget (None: no budget)

    @property
    def budget_percent(self) -> int | None:
        if not self.budget_usd:
            return None
        return min(100, int(100 * self.spent_usd / self.budget_usd))


def _usd(value: object) -> Decimal:
    """A Sum of US dollars as the ledger keeps them (None, for no rows, is 0)."""
    return (value if isinstance(value, Decimal) else Decimal(str(value or 0))).quantize(
        Decimal("0.0001")
    )


MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def _month_bounds(month: str) -> tuple[int, int, int] | None:
    """(year, month, days) of a "YYYY-MM" month, None for anything else (whitespace, a
    year 0 or past 9999 that dates cannot hold, a 13th month)."""
    found = MONTH.fullmatch(month)
    if found is None or found.group(1) == "0000":
        return None
    year, mon = int(found.group(1)), int(found.group(2))
    return year, mon, calendar.monthrange(year, mon)[1]


def month_report(team: Team, month: str) -> MonthReport:
    """The report of `month`; a month that is not "YYYY-MM" gives this month's."""
    bounds = _month_bounds(month)
    if bounds is None:
        month = quotas.current_month()
        bounds = _month_bounds(month)
        assert bounds is not None
    year, mon, last_day = bounds
    events = UsageEvent.objects.filter(team=team, month=month)
    report = MonthReport(
        month=month, used=quotas.month_usage(team, month), limit=team.monthly_limit,
        spent_usd=quotas.month_spent(team, month), budget_usd=team.plan.monthly_budget_usd,
    )  # fmt: skip
    gens = Generation.objects.filter(
        team=team, created_at__year=year, created_at__month=mon, test_mode=False
    )
    per_member = {
        row["user__email"]: row
        for row in gens.values("user__email").annotate(
            total=Count("id"),
            completed=Count("id", filter=Q(status=Generation.Status.COMPLETED)),
            failed=Count("id", filter=Q(status=Generation.Status.FAILED)),
            seconds=Sum("duration", filter=Q(status=Generation.Status.COMPLETED)),
        )
    }
    member_rows = events.values("user__email").annotate(units=Sum("units"), usd=Sum("usd"))
    for row in member_rows.order_by("user__email"):
        stats = per_member.get(row["user__email"], {})
        report.members.append(
            {
                "member": row["user__email"] or "(deleted user)",
                "charged": row["units"],
                "submitted": stats.get("total", 0),
                "completed": stats.get("completed", 0),
                "failed": stats.get("failed", 0),
                "seconds": stats.get("seconds") or 0,
                "usd": _usd(row["usd"]),
            }
        )
    report.models = [
        {"model": row["model"], "charged": row["units"], "usd": _usd(row["usd"])}
        for row in events.values("model")
        .annotate(units=Sum("units"), usd=Sum("usd"))
        .order_by("-units", "model")
    ]
    report.keys = [
        {
            # Made in the browser, with no key: the "Dashboard" row.
            "key": f"{row['api_key__prefix']}...{row['api_key__last4']}"
            if row["api_key__prefix"]
            else "",
            "name": (row["api_key__name"] or "") if row["api_key__prefix"] else "Dashboard",
            "charged": row["units"],
            "usd": _usd(row["usd"]),
        }
        for row in events.values("api_key__prefix", "api_key__last4", "api_key__name")
        .annotate(units=Sum("units"), usd=Sum("usd"))
        .order_by("-units")
    ]
    report.providers = [
        {"provider": row["engine"], "generations": row["count"], "usd": _usd(row["usd"])}
        for row in gens.exclude(engine="")
        .filter(cost_usd__isnull=False)
        .values("engine")
        .annotate(count=Count("id"), usd=Sum("cost_usd"))
        .order_by("-usd", "engine")
    ]
    by_day = {
        row["day"]: row["units"]
        for row in events.annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(units=Sum("units"))
    }
    report.days = [
        (date(year, mon, d), by_day.get(date(year, mon, d), 0)) for d in range(1, last_day + 1)
    ]
    return report


# How many of a model's latest finished generations its typical time is taken from.
TYPICAL_OF_LAST = 20


def typical_seconds(model: str, resolution: str | None = None) -> int | None:
    """The median time, in whole seconds from pick-up to finish, of this server's latest
    finished generations of this model (at this resolution, when given); None before any."""
    rows = Generation.objects.filter(
        model=model, status=Generation.Status.COMPLETED, started_at__isnull=False,
        finished_at__isnull=False,
    )  # fmt: skip
    if resolution:
        rows = rows.filter(resolution=resolution)
    latest = rows.order_by("-finished_at").values_list("started_at", "finished_at")
    spans = [
        (finished - started).total_seconds()
        for started, finished in latest[:TYPICAL_OF_LAST]
        if started is not None and finished is not None  # (filtered above; for the types)
    ]
    return round(statistics.median(spans)) if spans else None
