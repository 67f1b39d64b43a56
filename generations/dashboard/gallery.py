"""Galleries and sharing: the team's gallery and its publishing switch, and the public side
(a shared video's page, embeddable player and files; a team's published gallery)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generations import catalog
from generations.core import library
from generations.dashboard import paging
from generations.dashboard.access import current_team
from generations.models import Generation, Team
from generations.web import csp
from generations.web.files import serve_file

GALLERY_PAGE_SIZE = 24


@login_required
@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    # Videos whose files the retention policy deleted stay in the history, not here.
    rows = Generation.objects.filter(
        team=team, status=Generation.Status.COMPLETED, files_purged_at__isnull=True
    ).select_related("batch")
    model = request.GET.get("model", "")
    if model:
        rows = rows.filter(model=model)
    sort = request.GET.get("sort", "")
    if sort == "shared":  # shared ones first: never-shared rows sort as shared at the epoch
        rows = rows.annotate(shared_rank=Coalesce("shared_at", Value(NEVER)))
    page, pager = paging.page(
        request, rows, GALLERY_SORTS.get(sort, GALLERY_SORTS["newest"])[1], GALLERY_PAGE_SIZE
    )
    names = {m.key: m.name for m in catalog.MODELS}
    return render(
        request,
        "gallery.html",
        {"page": page, "pager": pager, "team": team, "models": catalog.MODELS, "names": names,
         "sorts": [(key, label) for key, (label, _) in GALLERY_SORTS.items()],
         "filters": {"model": model, "sort": sort if sort in GALLERY_SORTS else "newest"}},
    )  # fmt: skip


# The gallery's orders: key -> (label, ORDER BY), each one way and ending with the primary
# key (keyset pages, dashboard/paging.py).
GALLERY_SORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "newest": ("Newest", ("-finished_at", "-pk")),
    "oldest": ("Oldest", ("finished_at", "pk")),
    "longest": ("Longest", ("-duration", "-finished_at", "-pk")),
    "shared": ("Shared first", ("-shared_rank", "-finished_at", "-pk")),
}
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@login_required
@require_POST
def gallery_publish(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    library.team_gallery_set(team=team, public=request.POST.get("public") == "1")
    return redirect("gallery")


def _shared(token: str) -> Generation:
    gen = Generation.objects.filter(share_token=token, status=Generation.Status.COMPLETED).first()
    if gen is None or not token:
        raise Http404("This link does not exist or is no longer shared.")
    return gen


@require_GET
def shared_page(request: HttpRequest, token: str) -> HttpResponse:
    """The public page of a shared video: works logged out, with OpenGraph/Twitter tags and
    its AI disclosure (disclosure())."""
    gen = _shared(token)
    model = catalog.get_model(gen.model)
    procedural = model is not None and model.procedural
    context = {"gen": gen, "token": token, "procedural": procedural, **disclosure(request, gen)}
    return render(request, "shared.html", context)


@require_GET
def shared_embed(request: HttpRequest, token: str) -> HttpResponse:
    """The bare player of a shared video, for an <iframe> on any site (and X's player card),
    with the same disclosure as its page."""
    gen = _shared(token)
    context = {"gen": gen, "token": token, **disclosure(request, gen)}
    response = render(request, "shared_embed.html", context)
    response["Content-Security-Policy"] = csp.EMBED_POLICY
    response.xframe_options_exempt = True
    return response


def disclosure(request: HttpRequest, gen: Generation) -> dict[str, Any]:
    """A shared video says it is AI-made (EU AI Act Art. 50), in words ("AI-generated with
    <model>", a link to the /verify check of its Content Credentials) and for machines: a
    schema.org VideoObject in JSON-LD with the IPTC digital source type its C2PA manifest
    names. A `<script type="application/ld+json">` is a data block, never run, so the pages'
    CSP (no inline script) leaves it alone."""
    token = gen.share_token or ""
    base = settings.VIDEOGEN_PUBLIC_URL or f"{request.scheme}://{request.get_host()}"
    model = catalog.get_model(gen.model)
    credit = f"AI-generated with {model.name if model else gen.model}"
    made = gen.finished_at or gen.created_at
    video_object = {
        "@context": "https://schema.org",
        "@type": "VideoObject",
        "name": gen.prompt[:140],
        "description": f"{credit} from a text prompt; what it shows did not happen.",
        "contentUrl": base + reverse("shared-file", args=[token, "video.mp4"]),
        "thumbnailUrl": base + reverse("shared-file", args=[token, "poster.jpg"]),
        "embedUrl": base + reverse("shared-embed", args=[token]),
        "uploadDate": made.isoformat(),
        "duration": f"PT{gen.duration}S",
        "width": gen.width,
        "height": gen.height,
        "digitalSourceType": catalog.digital_source_type(gen.model, gen.engine),
        "creditText": credit,
    }
    return {"base": base, "credit": credit, "video_object": json_ld(video_object)}


def json_ld(data: dict[str, Any]) -> SafeString:
    """JSON for inside a <script> element: `<`, `>` and `&` escaped, so no text (a prompt)
    can close the element (as Django's json_script does)."""
    text = json.dumps(data, ensure_ascii=False)
    text = text.replace("<", "\\u003C").replace(">", "\\u003E").replace("&", "\\u0026")
    return mark_safe(text)  # noqa: S308 (escaped above)


@require_http_methods(["GET", "HEAD"])
def shared_file(request: HttpRequest, token: str, kind: str) -> HttpResponseBase:
    gen = _shared(token)
    if kind == "video.mp4":
        return serve_file(request, gen.video, "video/mp4", etag=f"{token}-v")
    stored = gen.preview if kind == "preview.webp" else gen.poster
    if kind not in ("poster.jpg", "preview.webp") or not stored:
        raise Http404("No such file")
    content_type = "image/webp" if stored.name.endswith(".webp") else "image/jpeg"
    return serve_file(request, stored, content_type, etag=f"{token}-{kind}")


@require_GET
def team_gallery(request: HttpRequest, slug: str) -> HttpResponse:
    team = Team.objects.filter(gallery_slug=slug, gallery_public=True).first()
    if team is None:
        raise Http404("No such gallery")
    rows = Generation.objects.filter(
        team=team, status=Generation.Status.COMPLETED, share_token__isnull=False
    )
    page, pager = paging.page(request, rows, ("-shared_at", "-pk"), GALLERY_PAGE_SIZE)
    return render(request, "team_gallery.html", {"team": team, "page": page, "pager": pager})
