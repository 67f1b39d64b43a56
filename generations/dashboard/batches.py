"""Takes (CONTRACT 7): the team's batches, one batch's grid (played in sync by
static/js/batch.js), marking the pick and canceling what has not finished."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from generations.core import accounts, batches
from generations.dashboard import paging
from generations.dashboard.access import current_team, request_user, team_batch_or_404
from generations.dashboard.confirm import ask_first
from generations.errors import ApiError
from generations.models import Batch, Generation
from generations.vocabulary import FINAL_STATUSES, Status

BATCHES_PAGE_SIZE = 20
# Takes that cannot be the pick: nothing to choose from.
UNPICKABLE = (Status.FAILED, Status.CANCELED)


@login_required
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    rows = (
        Batch.objects.filter(team=current_team(request))
        .select_related("pick", "user")
        .annotate(
            n_items=Count("items"),
            n_done=Count("items", filter=Q(items__status__in=FINAL_STATUSES)),
        )
    )
    page, pager = paging.page(request, rows, ("-created_at", "-pk"), BATCHES_PAGE_SIZE)
    return render(request, "batches.html", {"page": page, "pager": pager})


@login_required
@require_GET
def batch(request: HttpRequest, batch_id: str) -> HttpResponse:
    found = team_batch_or_404(request, batch_id)
    items = list(found.items.select_related("user").order_by("pk"))
    unfinished = sum(1 for g in items if not g.is_final)
    return render(
        request,
        "batch.html",
        {
            "batch": found,
            "items": items,
            "unfinished": unfinished,
            "done": len(items) - unfinished,
            "longest": max((g.duration for g in items), default=1),
            "unpickable": UNPICKABLE,
        },
    )


@login_required
@require_POST
def batch_pick(request: HttpRequest, batch_id: str) -> HttpResponse:
    """Marks the take `generation_id` as the pick; an empty one clears it."""
    found = team_batch_or_404(request, batch_id)
    if (refused := _viewer_refused(request, found, "choosing the pick")) is not None:
        return refused
    chosen = request.POST.get("generation_id", "")
    gen = None
    if chosen:
        gen = Generation.objects.filter(batch=found, generation_id=chosen).first()
        if gen is None:
            messages.error(request, f"{chosen} is not a take of this batch.")
            return redirect("batch", batch_id=found.batch_id)
    batches.batch_pick(batch=found, generation=gen)
    messages.info(request, "Marked as the pick." if gen else "No pick now.")
    return redirect("batch", batch_id=found.batch_id)


@login_required
@require_POST
def batch_cancel(request: HttpRequest, batch_id: str) -> HttpResponse:
    found = team_batch_or_404(request, batch_id)
    if (refused := _viewer_refused(request, found, "canceling takes")) is not None:
        return refused
    unfinished = found.items.exclude(status__in=FINAL_STATUSES).count()
    asked = ask_first(request, f"Cancel the {unfinished} takes of this batch that have not "
                               "finished? Each is refunded.", "Cancel the rest")  # fmt: skip
    if asked is not None:
        return asked
    canceled = batches.batch_cancel(batch=found)
    messages.info(request, f"Canceled {canceled} takes; each was refunded.")
    return redirect("batch", batch_id=found.batch_id)


def _viewer_refused(request: HttpRequest, found: Batch, action: str) -> HttpResponse | None:
    """Viewers look; members and up choose and cancel. The refusal, or None."""
    try:
        accounts.require_role(team=found.team, user=request_user(request),
                              roles=accounts.CREATORS, action=action)  # fmt: skip
    except ApiError as exc:
        messages.error(request, exc.message)
        return redirect("batch", batch_id=found.batch_id)
    return None
