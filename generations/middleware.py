"""Middleware that lets the whole chain run async under ASGI.

WhiteNoise's middleware is sync-only; one sync middleware makes Django run every request's
chain in a thread, and then an async view (a long wait, a DB-thread handler) would hold that
thread after all. This subclass serves static files exactly as WhiteNoise does and passes
everything else straight through, in async mode when the chain is async."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):  # type: ignore[misc]
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(
                request.path_info
            )
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            serve: Callable[..., HttpResponseBase] = self.serve
            return await sync_to_async(serve, thread_sensitive=False)(static_file, request)
        response: Awaitable[HttpResponseBase] = self.get_response(request)
        return await response


class ApiMiddleware:
    """The whole middleware of the API handler (see videogen_site/asgi.py).

    API clients authenticate with keys, not cookies: no sessions, CSRF, messages or
    clickjacking checks apply. What does: the Host check and a few safe headers."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request.get_host()  # DisallowedHost becomes a 400, as CommonMiddleware would make it
        response = await self.get_response(request)
        if not response.streaming and "Content-Length" not in response:
            response.headers["Content-Length"] = str(len(response.content))  # type: ignore[attr-defined]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response
