"""Structured logs: a request id on every request and every log line about it, JSON lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from generations.models import Generation
from generations.ops import logs
from generations.web import dbthreads
from tests.conftest import Account
from tests.ops_helpers import submit_and_render
from videogen_site.asgi import application


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The production handler setup (context filter + JSON formatter) into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def asgi_get(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[bytes, bytes]]:
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop()
        await asyncio.sleep(3600)  # the client says nothing more
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(b"host", b"127.0.0.1"), *headers],
             "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5),
             "asgi": {"version": "3.0"}, "http_version": "1.1"}  # fmt: skip
    # On a thread of its own, like a server's event loop (see test_asgi.py).
    loop = threading.Thread(target=asyncio.run, args=(application(scope, receive, send),))
    loop.start()
    loop.join(30)
    start = sent[0]
    return start["status"], {k.lower(): v for k, v in start["headers"]}


def test_a_well_formed_incoming_id_is_kept_and_anything_else_replaced() -> None:
    assert logs.request_id_for("abc-123_X.y:z") == "abc-123_X.y:z"
    for bad in (None, "", "a b", "x" * 200, "id\nforged log line", "<script>", "-leading"):
        fresh = logs.request_id_for(bad)
        assert fresh != bad and len(fresh) == 32


@pytest.mark.django_db
def test_dashboard_responses_carry_the_request_id() -> None:
    response = Client().get("/healthz", headers={"X-Request-ID": "lb-probe-42"})
    assert response["X-Request-ID"] == "lb-probe-42"
    generated = Client().get("/accounts/login/")["X-Request-ID"]
    assert len(generated) == 32 and generated != Client().get("/")["X-Request-ID"]


@pytest.mark.django_db
def test_api_responses_carry_the_request_id(owner: Account) -> None:
    response = owner.client().http.get("/api/v1/models", headers={"X-Request-ID": "client-trace-1"})
    assert response.status_code == 200 and response["X-Request-ID"] == "client-trace-1"


def test_the_lean_asgi_api_handler_returns_the_request_id() -> None:
    status, headers = asgi_get("/api/openapi.json", [(b"x-request-id", b"from-the-edge")])
    assert status == 200 and headers[b"x-request-id"] == b"from-the-edge"
    status, headers = asgi_get("/api/openapi.json", [(b"x-request-id", b"bad id!")])
    assert len(headers[b"x-request-id"]) == 32


def test_under_asgi_djangos_own_request_log_carries_the_id(json_lines: io.StringIO) -> None:
    status, headers = asgi_get("/no-such-page", [(b"x-request-id", b"trace-404")])
    assert status == 404 and headers[b"x-request-id"] == b"trace-404"
    not_found = [e for e in entries(json_lines) if e["logger"] == "django.request"]
    assert not_found and not_found[0]["request_id"] == "trace-404"
    assert not_found[0]["level"] == "WARNING" and "/no-such-page" in not_found[0]["message"]


def test_the_request_id_follows_work_into_the_api_db_threads(
    settings: Any, json_lines: io.StringIO, transactional_db: None
) -> None:
    # The pool's threads keep connections from earlier API calls: their hygiene runs here.
    settings.VIDEOGEN_API_DB_THREADS = 2

    def on_a_db_thread() -> str:
        logging.getLogger("generations.test").info("inside %s", threading.current_thread().name)
        return threading.current_thread().name

    async def handle() -> str:
        logs.request_id.set("req-on-loop")
        return await dbthreads.run_in_db_thread(on_a_db_thread)

    thread = asyncio.run(handle())
    assert thread.startswith("videogen-db")
    (entry,) = entries(json_lines)
    assert entry["request_id"] == "req-on-loop" and entry["message"] == f"inside {thread}"


def test_a_json_line_has_time_level_logger_message_and_the_exception(
    json_lines: io.StringIO,
) -> None:
    token = logs.request_id.set("r-1")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("generations.x").exception("it broke: %s", "badly")
    finally:
        logs.request_id.reset(token)
    (entry,) = entries(json_lines)
    assert entry["level"] == "ERROR" and entry["logger"] == "generations.x"
    assert entry["message"] == "it broke: badly" and entry["request_id"] == "r-1"
    assert entry["time"].endswith("+00:00") and "ValueError: boom" in entry["exception"]
    assert "generation_id" not in entry


def test_a_json_line_carries_the_extra_fields_after_its_own(json_lines: io.StringIO) -> None:
    token = logs.request_id.set("r-2")
    try:
        logging.getLogger("generations.x").warning(
            "charged %d credits",
            3,
            extra={"foo": 1, "team": "acme", "level": "forged", "color_message": "\x1b[1m"},
        )
    finally:
        logs.request_id.reset(token)
    (entry,) = entries(json_lines)
    assert entry["foo"] == 1 and entry["team"] == "acme"
    assert entry["level"] == "WARNING"  # an `extra=` key never replaces one of the line's own
    assert list(entry) == ["time", "level", "logger", "message", "request_id", "foo", "team"]
    assert entry["message"] == "charged 3 credits" and entry["request_id"] == "r-2"


@pytest.mark.django_db
def test_djangos_request_lines_carry_the_status_but_not_the_query_string(
    json_lines: io.StringIO,
) -> None:
    assert Client().get("/no-such-page?invite=secret-invite-token").status_code == 404
    (entry,) = [e for e in entries(json_lines) if e["logger"] == "django.request"]
    assert entry["status_code"] == 404 and "/no-such-page" in entry["message"]
    assert "secret-invite-token" not in json_lines.getvalue()


@pytest.mark.django_db
def test_task_log_lines_carry_the_generation_id(
    owner: Account,
    sync_tasks: None,
    django_capture_on_commit_callbacks: Any,
    json_lines: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from generations.tasks import results, run

    real_store = results.store_result

    def store_and_log(gen: Generation, claim: str, result: Any) -> str:
        results.log.info("storing the result")
        return real_store(gen, claim, result)

    monkeypatch.setattr(run, "store_result", store_and_log)
    gen = submit_and_render(owner, django_capture_on_commit_callbacks)
    (line,) = [e for e in entries(json_lines) if e["message"] == "storing the result"]
    assert line["generation_id"] == gen.generation_id
    assert line["task"] == "generation_run"
    # And the binding ends with the task.
    assert logs.generation_id.get() is None and logs.task_name.get() is None


def test_the_plain_format_shows_the_ids_too() -> None:
    record = logging.LogRecord("generations.x", logging.INFO, __file__, 1, "hello", (), None)
    token = logs.request_id.set("r-9")
    try:
        logs.ContextFilter().filter(record)
    finally:
        logs.request_id.reset(token)
    line = logs.PlainFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert line == "[r-9] INFO generations.x: hello"
