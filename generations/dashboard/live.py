"""Live status for the dashboard's lists: one small JSON poll per open page (History, the
Recent sidebar, the Generate page's queue strip) for all the generations it shows that are not
final yet, instead of a request per row. static/js/site.js polls it every LIVE_POLL_S seconds
while such a generation is on screen and the tab is visible, and stops once all are final."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from generations.core import reports
from generations.dashboard.access import current_team
from generations.models import Generation
from generations.vocabulary import FINAL_STATUSES, STATUS_CHOICES, WAITING_STATUSES

# The most generations one poll asks about (a page of History is 20).
MAX_IDS = 50
LABELS = dict(STATUS_CHOICES)


@login_required
@require_GET
def live_statuses(request: HttpRequest) -> JsonResponse:
    """{"generations": {id: {status, label, progress, final, position, elapsed_s, eta_s}}}
    for the current team's generations among `ids` (comma-separated; others are left out).

    `position`: how many waiting generations (every team's: the workers are shared) were
    submitted before it. `eta_s`: seconds until it should be done, from this server's recent
    times for its model and resolution (core/reports.typical_seconds); null before any."""
    ids = [i for i in request.GET.get("ids", "").split(",") if i][:MAX_IDS]
    rows = Generation.objects.filter(team=current_team(request), generation_id__in=ids).only(
        "generation_id", "status", "progress", "model", "resolution", "created_at", "started_at"
    )
    now = timezone.now()
    typical: dict[tuple[str, str], int | None] = {}
    configured = settings.Q_CLUSTER.get("workers", 1)
    workers = max(1, configured if isinstance(configured, int) else 1)
    answer = {}
    for gen in rows:
        key = (gen.model, gen.resolution)
        if key not in typical and gen.status not in FINAL_STATUSES:
            typical[key] = reports.typical_seconds(gen.model, gen.resolution)
        usual = typical.get(key)
        position = eta = elapsed = None
        if gen.status in WAITING_STATUSES:
            position = Generation.objects.filter(
                status__in=WAITING_STATUSES, created_at__lt=gen.created_at
            ).count()
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
