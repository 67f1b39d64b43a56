"""What the wire formats share: JSON bodies, key authentication, absolute URLs, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from generations import services
from generations.errors import ApiError
from generations.models import ApiKey

View = Callable[..., HttpResponseBase]
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


def api_endpoint(methods: tuple[str, ...], render_error: ErrorRenderer) -> Callable[[View], View]:
    """CSRF-exempt (keys, not cookies), method check, and ApiError -> the surface's shape."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                response = render_error(
                    ApiError(405, "method_not_allowed", f"Use {' or '.join(methods)}.")
                )
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return render_error(exc)

        return wrapper

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
