"""Writes about a team's finished videos: sharing them by link, publishing the team's
gallery, deleting them."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from generations.core import lifecycle, rollups
from generations.ids import random_base62
from generations.models import Generation, Team

SHARE_TOKEN_CHARS = 22  # 131 bits: the link is the only credential of a shared page


def generation_share(*, generation: Generation) -> str:
    """Make (or keep) the public page of a finished generation; returns its token."""
    if generation.share_token:
        return generation.share_token
    token = random_base62(SHARE_TOKEN_CHARS)
    Generation.objects.filter(pk=generation.pk, share_token=None).update(
        share_token=token, shared_at=timezone.now()
    )
    generation.refresh_from_db(fields=["share_token", "shared_at"])
    assert generation.share_token is not None
    return generation.share_token


def generation_unshare(*, generation: Generation) -> None:
    Generation.objects.filter(pk=generation.pk).update(share_token=None, shared_at=None)
    generation.share_token = None


def generation_delete(*, generation: Generation) -> None:
    """Remove a generation and its files. A job still running is canceled first."""
    if not generation.is_final:
        lifecycle.cancel(generation=generation)
    for name in Generation.FILE_FIELDS:
        stored = getattr(generation, name)
        if stored:
            stored.delete(save=False)
    for export in generation.exports.exclude(file=""):
        export.file.delete(save=False)  # the rows go with the generation (cascade)
    with transaction.atomic():
        rollups.forget(generation)  # out of its day's usage summary, if rolled up
        generation.delete()


def team_gallery_set(*, team: Team, public: bool) -> None:
    """Publish (or hide) the team's gallery of shared videos at /g/<slug>."""
    if public and not team.gallery_slug:
        team.gallery_slug = f"{slugify(team.name)[:24] or 'team'}-{random_base62(8).lower()}"
    team.gallery_public = public
    team.save(update_fields=["gallery_public", "gallery_slug"])
