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
from datetime import UTC, date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.db.models.functions import TruncDate

from generations.core import quotas, rollups
from generations.models import Generation, Team, UsageDay, UsageEvent


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
    """The report of `month`; a month that is not "YYYY-MM" gives this month's. Days the
    team's usage is rolled up for are read from their summaries (core/rollups.py), the
    rest from the ledger and the generations themselves."""
    bounds = _month_bounds(month)
    if bounds is None:
        month = quotas.current_month()
        bounds = _month_bounds(month)
        assert bounds is not None
    year, mon, last_day = bounds
    report = MonthReport(
        month=month, used=quotas.month_usage(team, month), limit=team.monthly_limit,
        spent_usd=quotas.month_spent(team, month), budget_usd=team.plan.monthly_budget_usd,
    )  # fmt: skip
    first = date(year, mon, 1)
    after = first + timedelta(days=last_day)
    mark = rollups.roll(team)
    split = rollups.midnight(max(mark or first, first))
    totals = _Totals()
    if mark is not None and mark > first:
        for row in (
            UsageDay.objects.filter(team=team, month=month, day__lt=mark)
            .values("day", "user__email", *KEY_FIELDS, "model", "engine", "test_mode", "ledger")
            .annotate(
                units_sum=Sum("units"),
                usd_sum=Sum("usd"),
                n=Sum("submitted"),
                n_done=Sum("completed"),
                n_failed=Sum("failed"),
                secs=Sum("seconds"),
                n_costed=Sum("costed"),
                cost=Sum("cost_usd"),
            )  # fmt: skip
            .order_by()
        ):
            if row["ledger"]:
                totals.ledger(row, row["day"], row["units_sum"], row["usd_sum"])
            elif not row["test_mode"]:
                totals.outcomes(row, row["n"], row["n_done"], row["n_failed"], row["secs"])
                totals.cost(row["engine"], row["n_costed"], row["cost"])
    for row in (
        UsageEvent.objects.filter(team=team, month=month, created_at__gte=split)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "user__email", *KEY_FIELDS, "model")
        .annotate(units_sum=Sum("units"), usd_sum=Sum("usd"))
        .order_by()
    ):
        totals.ledger(row, row["day"], row["units_sum"], row["usd_sum"])
    for row in (
        Generation.objects.filter(
            team=team,
            test_mode=False,
            created_at__gte=split,
            created_at__lt=rollups.midnight(after),
        )
        .values("user__email", "engine")
        .annotate(**rollups.OUTCOMES)
        .order_by()
    ):
        totals.outcomes(row, row["n"], row["n_done"], row["n_failed"], row["secs"])
        totals.cost(row["engine"], row["n_costed"], row["cost"])
    totals.fill(report, [date(year, mon, d) for d in range(1, last_day + 1)])
    return report


KEY_FIELDS = ("api_key__prefix", "api_key__last4", "api_key__name")


@dataclass
class _Totals:
    """A month's sums as the report's tables group them, from summaries and live rows."""

    members: dict[str | None, dict[str, Any]] = field(default_factory=dict)
    charged: dict[str | None, list[Any]] = field(default_factory=dict)  # member: [units, usd]
    models: dict[str, list[Any]] = field(default_factory=dict)
    keys: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict)
    days: dict[date, int] = field(default_factory=dict)
    providers: dict[str, list[Any]] = field(default_factory=dict)

    @staticmethod
    def _add(table: dict[Any, list[Any]], key: Any, units: int, usd: object) -> None:
        sums = table.setdefault(key, [0, Decimal(0)])
        sums[0] += units
        sums[1] += _usd(usd)

    def ledger(self, row: dict[str, Any], day: date, units: int | None, usd: object) -> None:
        units = units or 0
        self._add(self.charged, row["user__email"], units, usd)
        self._add(self.models, row["model"], units, usd)
        key = (row["api_key__prefix"] or "", row["api_key__last4"] or "",
               row["api_key__name"] or "")  # fmt: skip
        self._add(self.keys, key, units, usd)
        self.days[day] = self.days.get(day, 0) + units

    def outcomes(self, row: dict[str, Any], n: int, done: int, failed: int, secs: int) -> None:
        stats = self.members.setdefault(
            row["user__email"], {"total": 0, "completed": 0, "failed": 0, "seconds": 0}
        )
        stats["total"] += n or 0
        stats["completed"] += done or 0
        stats["failed"] += failed or 0
        stats["seconds"] += secs or 0

    def cost(self, engine: str, count: int, usd: object) -> None:
        if engine and count:
            self._add(self.providers, engine, count, usd)

    def fill(self, report: MonthReport, days: list[date]) -> None:
        for email in sorted(self.charged, key=lambda e: (e is None, e or "")):
            units, usd = self.charged[email]
            stats = self.members.get(email, {})
            report.members.append({
                "member": email or "(deleted user)", "charged": units,
                "submitted": stats.get("total", 0), "completed": stats.get("completed", 0),
                "failed": stats.get("failed", 0), "seconds": stats.get("seconds", 0),
                "usd": _usd(usd),
            })  # fmt: skip
        report.models = [
            {"model": model, "charged": units, "usd": _usd(usd)}
            for model, (units, usd) in sorted(self.models.items(), key=lambda i: (-i[1][0], i[0]))
        ]
        report.keys = [
            {
                # Made in the browser, with no key: the "Dashboard" row.
                "key": f"{prefix}...{last4}" if prefix else "",
                "name": name if prefix else "Dashboard",
                "charged": units,
                "usd": _usd(usd),
            }
            for (prefix, last4, name), (units, usd) in sorted(
                self.keys.items(), key=lambda i: (-i[1][0], i[0])
            )
        ]
        report.providers = [
            {"provider": engine, "generations": count, "usd": _usd(usd)}
            for engine, (count, usd) in sorted(
                self.providers.items(), key=lambda i: (-_usd(i[1][1]), i[0])
            )
        ]
        report.days = [(day, self.days.get(day, 0)) for day in days]


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
