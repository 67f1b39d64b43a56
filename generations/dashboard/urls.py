"""The dashboard's URL patterns, included at the site root by videogen_site/urls.py.

Names and paths are what templates, tests and bookmarks use: keep them stable."""

from __future__ import annotations

from django.urls import path

from generations.dashboard import (
    accounts,
    gallery,
    generate,
    home,
    keys,
    library,
    teams,
    usage,
    webhooks,
)

urlpatterns = [
    path("", home.home, name="home"),
    path("accounts/signup/", accounts.signup, name="signup"),
    # Before django.contrib.auth.urls (included after this file), whose login is unthrottled.
    path("accounts/login/", accounts.LoginView.as_view(), name="login"),
    path("generate", generate.generate, name="generate"),
    path("generate/fields", generate.generate_fields, name="generate-fields"),
    path("generations/", library.history, name="history"),
    path("generations/<str:generation_id>", library.generation, name="generation"),
    path(
        "generations/<str:generation_id>/cancel",
        library.generation_cancel,
        name="generation-cancel",
    ),
    path(
        "generations/<str:generation_id>/retry", library.generation_retry, name="generation-retry"
    ),
    path(
        "generations/<str:generation_id>/share", library.generation_share, name="generation-share"
    ),
    path(
        "generations/<str:generation_id>/delete",
        library.generation_delete,
        name="generation-delete",
    ),
    path("gallery", gallery.gallery, name="gallery"),
    path("gallery/publish", gallery.gallery_publish, name="gallery-publish"),
    path("s/<str:token>", gallery.shared_page, name="shared"),
    path("s/<str:token>/embed", gallery.shared_embed, name="shared-embed"),
    path("s/<str:token>/<str:kind>", gallery.shared_file, name="shared-file"),
    path("g/<slug:slug>", gallery.team_gallery, name="team-gallery"),
    path("keys", keys.api_keys, name="api-keys"),
    path("keys/<int:pk>/revoke", keys.api_key_revoke, name="api-key-revoke"),
    path("keys/<int:pk>/regenerate", keys.api_key_regenerate, name="api-key-regenerate"),
    path("usage", usage.usage, name="usage"),
    path("webhooks", webhooks.webhooks_page, name="webhooks"),
    path("webhooks/endpoints", webhooks.endpoint_add, name="webhook-endpoint-add"),
    path(
        "webhooks/endpoints/<int:pk>/remove",
        webhooks.endpoint_remove,
        name="webhook-endpoint-remove",
    ),
    path("webhooks/secret/rotate", webhooks.secret_rotate, name="webhook-secret-rotate"),
    path("webhooks/secret/reveal", webhooks.secret_reveal, name="webhook-secret-reveal"),
    path("teams", teams.teams, name="teams"),
    path("teams/switch", teams.team_switch, name="team-switch"),
    path("teams/<uuid:code>", teams.team, name="team"),
    path("teams/<uuid:code>/invite", teams.team_invite, name="team-invite"),
    path(
        "teams/<uuid:code>/members/<int:user_id>/role",
        teams.team_member_role,
        name="team-member-role",
    ),
    path(
        "teams/<uuid:code>/members/<int:user_id>/remove",
        teams.team_member_remove,
        name="team-member-remove",
    ),
    path("invite/<str:token>", teams.invitation, name="invitation"),
    path("docs", home.docs, name="docs"),
]
