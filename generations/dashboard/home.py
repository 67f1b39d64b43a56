"""The public pages: the home page (the logged-in go straight to generating) and the docs."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from generations import catalog
from generations.rendering import registry


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("generate")
    return render(
        request,
        "home.html",
        {
            "models": catalog.MODELS,
            "available": {m.key for m in catalog.MODELS if registry.is_available(m)},
            "base": f"{request.scheme}://{request.get_host()}",
            "signup_open": settings.VIDEOGEN_SIGNUP == "open",
        },
    )


@require_GET
def docs(request: HttpRequest) -> HttpResponse:
    base = settings.VIDEOGEN_PUBLIC_URL or f"{request.scheme}://{request.get_host()}"
    available = {m.key for m in catalog.MODELS if registry.is_available(m)}
    markdown = render_to_string(
        "docs.md", {"base": base, "models": catalog.MODELS, "available": available}
    )
    return render(request, "docs.html", {"base": base, "markdown": markdown})
