"""The operators' endpoints: the load balancer's health check (`/healthz`) and the Prometheus
metrics (`/metrics`). Not dashboard pages: no login, no session, no templates."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from generations.ops import health, metrics


def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers: 200 when the database, the broker and the storage answer (the
    status says "degraded" when the worker heartbeat is stale), 503 otherwise. See
    generations/ops/health.py for what each check does and why the worker is not critical."""
    code, body = health.run_checks()
    response = JsonResponse(body, status=code)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics (generations/ops/metrics.py); outsiders get a 404."""
    if not metrics.metrics_allowed(request):
        if settings.VIDEOGEN_METRICS_TOKEN and request.headers.get("Authorization"):
            return HttpResponse("Invalid metrics token.\n", status=401, content_type="text/plain")
        raise Http404("No such page")
    response = HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
