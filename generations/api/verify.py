"""`POST /api/v1/verify` (CONTRACT 8): is this video ours, and is it marked as AI-made?

Unlike every other web request, a check decodes video (the watermark is read from the
frames) in the web process: up to 30 s of it, bounded and rate-limited.

Anyone may ask (no key; counted per client address). The upload is a multipart `file` of at
most VIDEOGEN_VERIFY_MAX_BYTES, spooled to disk by the API handler (never read past the
cap: videogen_site/asgi.py), and checked as a video before anything decodes it
(web/verify_upload.py, shared with the dashboard's /verify page). The answer reports the C2PA
manifest and the watermark; the generation's id only to a key of the team that made it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from generations.api.common import api_endpoint, videogen_error
from generations.core import apikeys
from generations.models import ApiKey
from generations.web import verify_upload

endpoint = api_endpoint


@endpoint(("POST",), videogen_error)
def verify(request: HttpRequest) -> HttpResponse:
    request.rate_limit = verify_upload.rate_limit(request)  # type: ignore[attr-defined]
    key = _optional_key(request)
    with verify_upload.uploaded_video(request) as path:
        # Loaded here, on the first check: a web process otherwise never loads PyAV, OpenCV
        # or the C2PA library (tests/test_layers.py).
        from generations.core import provenance  # noqa: PLC0415

        verdict = provenance.verify(path, key=key)
    body: dict[str, Any] = {"success": True, "c2pa": verdict.c2pa, "watermark": verdict.watermark}
    return JsonResponse(body)


def _optional_key(request: HttpRequest) -> ApiKey | None:
    """The caller's key when it sent one (a bad one is a 401, as everywhere)."""
    header = request.headers.get("Authorization")
    return apikeys.api_key_authenticate(header) if header else None
