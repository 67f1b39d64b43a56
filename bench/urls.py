from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def bare(request: HttpRequest) -> JsonResponse:
    """The baseline: a Django JSON view with no auth and no database."""
    return JsonResponse({"success": True, "status": "completed", "progress": 100})


urlpatterns = [
    # Served through the full middleware stack (dashboard) and through the API's lean one.
    path("bench/bare", bare),
    path("api/bench/bare", bare),
    path("", include("videogen_site.urls")),
]
