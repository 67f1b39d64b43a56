"""The public pages: the home page (the logged-in go straight to generating) and the docs."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET
from markdown_it import MarkdownIt

from generations import catalog
from generations.models import Generation
from generations.rendering import registry

HOME_VIDEOS = 8


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("generate")
    available = [m for m in catalog.MODELS if registry.is_available(m)]
    # The newest videos of the teams that published their gallery: public by their choice.
    public = Generation.objects.filter(
        status=Generation.Status.COMPLETED, share_token__isnull=False, team__gallery_public=True
    ).order_by("-shared_at")[:HOME_VIDEOS]
    return render(
        request,
        "home.html",
        {
            "available": available,
            "more": len(catalog.MODELS) - len(available),
            "videos": public,
            "base": f"{request.scheme}://{request.get_host()}",
            "signup_open": settings.VIDEOGEN_SIGNUP == "open",
        },
    )


@require_GET
def docs(request: HttpRequest) -> HttpResponse:
    """The API reference: written in Markdown (templates/docs.md), shown as HTML, and offered
    as that Markdown to copy for an AI assistant."""
    base = settings.VIDEOGEN_PUBLIC_URL or f"{request.scheme}://{request.get_host()}"
    available = {m.key for m in catalog.MODELS if registry.is_available(m)}
    rendered = render_to_string(
        "docs.md", {"base": base, "models": catalog.MODELS, "available": available}
    )
    # A plain str, not the SafeString render_to_string returns: as Markdown it is text, to be
    # escaped wherever it goes into HTML (`<key>` was parsed as a tag and vanished).
    markdown = str.__str__(rendered)
    return render(
        request, "docs.html", {"base": base, "markdown": markdown, "html": markdown_html(markdown)}
    )


# CommonMark with GitHub's tables; raw HTML in the source is shown as text, never passed on.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_html(text: str) -> SafeString:
    """The Markdown as HTML, its headings one level down (the page has its own <h1>) and each
    with an id to link to (#post-api-v1-generate)."""
    tokens = _MARKDOWN.parse(text)
    for index, token in enumerate(tokens):
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + 1)}"
        if token.type == "heading_open":
            title = tokens[index + 1].content
            token.attrSet("id", re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"))
    html: str = _MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {})
    return mark_safe(html)  # noqa: S308 - markdown-it escapes all text (html is off)
