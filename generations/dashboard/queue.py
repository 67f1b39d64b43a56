"""The team's queue: what waits (with its place in line, core/fairshare.positions) and what
runs, and the switch that pauses the team's queue or resumes it (owners and admins)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from generations.core import accounts, fairshare
from generations.dashboard.access import current_team, request_user
from generations.errors import ApiError
from generations.models import Generation
from generations.rendering.hosted.state import HostedState
from generations.vocabulary import WAITING_STATUSES, Status

# The most waiting generations the page lists (positions() counts with one aggregate per row).
MAX_LISTED = 100


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    live = Generation.objects.filter(team=team).select_related("batch", "user")
    running = list(live.filter(status=Status.IN_PROGRESS).order_by("started_at", "pk"))
    waiting_rows = live.filter(status__in=WAITING_STATUSES)
    waiting = list(waiting_rows.order_by("status", "lane", "created_at", "pk")[:MAX_LISTED])
    places = fairshare.positions(team.pk, waiting)
    waiting.sort(key=lambda g: (places[g.pk], g.pk))
    mine = accounts.membership_get(team=team, user=request_user(request))
    return render(
        request,
        "queue.html",
        {
            "team": team,
            # A hosted job's latest word: the provider's queue or log line, or that it
            # waits for a free slot of the provider (routing/pools.py).
            "running": [(g, HostedState.load(g.engine_handle).detail) for g in running],
            "waiting": [(places[g.pk], g) for g in waiting],
            "more": max(0, waiting_rows.count() - len(waiting)),
            "can_manage": mine is not None and mine.role in accounts.MANAGERS,
        },
    )


@login_required
@require_POST
def queue_pause(request: HttpRequest) -> HttpResponse:
    """`paused=1` pauses the team's queue, `paused=0` resumes it."""
    team = current_team(request)
    paused = request.POST.get("paused") == "1"
    action = "pausing the team's queue" if paused else "resuming the team's queue"
    try:
        accounts.require_role(team=team, user=request_user(request), roles=accounts.MANAGERS,
                              action=action)  # fmt: skip
    except ApiError as exc:
        messages.error(request, exc.message)
        return redirect("queue")
    fairshare.team_queue_pause(team=team, paused=paused)
    messages.info(request, "Paused: nothing new starts until you resume." if paused
                  else "Resumed: waiting work starts again.")  # fmt: skip
    return redirect("queue")
