"""ASGI entry point: production and `make run` serve this with uvicorn.

Requests under /api/ and /v1/ go to a handler with a short, natively async middleware chain.
Django's stock middleware is async-compatible only through a thread hop per hook (about
fifteen per request); the API needs none of it (keys, not cookies), and long waits on the
Framepack surface must hold no thread at all. Everything else (dashboard, admin, static
files) goes through the full MIDDLEWARE setting."""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videogen_site.settings")

django_application = get_asgi_application()

from django.core.handlers.asgi import ASGIHandler  # noqa: E402  (after django.setup())
from django.core.handlers.exception import convert_exception_to_response  # noqa: E402

from generations.middleware import ApiMiddleware  # noqa: E402

API_PREFIXES = ("/api/", "/v1/")


class ApiHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        resolve_and_call = self._get_response_async  # type: ignore[attr-defined]
        view = convert_exception_to_response(resolve_and_call)
        self._middleware_chain = convert_exception_to_response(ApiMiddleware(view))  # type: ignore[arg-type]


api_application = ApiHandler()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"].startswith(API_PREFIXES):
        await api_application(scope, receive, send)
    else:
        await django_application(scope, receive, send)
