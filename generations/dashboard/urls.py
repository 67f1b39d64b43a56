"""The dashboard's URL patterns, included at the site root by videogen_site/urls.py.

Names and paths are what templates, tests and bookmarks use: keep them stable. Each action
on an object (cancel a generation, change a member's role...) is a POST to a URL of its
own, `<object>/<action>`."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpResponseBase
from django.urls import path

from generations.dashboard import (
    accounts,
    batches,
    gallery,
    generate,
    home,
    keys,
    library,
    queue,
    storyboard,
    teams,
    usage,
    verify,
    webhooks,
)

GENERATION = "generations/<str:generation_id>"
MEMBER = "teams/<uuid:code>/members/<int:user_id>"
BATCH = "batches/<str:batch_id>"
SEQUENCE = "sequences/<str:sequence_id>"

# URL name: (route, view). Grouped by page.
ROUTES: dict[str, tuple[str, Callable[..., HttpResponseBase]]] = {
    "home": ("", home.home),
    "docs": ("docs", home.docs),
    "signup": ("accounts/signup/", accounts.signup),
    # Before django.contrib.auth.urls (included after this file), whose login is unthrottled.
    "login": ("accounts/login/", accounts.LoginView.as_view()),
    # Generating, the team's generations, one, and what can be done to it.
    "generate": ("generate", generate.generate),
    "generate-fields": ("generate/fields", generate.generate_fields),
    "history": ("generations/", library.history),
    "generation": (GENERATION, library.generation),
    "generation-input": (f"{GENERATION}/input", library.generation_input),
    "generation-cancel": (f"{GENERATION}/cancel", library.generation_cancel),
    "generation-retry": (f"{GENERATION}/retry", library.generation_retry),
    "generation-extend": (f"{GENERATION}/extend", library.generation_extend),
    "generation-share": (f"{GENERATION}/share", library.generation_share),
    "generation-delete": (f"{GENERATION}/delete", library.generation_delete),
    # Takes: the team's batches, one batch's grid, its pick; the team's queue.
    "batches": ("batches/", batches.batch_list),
    "batch": (BATCH, batches.batch),
    "batch-pick": (f"{BATCH}/pick", batches.batch_pick),
    "batch-cancel": (f"{BATCH}/cancel", batches.batch_cancel),
    "queue": ("queue", queue.queue),
    "queue-pause": ("queue/pause", queue.queue_pause),
    # Sequences: the team's, the storyboard that makes one (before SEQUENCE, which would
    # take `new` for an id), one sequence's page and its cancel.
    "sequences": ("sequences/", storyboard.sequence_list),
    "sequence-new": ("sequences/new", storyboard.sequence_new),
    "sequence": (SEQUENCE, storyboard.sequence),
    "sequence-cancel": (f"{SEQUENCE}/cancel", storyboard.sequence_cancel),
    # Galleries: the team's own, its public one, and a shared video's pages.
    "gallery": ("gallery", gallery.gallery),
    "gallery-publish": ("gallery/publish", gallery.gallery_publish),
    "team-gallery": ("g/<slug:slug>", gallery.team_gallery),
    "shared": ("s/<str:token>", gallery.shared_page),
    "shared-embed": ("s/<str:token>/embed", gallery.shared_embed),
    "shared-file": ("s/<str:token>/<str:kind>", gallery.shared_file),
    # Provenance: anyone checks a video for our Content Credentials and watermark.
    "verify": ("verify", verify.verify_page),
    "verify-check": ("verify/check", verify.verify_check),
    # API keys, usage, webhooks.
    "api-keys": ("keys", keys.api_keys),
    "api-key-revoke": ("keys/<int:pk>/revoke", keys.api_key_revoke),
    "api-key-regenerate": ("keys/<int:pk>/regenerate", keys.api_key_regenerate),
    "usage": ("usage", usage.usage),
    "webhooks": ("webhooks", webhooks.webhooks_page),
    "webhook-endpoint-add": ("webhooks/endpoints", webhooks.endpoint_add),
    "webhook-endpoint-remove": ("webhooks/endpoints/<int:pk>/remove", webhooks.endpoint_remove),
    "webhook-secret-rotate": ("webhooks/secret/rotate", webhooks.secret_rotate),
    "webhook-secret-reveal": ("webhooks/secret/reveal", webhooks.secret_reveal),
    # Teams, their members, invitations.
    "teams": ("teams", teams.teams),
    "team-switch": ("teams/switch", teams.team_switch),
    "team": ("teams/<uuid:code>", teams.team),
    "team-invite": ("teams/<uuid:code>/invite", teams.team_invite),
    "team-member-role": (f"{MEMBER}/role", teams.team_member_role),
    "team-member-remove": (f"{MEMBER}/remove", teams.team_member_remove),
    "invitation": ("invite/<str:token>", teams.invitation),
}
urlpatterns = [path(route, view, name=name) for name, (route, view) in ROUTES.items()]
