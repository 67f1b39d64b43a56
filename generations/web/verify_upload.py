"""A video uploaded to be checked for provenance (CONTRACT 8), as both surfaces that check one
take it: `POST /api/v1/verify` and the dashboard's `/verify/check`. Anyone may ask, so each
check is counted per client address (one count for both surfaces) and the upload is checked
as a video before anything decodes it: a multipart `file` of at most
VIDEOGEN_VERIFY_MAX_BYTES (videogen_site/asgi.py refuses a larger body unread on both paths),
a container PyAV opens, with a video stream of a sane size and length."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest

from generations.errors import ApiError, invalid
from generations.ops import storage
from generations.web.ratelimit import RateLimit, rate_limit_address

# A video larger than this (pixels per frame), or longer, is not looked at: a bomb.
MAX_PIXELS = 8192 * 4320
MAX_DURATION_S = 3 * 3600
RATE_SCOPE = "verify"


def rate_limit(request: HttpRequest) -> RateLimit | None:
    """Count this check against the client address (a 429 ApiError past the limit)."""
    address = str(request.META.get("REMOTE_ADDR") or "unknown")
    return rate_limit_address(address, scope=RATE_SCOPE, limit=settings.VIDEOGEN_VERIFY_PER_MINUTE)


def max_megabytes() -> int:
    return int(settings.VIDEOGEN_VERIFY_MAX_BYTES) // (1024 * 1024)


@contextmanager
def uploaded_video(request: HttpRequest) -> Iterator[Path]:
    """The request's `file`, copied to a scratch file that is a video we may decode (removed
    on leaving); an ApiError (400, 413) naming `file` otherwise."""
    if request.content_type != "multipart/form-data":
        raise invalid("file", "Send the video as a multipart/form-data field named `file`.")
    upload = request.FILES.get("file")
    if upload is None:
        raise invalid("file", "Send the video as a multipart/form-data field named `file`.",
                      "missing_parameter")  # fmt: skip
    if upload.size is not None and upload.size > settings.VIDEOGEN_VERIFY_MAX_BYTES:
        raise ApiError(413, "file_too_large", f"`file` is larger than {max_megabytes()} MB.",
                       "file")  # fmt: skip
    with tempfile.NamedTemporaryFile(suffix=".video", dir=storage.scratch_dir()) as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        path = Path(copy.name)
        check_video(path)
        yield path


def check_video(path: Path) -> None:
    """A video we may decode: its container opens, it has a video stream, and its frames and
    length are within bounds (the header is read, no frame decoded)."""
    # Loaded here, on the first check: a web process otherwise never loads PyAV
    # (tests/test_layers.py).
    import av  # noqa: PLC0415

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
