"""ASGI entry point: production and `make run` serve this with uvicorn.

Requests under /api/ and /v1/ go to a handler with a short, natively async middleware chain.
Django's stock middleware is async-compatible only through a thread hop per hook (about
fifteen per request); the API needs none of it (keys, not cookies), and long waits on the
Framepack surface must hold no thread at all. Everything else (dashboard, admin, static
files) goes through the full MIDDLEWARE setting.

Kept hand-written on purpose, while it pays: `make bench` serves a bare JSON view both ways,
and through this handler it answers about 2.4 times the requests per second it does through
Django's stock handler and middleware (1127 against 468 req/s, 16 clients, 2 cores). What it
copies from Django is pinned by tests/test_asgi.py, which fails when a Django upgrade changes
that code."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import tempfile
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videogen_site.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (after django.setup())
from django.core.exceptions import RequestAborted  # noqa: E402
from django.core.handlers.asgi import ASGIHandler, get_script_prefix  # noqa: E402
from django.core.handlers.exception import convert_exception_to_response  # noqa: E402
from django.http import HttpResponseBase, JsonResponse  # noqa: E402
from django.urls import set_script_prefix  # noqa: E402

from generations.web.middleware import ApiMiddleware  # noqa: E402

API_PREFIXES = ("/api/", "/v1/")
# Dashboard paths that take a video upload (the /verify page's check): their bodies are
# capped as the API's are, unread past the cap, before Django's handler spools them to disk.
CAPPED_PAGES = ("/verify/check",)


# An API body past this is refused unread (413): the verify upload's limit plus room for
# the multipart framing. Every other API body is far smaller.
MULTIPART_SLACK = 1024 * 1024


class BodyTooLarge(Exception):
    pass


def max_body() -> int:
    return int(settings.VIDEOGEN_VERIFY_MAX_BYTES) + MULTIPART_SLACK


class ApiHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        resolve_and_call = self._get_response_async  # type: ignore[attr-defined]
        view = convert_exception_to_response(resolve_and_call)
        self._middleware_chain = convert_exception_to_response(ApiMiddleware(view))  # type: ignore[arg-type]

    async def read_body(self, receive: Any) -> Any:
        """Small bodies (every status poll, most submits) stay in memory; only large ones
        (multipart uploads) spool to a temporary file as Django's handler does."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestAborted()
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > max_body():
                raise BodyTooLarge()
            if size > settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
                spooled = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (closed by handle)
                    max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
                )
                spooled.write(b"".join(chunks))
                while message.get("more_body", False):
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        spooled.close()
                        raise RequestAborted()
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > max_body():
                        spooled.close()
                        raise BodyTooLarge()
                    spooled.write(chunk)
                spooled.seek(0)
                return spooled
            if not message.get("more_body", False):
                return io.BytesIO(b"".join(chunks))

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's ASGI handling without the per-request thread hops that the API does
        not need. Django sends `request_started` and closes the response through
        sync_to_async: in a ThreadSensitiveContext that starts a new thread per request,
        about a quarter of a status call's cost. The receivers of `request_started` reset
        query logs and close stale connections of the calling thread, but API handlers
        never use the event loop thread's connections: they run on the DB threads, which
        apply that hygiene themselves (generations/dbthreads.py). The response is closed
        here on the loop; `request_finished` receivers touch no database there."""
        try:
            declared = int(dict(scope.get("headers", ())).get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        try:
            if declared > max_body():
                raise BodyTooLarge()
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        except BodyTooLarge:
            await self.send_response(too_large(), send)
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None
            body_file.close()
            await self.send_response(error_response, send)
            error_response.close()
            return

        async def process_request() -> HttpResponseBase:
            response: HttpResponseBase = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):
                await self.send_response(response, send)
            return response

        # As Django does: a client that goes away cancels the view (a held Framepack wait).
        watcher = asyncio.create_task(self.listen_for_disconnect(receive))
        work = asyncio.create_task(process_request())
        await asyncio.wait((watcher, work), return_when=asyncio.FIRST_COMPLETED)
        for task in (watcher, work):
            if task.done():
                with contextlib.suppress(RequestAborted):
                    task.result()
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            finished = work.result()
        except asyncio.CancelledError:
            pass
        else:
            finished.close()
        body_file.close()


def too_large() -> HttpResponseBase:
    limit = int(settings.VIDEOGEN_VERIFY_MAX_BYTES) // (1024 * 1024)
    error = {"code": "file_too_large", "field": "file",
             "message": f"The request body is too large: at most {limit} MB."}  # fmt: skip
    response = JsonResponse({"success": False, "error": error}, status=413)
    response["Connection"] = "close"
    return response


api_application = ApiHandler()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"].startswith(API_PREFIXES):
        await api_application(scope, receive, send)
    elif scope["type"] == "http" and scope["path"] in CAPPED_PAGES:
        await capped_page(scope, receive, send)
    else:
        await django_application(scope, receive, send)


async def capped_page(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A dashboard upload: a declared length past the cap is a 413 at once; a body that runs
    past it undeclared (chunked) reads as the client going away, so Django stops reading."""
    try:
        declared = int(dict(scope.get("headers", ())).get(b"content-length", b"0") or 0)
    except ValueError:
        declared = 0
    if declared > max_body():
        response = too_large()
        await django_application.send_response(response, send)
        response.close()
        return
    received = 0

    async def counted() -> Any:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_body():
                return {"type": "http.disconnect"}
        return message

    await django_application(scope, counted, send)
