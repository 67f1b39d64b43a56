from __future__ import annotations

from django.urls import path

from generations.api import videogenapi

urlpatterns = [
    path("generate", videogenapi.generate, name="api-generate"),
    path("status/<str:generation_id>", videogenapi.status, name="api-status"),
    path("generations", videogenapi.generations, name="api-generations"),
    path("generations/<str:generation_id>/cancel", videogenapi.cancel, name="api-cancel"),
    path("user", videogenapi.user, name="api-user"),
    path("models", videogenapi.models, name="api-models"),
    path("video/<str:generation_id>", videogenapi.video, name="api-video"),
    path("thumbnail/<str:generation_id>", videogenapi.thumbnail, name="api-thumbnail"),
    path("preview/<str:generation_id>", videogenapi.preview, name="api-preview"),
    path("spritesheet/<str:generation_id>", videogenapi.spritesheet, name="api-spritesheet"),
]
