"""Live status for the dashboard's lists: one small JSON poll per open page (History, the
Recent sidebar, the Generate page's queue strip) for all the generations it shows that are not
final yet, instead of a request per row. static/js/site.js polls it every 2 s while one is
running (5 s while all only wait) and the tab is visible, and stops once all are final.

Every open dashboard polls, so this is served like the API: under /api/ through the lean
handler (videogen_site/asgi.py) on a DB thread, not through the dashboard's full middleware.
It reads the session itself, as Django's authentication middleware would (the session, then
the user, whose password hash the session must still match), and answers 401 without one."""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user
from django.core.cache import cache
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils import timezone

from generations.core import fairshare, reports
from generations.dashboard.access import current_team
from generations.models import Generation, User
from generations.vocabulary import FINAL_STATUSES, STATUS_CHOICES, WAITING_STATUSES
from generations.web.dbthreads import run_in_db_thread

# The most generations one poll asks about (a page of History is 20; a batch page holds up
# to 64 takes, core/batches.MAX_ITEMS).
MAX_IDS = 64
LABELS = dict(STATUS_CHOICES)
# A model's typical time is the same for every poll in this window (one query, not one per
# poll of every open dashboard).
TYPICAL_CACHE_S = 30


async def live_statuses(request: HttpRequest) -> HttpResponseBase:
    if request.method != "GET":
        return JsonResponse({"error": "Use GET."}, status=405, headers={"Allow": "GET"})
    return await run_in_db_thread(_answer, request)


def _answer(request: HttpRequest) -> JsonResponse:
    """{"generations": {id: {status, label, progress, final, position, elapsed_s, eta_s}}}
    for the current team's generations among `ids` (comma-separated; others are left out).

    `position`: how many generations go before it (core/fairshare.positions: those handed
    to the workers, and its own team's ahead of it in line). `eta_s`: seconds until it
    should be done, from this server's recent times for its model and resolution
    (core/reports.typical_seconds); null before any."""
    if session_user(request) is None:
        return JsonResponse({"error": "Log in first."}, status=401)
    ids = [i for i in request.GET.get("ids", "").split(",") if i][:MAX_IDS]
    rows = list(
        Generation.objects.filter(team=current_team(request), generation_id__in=ids).only(
            "generation_id",
            "status",
            "progress",
            "model",
            "resolution",
            "created_at",
            "started_at",
            "queued_at",
            "lane",
        )  # fmt: skip
    )
    team = current_team(request)
    positions = fairshare.positions(team.pk, [g for g in rows if g.status in WAITING_STATUSES])
    now = timezone.now()
    configured = settings.Q_CLUSTER.get("workers", 1)
    workers = max(1, configured if isinstance(configured, int) else 1)
    answer = {}
    for gen in rows:
        usual = None if gen.status in FINAL_STATUSES else _typical(gen.model, gen.resolution)
        position = eta = elapsed = None
        if gen.status in WAITING_STATUSES:
            position = positions[gen.pk]
            elapsed = round((now - gen.created_at).total_seconds())
            if usual is not None:
                eta = usual * (1 + position // workers)
        elif gen.status not in FINAL_STATUSES:
            elapsed = round((now - (gen.started_at or gen.created_at)).total_seconds())
            if usual is not None:
                eta = max(1, usual - elapsed)
        answer[gen.generation_id] = {
            "status": gen.status,
            "label": LABELS.get(gen.status, gen.status),
            "progress": gen.progress,
            "final": gen.status in FINAL_STATUSES,
            "position": position,
            "elapsed_s": elapsed,
            "eta_s": eta,
        }
    return JsonResponse({"generations": answer})


def _typical(model: str, resolution: str) -> int | None:
    key = f"videogen:typical:{model}:{resolution}"
    found = cache.get(key)
    if found is None:
        found = reports.typical_seconds(model, resolution)
        cache.set(key, -1 if found is None else found, TYPICAL_CACHE_S)
    return None if found in (None, -1) else int(found)


def session_user(request: HttpRequest) -> User | None:
    """The logged-in user of a session cookie, set on the request, for the dashboard's few
    routes under /api/ (the lean handler runs no session middleware); None without one."""
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
    user = get_user(request)
    if not isinstance(user, User):
        return None
    request.user = user
    return user
