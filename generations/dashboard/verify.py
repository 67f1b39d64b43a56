"""The public /verify page (CONTRACT 8): anyone drops a video in and reads, in words, whether
it carries our C2PA Content Credentials and our invisible watermark.

The page posts the file to its own `/verify/check` (session and CSRF, like every dashboard
form; without JavaScript the form posts there and the whole page comes back with the answer).
The check is the API's (web/verify_upload.py: the same size and video checks, the same
per-address count), so a logged-in member's teams can be told which of their generations a
video is: the answer links to it. Everyone else learns only that it was made here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from generations import catalog
from generations.errors import ApiError
from generations.models import Membership
from generations.web import verify_upload
from generations.web.ratelimit import RateLimit

if TYPE_CHECKING:
    from generations.core.provenance import Verdict

# What the page says for each IPTC digital source type a manifest may name.
SOURCE_TYPES = {
    catalog.TRAINED_ALGORITHMIC_MEDIA: "trained algorithmic media (made by an AI model)",
    catalog.ALGORITHMIC_MEDIA: "algorithmic (procedural) media",
}


@require_GET
def verify_page(request: HttpRequest) -> HttpResponse:
    return render(request, "verify.html", _page())


@require_POST
def verify_check(request: HttpRequest) -> HttpResponse:
    """Check the uploaded `file`; the answer fragment for the page's script (`HX-Request`),
    else the whole page with it."""
    template = (
        "verify.html#result" if request.headers.get("HX-Request") == "true" else "verify.html"
    )
    try:
        limited = verify_upload.rate_limit(request)
        with verify_upload.uploaded_video(request) as path:
            # Loaded on the first check, as the API's is (PyAV, OpenCV, the C2PA library).
            from generations.core import provenance  # noqa: PLC0415

            teams: list[int] = []
            if request.user.is_authenticated:
                teams = list(Membership.objects.filter(user_id=request.user.pk)
                             .values_list("team_id", flat=True))  # fmt: skip
            verdict = provenance.verify(path, teams=teams)
    except ApiError as error:
        context = {**_page(), "error": _plain(error)}
        state = error.extra.get("rate_limit")
        retry_after = state.reset if isinstance(state, RateLimit) else None
        response = render(request, template, context, status=error.status)
        if retry_after is not None:
            response["Retry-After"] = str(retry_after)
        return response
    response = render(request, template, {**_page(), "result": _result(verdict)})
    if limited is not None:
        for name, value in limited.headers().items():
            response[name] = value
    return response


def _page() -> dict[str, Any]:
    return {"max_mb": _max_mb()}


def _max_mb() -> int:
    return verify_upload.max_megabytes()


def _plain(error: ApiError) -> str:
    """The API's message, in the page's words."""
    if error.code == "file_too_large":
        return f"This file is too large: the check takes videos of up to {_max_mb()} MB."
    if error.code == "rate_limit_exceeded":
        return f"Too many checks from your address. {error.message.rpartition('. ')[2]}"
    if error.code == "invalid_video":
        return "This is not a video this server can read (an MP4, WebM or MOV file, say)."
    return "Choose a video file to check."


def _result(verdict: Verdict) -> dict[str, Any]:
    """What the answer fragment says, from provenance.verify's verdict."""
    c2pa, mark = verdict.c2pa, verdict.watermark
    model = catalog.get_model(c2pa["model"]) if c2pa["model"] else None
    generator = c2pa["generator"] or ""
    ours = bool(mark["ours"]) or (bool(c2pa["valid"]) and generator.startswith("videogen/"))
    generation_id = mark["generation_id"]
    return {
        "c2pa": c2pa,
        "watermark": mark,
        "ours": ours,
        "nothing": not c2pa["present"] and not mark["found"],
        "signer": verdict.signer,
        "development": verdict.development,
        "source_type": SOURCE_TYPES.get(
            c2pa["digital_source_type"] or "", c2pa["digital_source_type"]
        ),  # fmt: skip
        "model_name": model.name if model else c2pa["model"],
        "generation_url": reverse("generation", args=[generation_id]) if generation_id else None,
    }
