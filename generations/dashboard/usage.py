"""The team's usage page: a month's report and daily chart, or the same report as CSV."""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import escape
from django.views.decorators.http import require_GET

from generations.core import quotas, reports
from generations.core.reports import MonthReport
from generations.dashboard.access import current_team

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 640, 180, 24


@login_required
@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    month = request.GET.get("month") or quotas.current_month()
    report = reports.month_report(team, month)
    if request.GET.get("format") == "csv":
        # The report's month, not the query's: a bad one fell back to this month there.
        return csv_response(report, filename=f"videogen-usage-{report.month}.csv")
    return render(
        request,
        "usage.html",
        {"team": team, "report": report, "chart": daily_chart_svg(report)},
    )


def csv_response(report: MonthReport, *, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(["month", "member", "charged", "submitted", "completed", "failed",
                     "seconds_of_video", "usd"])  # fmt: skip
    for row in report.members:
        writer.writerow([report.month, row["member"], row["charged"], row["submitted"],
                         row["completed"], row["failed"], row["seconds"], row["usd"]])  # fmt: skip
    writer.writerow([])
    writer.writerow(["key", "key_name", "charged", "usd"])
    for row in report.keys:
        writer.writerow([row["key"], row["name"], row["charged"], row["usd"]])
    writer.writerow([])
    writer.writerow(["model", "charged", "usd"])
    for row in report.models:
        writer.writerow([row["model"], row["charged"], row["usd"]])
    writer.writerow([])
    writer.writerow(["provider", "generations", "usd"])
    for row in report.providers:
        writer.writerow([row["provider"], row["generations"], row["usd"]])
    writer.writerow([])
    writer.writerow(["team_spent_usd", "monthly_budget_usd"])
    budget = "" if report.budget_usd is None else report.budget_usd
    writer.writerow([report.spent_usd, budget])
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
    # Dates under the axis: the 1st, every 7 days after, and the last day of the month.
    last = len(report.days) - 1
    ticks = [
        f'<text x="{CHART_PAD + (i + 0.35) * slot:.1f}" y="{CHART_HEIGHT - 6}" class="label" '
        f'text-anchor="middle">{day:%b} {day.day}</text>'
        for i, (day, _) in enumerate(report.days)
        if i % 7 == 0 and last - i >= 3 or i == last
    ]
    return (
        f'<svg class="chart" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" '
        f'aria-label="Generations per day in {escape(report.month)}, peak {peak}">'
        f'<line x1="{CHART_PAD}" y1="{CHART_HEIGHT - CHART_PAD}" x2="{CHART_WIDTH - CHART_PAD}" '
        f'y2="{CHART_HEIGHT - CHART_PAD}" class="axis"/>'
        + "".join(bars)
        + "".join(ticks)
        + f'<text x="{CHART_PAD}" y="{CHART_PAD - 8}" class="label">peak {peak}/day</text>'
        "</svg>"
    )
