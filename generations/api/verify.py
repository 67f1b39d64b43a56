"""`POST /api/v1/verify` (CONTRACT 8): is this video ours, and is it marked as AI-made?

Unlike every other web request, a check decodes video (the watermark is read from the
frames) in the web process: up to 30 s of it, bounded and rate-limited.

Anyone may ask (no key; counted per client address). The upload is a multipart `file` of at
most VIDEOGEN_VERIFY_MAX_BYTES, spooled to disk by the API handler (never read past the
cap: videogen_site/asgi.py), and checked as a video before anything decodes it: a container
PyAV opens, with a video stream of a sane size. The answer reports the C2PA manifest and the
watermark; the generation's id only to a key of the team that made it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from generations.api import ratelimit
from generations.api.common import api_endpoint, videogen_error
from generations.core import apikeys
from generations.errors import ApiError, invalid
from generations.models import ApiKey

endpoint = api_endpoint
# A video larger than this (pixels per frame), or longer, is not looked at: a bomb.
MAX_PIXELS = 8192 * 4320
MAX_DURATION_S = 3 * 3600


@endpoint(("POST",), videogen_error)
def verify(request: HttpRequest) -> HttpResponse:
    address = str(request.META.get("REMOTE_ADDR") or "unknown")
    request.rate_limit = ratelimit.rate_limit_address(  # type: ignore[attr-defined]
        address, scope="verify", limit=settings.VIDEOGEN_VERIFY_PER_MINUTE
    )
    key = _optional_key(request)
    if request.content_type != "multipart/form-data":
        raise invalid("file", "Send the video as a multipart/form-data field named `file`.")
    upload = request.FILES.get("file")
    if upload is None:
        raise invalid("file", "Send the video as a multipart/form-data field named `file`.",
                      "missing_parameter")  # fmt: skip
    if upload.size is not None and upload.size > settings.VIDEOGEN_VERIFY_MAX_BYTES:
        limit = settings.VIDEOGEN_VERIFY_MAX_BYTES // (1024 * 1024)
        raise ApiError(413, "file_too_large", f"`file` is larger than {limit} MB.", "file")
    with tempfile.NamedTemporaryFile(suffix=".video", dir=_scratch()) as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        path = Path(copy.name)
        _check_video(path)
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


def _check_video(path: Path) -> None:
    """A video we may decode: its container opens, it has a video stream, and its frames and
    length are within bounds (the header is read, no frame decoded)."""
    import av  # noqa: PLC0415 (see verify)

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise invalid("file", "`file` has no video stream.", "invalid_video")
            stream = container.streams.video[0]
            width, height = int(stream.codec_context.width), int(stream.codec_context.height)
            duration = float(container.duration or 0) / av.time_base
    except (av.FFmpegError, ValueError, IndexError):
        raise invalid("file", "`file` is not a video this server can read.",
                      "invalid_video") from None  # fmt: skip
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise invalid("file", f"`file` is {width}x{height}: at most {MAX_PIXELS} pixels a frame.",
                      "invalid_video")  # fmt: skip
    if duration > MAX_DURATION_S:
        raise invalid("file", f"`file` lasts {duration:.0f} s: at most {MAX_DURATION_S} s.",
                      "invalid_video")  # fmt: skip


def _scratch() -> Path:
    path = Path(settings.DATA_DIR) / "work"
    path.mkdir(parents=True, exist_ok=True)
    return path
