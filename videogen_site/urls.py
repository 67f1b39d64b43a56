from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import include, path

from generations import views
from generations.api import framepack, openai, openapi


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/v1/"))


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {"success": False, "error": {"code": "not_found", "message": "No such endpoint."}},
            status=404,
        )
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {
                "success": False,
                "error": {"code": "internal_error", "message": "Internal server error."},
            },
            status=500,
        )
    return render(request, "500.html", status=500)


handler404 = not_found
handler500 = server_error

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics_view, name="metrics"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),  # throttled
    path("accounts/", include("django.contrib.auth.urls")),
    path("generate", views.generate, name="generate"),
    path("generate/fields", views.generate_fields, name="generate-fields"),
    path("generations/", views.history, name="history"),
    path("generations/<str:generation_id>", views.generation, name="generation"),
    path(
        "generations/<str:generation_id>/cancel",
        views.generation_cancel,
        name="generation-cancel",
    ),
    path("generations/<str:generation_id>/retry", views.generation_retry, name="generation-retry"),
    path("generations/<str:generation_id>/share", views.generation_share, name="generation-share"),
    path(
        "generations/<str:generation_id>/delete", views.generation_delete, name="generation-delete"
    ),
    path("gallery", views.gallery, name="gallery"),
    path("gallery/publish", views.gallery_publish, name="gallery-publish"),
    path("s/<str:token>", views.shared_page, name="shared"),
    path("s/<str:token>/<str:kind>", views.shared_file, name="shared-file"),
    path("g/<slug:slug>", views.team_gallery, name="team-gallery"),
    path("keys", views.api_keys, name="api-keys"),
    path("keys/<int:pk>/revoke", views.api_key_revoke, name="api-key-revoke"),
    path("keys/<int:pk>/regenerate", views.api_key_regenerate, name="api-key-regenerate"),
    path("usage", views.usage, name="usage"),
    path("webhooks", views.webhooks_page, name="webhooks"),
    path("teams", views.teams, name="teams"),
    path("teams/switch", views.team_switch, name="team-switch"),
    path("teams/<uuid:code>", views.team, name="team"),
    path("invite/<str:token>", views.invitation, name="invitation"),
    path("docs", views.docs, name="docs"),
    path("api/openapi.json", openapi.openapi_json, name="openapi"),
    path("api/docs", openapi.api_docs, name="api-docs"),
    path("api/v1/", include("generations.api.urls")),
    path("v1/generate-video", framepack.generate_video, name="framepack-generate"),
    path("v1/videos", openai.videos, name="openai-videos"),
    path("v1/videos/<str:video_id>", openai.video, name="openai-video"),
    path("v1/videos/<str:video_id>/content", openai.content, name="openai-content"),
    path("v1/videos/<str:video_id>/remix", openai.remix, name="openai-remix"),
    path("admin/", admin.site.urls),
]
