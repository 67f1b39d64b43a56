from __future__ import annotations

import sys
from pathlib import Path

from django.contrib import admin
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import include, path
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from generations.api import framepack, openai, openapi
from generations.dashboard import estimate, live
from generations.errors import DATABASE_DOWN
from generations.ops import endpoints

# What a 503 for an unreachable database or cache asks clients to wait before retrying.
UNAVAILABLE_RETRY_AFTER_S = 5
RedisError = (RedisConnectionError, RedisTimeoutError)


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/v1/"))


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {"success": False, "error": {"code": "not_found", "message": "No such endpoint."}},
            status=404,
        )
    return render(request, "404.html", status=404)


def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on every page that names no icon of its own (the
    embed page, Swagger UI, the admin): the site's icon, cached for a day."""
    found = finders.find("favicon.ico")
    assert isinstance(found, str)
    response = HttpResponse(Path(found).read_bytes(), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """Django calls this while handling the exception, so sys.exc_info() is the error. A
    database that cannot be reached (stopped, restarting, failing over) is a 503 that says
    so and when to retry, not an internal error; nothing here touches the database."""
    error = sys.exc_info()[1]
    if isinstance(error, DATABASE_DOWN):
        status, code = 503, "database_unavailable"
        message = (
            "The database is unavailable right now. Retry in a few seconds; a create request "
            "retried with the same Idempotency-Key is never duplicated."
        )
    elif isinstance(error, RedisError):  # only what needs the cache fails closed: logins
        status, code = 503, "cache_unavailable"
        message = "The cache is unavailable right now. Retry in a few seconds."
    else:
        status, code, message = 500, "internal_error", "Internal server error."
    response: HttpResponse
    if _wants_json(request):
        body = {"success": False, "error": {"code": code, "message": message}}
        response = JsonResponse(body, status=status)
    else:
        response = render(request, f"{status}.html", status=status)
    if status == 503:
        response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_S)
    return response


handler404 = not_found
handler500 = server_error

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    # Operator endpoints (generations/ops/endpoints.py).
    path("healthz", endpoints.healthz, name="healthz"),
    path("metrics", endpoints.metrics_view, name="metrics"),
    # Before django.contrib.auth.urls: the dashboard's own (throttled) login view wins.
    path("", include("generations.dashboard.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/openapi.json", openapi.openapi_json, name="openapi"),
    path("api/docs", openapi.api_docs, name="api-docs"),
    path("api/v1/", include("generations.api.urls")),
    # The dashboard's live status, served through the lean API handler (many pages poll it).
    path("api/dashboard/live", live.live_statuses, name="dashboard-live"),
    # The Generate form's live estimate, served the same way.
    path("api/dashboard/estimate", estimate.form_estimate, name="dashboard-estimate"),
    path("v1/generate-video", framepack.generate_video, name="framepack-generate"),
    path("v1/videos", openai.videos, name="openai-videos"),
    path("v1/videos/<str:video_id>", openai.video, name="openai-video"),
    path("v1/videos/<str:video_id>/content", openai.content, name="openai-content"),
    path("v1/videos/<str:video_id>/remix", openai.remix, name="openai-remix"),
    path("admin/", admin.site.urls),
]
