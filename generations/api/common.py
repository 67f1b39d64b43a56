"""What the wire formats share: JSON bodies, key authentication, absolute URLs, errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from generations import services
from generations.dbthreads import run_in_db_thread
from generations.errors import ApiError
from generations.models import ApiKey

View = Callable[..., HttpResponseBase]
AsyncView = Callable[..., Coroutine[Any, Any, HttpResponseBase]]
ErrorRenderer = Callable[[ApiError], HttpResponse]


def public_url(request: HttpRequest, path: str) -> str:
    base = settings.VIDEOGEN_PUBLIC_URL or f"{request.scheme}://{request.get_host()}"
    return base + path


def json_body(request: HttpRequest) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return data


def authenticate(request: HttpRequest) -> ApiKey:
    return services.api_key_authenticate(request.headers.get("Authorization"))


def api_endpoint(
    methods: tuple[str, ...], render_error: ErrorRenderer
) -> Callable[[View], AsyncView]:
    """CSRF-exempt (keys, not cookies), method check, ApiError -> the surface's shape.

    The handler is plain sync code; the endpoint is async and runs it on a DB thread that
    keeps its connection (see dbthreads), so no per-request thread or connection is made."""

    def decorate(view: View) -> AsyncView:
        def handle(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return render_error(exc)

        @csrf_exempt
        @wraps(view)
        async def endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                response = render_error(
                    ApiError(405, "method_not_allowed", f"Use {' or '.join(methods)}.")
                )
                response["Allow"] = ", ".join(methods)
                return response
            return await run_in_db_thread(handle, request, *args, **kwargs)

        return endpoint

    return decorate


def videogen_error(exc: ApiError) -> JsonResponse:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.field:
        error["field"] = exc.field
    body: dict[str, Any] = {"success": False, "error": error}
    body.update(exc.extra)
    response = JsonResponse(body, status=exc.status)
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="videogen"'
    return response
