"""Serving stored outputs with HTTP Range (browsers and players seek by byte range)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import IO

from django.db.models.fields.files import FieldFile
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import quote_etag

from generations.ops.storage import missing_file_errors, open_range

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


async def _chunks(fh: IO[bytes], length: int) -> AsyncIterator[bytes]:
    # An async iterator: under ASGI Django would otherwise collect a sync iterator into
    # memory before sending. Reads go to a thread so a slow disk or S3 never blocks the loop.
    try:
        remaining = length
        while remaining > 0:
            block = await asyncio.to_thread(fh.read, min(CHUNK, remaining))
            if not block:
                break
            remaining -= len(block)
            yield block
    finally:
        await asyncio.to_thread(fh.close)


def _parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """(start, end inclusive); None = serve whole file; False = unsatisfiable."""
    match = _RANGE.match(header.strip())
    if not match:
        return None  # multi-range or junk: RFC 9110 lets us ignore it and send 200
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0:
            return False
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return False
    return start, end


def serve_file(
    request: HttpRequest,
    field: FieldFile,
    content_type: str,
    *,
    etag: str,
    download_name: str | None = None,
    cache_seconds: int = 3600,
    private: bool = False,
) -> HttpResponse | StreamingHttpResponse:
    try:
        size = field.size
    except missing_file_errors():
        # Deleted out of band (on disk or in the bucket): a 404, not a server error.
        raise Http404("This file is no longer stored.") from None
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": quote_etag(etag),
        "Cache-Control": f"{'private' if private else 'public'}, max-age={cache_seconds}",
    }
    if download_name:
        headers["Content-Disposition"] = f'inline; filename="{download_name}"'
    if request.headers.get("If-None-Match") == quote_etag(etag):
        return HttpResponse(status=304, headers=headers)

    wanted: tuple[int, int] | None | bool = None
    range_header = request.headers.get("Range")
    if range_header and request.headers.get("If-Range", quote_etag(etag)) == quote_etag(etag):
        wanted = _parse_range(range_header, size)
    if wanted is False:
        headers["Content-Range"] = f"bytes */{size}"
        return HttpResponse(status=416, headers=headers)

    start, end = wanted if isinstance(wanted, tuple) else (0, size - 1)
    length = end - start + 1
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        response: HttpResponse | StreamingHttpResponse = HttpResponse(
            content_type=content_type, headers=headers
        )
    else:
        # Opened here, not in the iterator: a missing object fails before any header is sent.
        try:
            stream = open_range(field, start, length)
        except missing_file_errors():
            raise Http404("This file is no longer stored.") from None
        response = StreamingHttpResponse(
            _chunks(stream, length), content_type=content_type, headers=headers
        )
    if isinstance(wanted, tuple):
        response.status_code = 206
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response
