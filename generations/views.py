"""Dashboard pages. The full dashboard comes with its own issue; this is the landing page."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from generations import catalog


def home(request: HttpRequest) -> HttpResponse:
    base = f"{request.scheme}://{request.get_host()}"
    return render(
        request,
        "home.html",
        {
            "models": catalog.MODELS,
            "available": {m.key for m in catalog.MODELS if catalog.is_available(m)},
            "base": base,
        },
    )


def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers: 200 when the database answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"ok": False, "database": "unreachable"}, status=503)
    return JsonResponse({"ok": True})
