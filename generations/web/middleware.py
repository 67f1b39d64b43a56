"""Middleware that lets the whole chain run async under ASGI.

WhiteNoise's middleware is sync-only; one sync middleware makes Django run every request's
chain in a thread, and then an async view (a long wait, a DB-thread handler) would hold that
thread after all. This subclass serves static files exactly as WhiteNoise does and passes
everything else straight through, in async mode when the chain is async."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from whitenoise.middleware import WhiteNoiseMiddleware

from generations.ops import logs
from generations.web.csp import add_security_headers


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
        rid = _bind_request_id(request)
        request.get_host()  # DisallowedHost becomes a 400, as CommonMiddleware would make it
        response = https_refusal(request) or await self.get_response(request)
        response.headers[logs.REQUEST_ID_HEADER] = rid
        if not response.streaming and "Content-Length" not in response:
            response.headers["Content-Length"] = str(len(response.content))  # type: ignore[attr-defined]
        add_security_headers(request, response, hsts=True)
        return response


API_PREFIXES = ("/api/", "/v1/")


def https_refusal(request: HttpRequest) -> HttpResponseBase | None:
    """In production (VIDEOGEN_REQUIRE_HTTPS) an API request over plain HTTP is refused, never
    redirected: a redirected POST would be replayed as a GET, and its key has already
    crossed the network in clear, so the client must be told to fix its URL."""
    if (
        not settings.VIDEOGEN_REQUIRE_HTTPS
        or request.is_secure()  # honours SECURE_PROXY_SSL_HEADER behind a proxy
        or not request.path.startswith(API_PREFIXES)
    ):
        return None
    message = (
        "This API is only served over HTTPS: send the request to "
        f"https://{request.get_host()}{request.path} (the key sent just now crossed the "
        "network unencrypted; consider rotating it)."
    )
    error = {"code": "https_required", "message": message}
    return JsonResponse({"success": False, "error": error}, status=403)


class _EitherMode(ABC):
    """A middleware that runs sync or async, as the chain around it does: `handle` for the
    one, `__acall__` for the other."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        return self.__acall__(request) if self.async_mode else self.handle(request)

    @abstractmethod
    def handle(self, request: HttpRequest) -> HttpResponseBase: ...

    @abstractmethod
    async def __acall__(self, request: HttpRequest) -> HttpResponseBase: ...


class SecurityHeadersMiddleware(_EitherMode):
    """The dashboard chain's counterpart of ApiMiddleware's checks: plain-HTTP API requests
    refused (when the API is served by this chain, as under WSGI and the test client) and
    the headers of generations/csp.py. HSTS comes from Django's SecurityMiddleware here."""

    def handle(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = https_refusal(request) or self.get_response(request)
        add_security_headers(request, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = https_refusal(request) or await self.get_response(request)
        add_security_headers(request, response)
        return response


def _bind_request_id(request: HttpRequest) -> str:
    """This request's id (the caller's X-Request-ID when well-formed), bound for logging.
    Under ASGI each request runs in a task of its own, so the binding ends with it."""
    rid = logs.request_id_for(request.headers.get(logs.REQUEST_ID_HEADER))
    logs.request_id.set(rid)
    return rid


class RequestIdMiddleware(_EitherMode):
    """First in MIDDLEWARE (the dashboard chain): every request gets an id, every log line
    written while handling it carries the id, and the response returns it."""

    def handle(self, request: HttpRequest) -> HttpResponseBase:
        rid = logs.request_id_for(request.headers.get(logs.REQUEST_ID_HEADER))
        token = logs.request_id.set(rid)
        try:
            response: HttpResponseBase = self.get_response(request)
        finally:
            # A WSGI thread serves one request after another: do not leak the id.
            logs.request_id.reset(token)
        response.headers[logs.REQUEST_ID_HEADER] = rid
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        rid = _bind_request_id(request)
        response: HttpResponseBase = await self.get_response(request)
        response.headers[logs.REQUEST_ID_HEADER] = rid
        return response
