"""The team's usage page: a month's report and daily chart, or the same report as CSV."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from generations.core import quotas, reports
from generations.dashboard.access import current_team


@login_required
@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    month = request.GET.get("month") or quotas.current_month()
    report = reports.month_report(team, month)
    if request.GET.get("format") == "csv":
        return reports.csv_response(report, filename=f"videogen-usage-{month}.csv")
    return render(
        request,
        "usage.html",
        {"team": team, "report": report, "chart": reports.daily_chart_svg(report)},
    )
