from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def bare(request: HttpRequest) -> JsonResponse:
    """The baseline: a Django JSON view with no auth and no database."""
    return JsonResponse({"success": True, "status": "completed", "progress": 100})


urlpatterns = [
    path("bench/bare", bare),
    path("", include("videogen_site.urls")),
]
