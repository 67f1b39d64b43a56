"""What the wire formats share: JSON bodies, key authentication, absolute URLs, errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from functools import wraps
from inspect import iscoroutinefunction
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from generations import catalog
from generations.api import ratelimit
from generations.core import apikeys, submissions, validation, webhooks
from generations.errors import ApiError
from generations.models import ApiKey, Generation
from generations.spec import GenerationSpec
from generations.web.dbthreads import run_in_db_thread

View = Callable[..., HttpResponseBase]
AsyncView = Callable[..., Coroutine[Any, Any, HttpResponseBase]]
ErrorRenderer = Callable[[ApiError], HttpResponse]


def public_url(request: HttpRequest, path: str) -> str:
    base = settings.VIDEOGEN_PUBLIC_URL or f"{request.scheme}://{request.get_host()}"
    return base + path


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The body as a JSON object ({} when empty), or a 400 `invalid_json`."""
    return json_object(request.body) if request.body else {}


def json_object(raw: bytes) -> dict[str, Any]:
    """Client JSON that must be an object: 400 `invalid_json` for anything the rest of the
    request could not take, never an exception that would be a 500. That covers syntax
    (ValueError), nesting deeper than the parser's recursion allows (RecursionError), and
    strings holding a lone surrogate ("\\ud800"), which are valid JSON but not text any
    database, file or response can store (the error names the field)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    field = _lone_surrogate_field(data)
    if field is not None:
        raise ApiError(
            400, "invalid_parameter",
            f"`{field}` holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), "
            "which is not valid text.", field,
        )  # fmt: skip
    return data


def _lone_surrogate_field(data: dict[str, Any]) -> str | None:
    """The first top-level field whose value (or a key or string inside it) cannot be
    encoded as UTF-8; walked without recursion."""
    for name, value in data.items():
        pending: list[Any] = [name, value]
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return name.encode("utf-8", "backslashreplace").decode()
            elif isinstance(item, dict):
                pending.extend(item.keys())
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)
    return None


def authenticate(request: HttpRequest) -> ApiKey:
    """The request's API key, counted against its rate limit (headers go on the response)."""
    key = apikeys.api_key_authenticate(request.headers.get("Authorization"))
    request.rate_limit = ratelimit.rate_limit_take(key)  # type: ignore[attr-defined]
    return key


def _add_rate_limit_headers(request: HttpRequest, response: HttpResponseBase) -> None:
    state: ratelimit.RateLimit | None = getattr(request, "rate_limit", None)
    if state is not None:
        for name, value in state.headers().items():
            response[name] = value


def api_endpoint(
    methods: tuple[str, ...], render_error: ErrorRenderer
) -> Callable[[View | AsyncView], AsyncView]:
    """CSRF-exempt (keys, not cookies), method check, ApiError -> the surface's shape.

    The handler is plain sync code; the endpoint is async and runs it on a DB thread that
    keeps its connection (see dbthreads), so no per-request thread or connection is made."""

    def refuse(request: HttpRequest, exc: ApiError) -> HttpResponseBase:
        limited = exc.extra.pop("rate_limit", None)
        assert limited is None or isinstance(limited, ratelimit.RateLimit)
        if limited is not None:
            request.rate_limit = limited  # type: ignore[attr-defined]
        response = render_error(exc)
        retry_after = limited.reset if limited is not None else exc.retry_after
        if retry_after is not None:
            response["Retry-After"] = str(retry_after)
        return response

    def decorate(view: Callable[..., Any]) -> AsyncView:
        def handle(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                response: HttpResponseBase = view(request, *args, **kwargs)
            except ApiError as exc:
                response = refuse(request, exc)
            _add_rate_limit_headers(request, response)
            return response

        async def handle_async(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            # An async view (a long wait) runs on the event loop and does its own DB calls
            # through run_in_db_thread.
            try:
                response: HttpResponseBase = await view(request, *args, **kwargs)
            except ApiError as exc:
                response = refuse(request, exc)
            _add_rate_limit_headers(request, response)
            return response

        @csrf_exempt
        @wraps(view)
        async def endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                response = render_error(
                    ApiError(405, "method_not_allowed", f"Use {' or '.join(methods)}.")
                )
                response["Allow"] = ", ".join(methods)
                return response
            if iscoroutinefunction(view):
                return await handle_async(request, *args, **kwargs)
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


def submit(
    request: HttpRequest,
    key: ApiKey,
    data: dict[str, Any],
    *,
    source: str,
    default_model: str = catalog.DEFAULT_MODEL,
) -> tuple[Generation, int]:
    """What every create endpoint does: validate, fetch the image, create. (gen, usage)"""
    spec = validation.build_spec(data, test_mode=key.is_test, default_model=default_model)
    webhook_url, image, end_image = submit_checks(data, spec)
    return submissions.generation_create(
        team=key.team, user=key.user, api_key=key, spec=spec, source=source, input_image=image,
        end_image=end_image, webhook_url=webhook_url, public_base=public_url(request, ""),
    )  # fmt: skip


def submit_checks(
    data: dict[str, Any], spec: GenerationSpec
) -> tuple[str, submissions.InputImage | None, submissions.InputImage | None]:
    """The checks of a create request past its fields: the webhook URL, then the input
    images fetched (SSRF-safe) and decoded. (webhook_url, image, end image)"""
    webhook_url = webhooks.validate_url(data.get("webhook_url"))
    image = submissions.input_image_load(spec.image_url) if spec.image_url else None
    end = spec.end_image_url
    end_image = submissions.input_image_load(end, "end_image_url") if end else None
    return webhook_url, image, end_image


def wire_time(value: Any) -> str | None:
    """A time as the VideoGenAPI surface writes it ("2026-12-04 23:13:51", UTC)."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


def page_param(request: HttpRequest, name: str, default: int, maximum: int) -> int:
    """A positive integer query parameter (`page`, `limit`), 400 naming it otherwise."""
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"`{name}` must be an integer.", name) from None
    if not 1 <= value <= maximum:
        raise ApiError(400, "invalid_parameter", f"`{name}` must be between 1 and {maximum}.", name)
    return value
