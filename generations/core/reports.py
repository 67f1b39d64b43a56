"""Usage reports from the ledger: per member, per model and per day of a month (UTC)."""

from __future__ import annotations

import calendar
import csv
from dataclasses import dataclass, field
from datetime import UTC, date

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.http import HttpResponse
from django.utils.html import escape

from generations.core import quotas
from generations.models import Generation, Team, UsageEvent

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 640, 180, 24


@dataclass
class MonthReport:
    month: str
    used: int
    limit: int
    members: list[dict[str, object]] = field(default_factory=list)
    models: list[dict[str, object]] = field(default_factory=list)
    keys: list[dict[str, object]] = field(default_factory=list)
    days: list[tuple[date, int]] = field(default_factory=list)


def _month_bounds(month: str) -> tuple[int, int, int]:
    year, mon = (int(x) for x in month.split("-"))
    return year, mon, calendar.monthrange(year, mon)[1]


def month_report(team: Team, month: str) -> MonthReport:
    try:
        year, mon, last_day = _month_bounds(month)
    except (ValueError, calendar.IllegalMonthError):
        month = quotas.current_month()
        year, mon, last_day = _month_bounds(month)
    events = UsageEvent.objects.filter(team=team, month=month)
    report = MonthReport(
        month=month, used=quotas.month_usage(team, month), limit=team.monthly_limit
    )
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
    for row in events.values("user__email").annotate(units=Sum("units")).order_by("user__email"):
        stats = per_member.get(row["user__email"], {})
        report.members.append(
            {
                "member": row["user__email"] or "(deleted user)",
                "charged": row["units"],
                "submitted": stats.get("total", 0),
                "completed": stats.get("completed", 0),
                "failed": stats.get("failed", 0),
                "seconds": stats.get("seconds") or 0,
            }
        )
    report.models = [
        {"model": row["model"], "charged": row["units"]}
        for row in events.values("model").annotate(units=Sum("units")).order_by("-units")
    ]
    report.keys = [
        {
            "key": f"{row['api_key__prefix']}...{row['api_key__last4']}"
            if row["api_key__prefix"]
            else "dashboard",
            "name": row["api_key__name"] or "",
            "charged": row["units"],
        }
        for row in events.values("api_key__prefix", "api_key__last4", "api_key__name")
        .annotate(units=Sum("units"))
        .order_by("-units")
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


def csv_response(report: MonthReport, *, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(["month", "member", "charged", "submitted", "completed", "failed",
                     "seconds_of_video"])  # fmt: skip
    for row in report.members:
        writer.writerow([report.month, row["member"], row["charged"], row["submitted"],
                         row["completed"], row["failed"], row["seconds"]])  # fmt: skip
    writer.writerow([])
    writer.writerow(["key", "key_name", "charged"])
    for row in report.keys:
        writer.writerow([row["key"], row["name"], row["charged"]])
    writer.writerow([])
    writer.writerow(["model", "charged"])
    for row in report.models:
        writer.writerow([row["model"], row["charged"]])
    writer.writerow([])
    writer.writerow(["day", "charged"])
    for day, units in report.days:
        writer.writerow([day.isoformat(), units])
    return response


def daily_chart_svg(report: MonthReport) -> str:
    """A bar chart of charged generations per day, as inline SVG (no JavaScript)."""
    peak = max((units for _, units in report.days), default=0) or 1
    slot = (CHART_WIDTH - 2 * CHART_PAD) / max(1, len(report.days))
    bars = []
    for i, (day, units) in enumerate(report.days):
        height = (CHART_HEIGHT - 2 * CHART_PAD) * max(0, units) / peak
        x = CHART_PAD + i * slot
        y = CHART_HEIGHT - CHART_PAD - height
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}" '
            f'rx="2"><title>{escape(day.isoformat())}: {units}</title></rect>'
        )
    return (
        f'<svg class="chart" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" '
        f'aria-label="Generations per day in {escape(report.month)}, peak {peak}">'
        f'<line x1="{CHART_PAD}" y1="{CHART_HEIGHT - CHART_PAD}" x2="{CHART_WIDTH - CHART_PAD}" '
        f'y2="{CHART_HEIGHT - CHART_PAD}" class="axis"/>'
        + "".join(bars)
        + f'<text x="{CHART_PAD}" y="{CHART_PAD - 8}" class="label">peak {peak}/day</text>'
        "</svg>"
    )
