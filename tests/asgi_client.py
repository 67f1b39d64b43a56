"""HTTP requests to the production application, in process: `videogen_site.asgi.application`
as uvicorn serves it (the API's own handler and middleware, its handlers on the DB-thread
pool with VIDEOGEN_API_DB_THREADS threads, each keeping its connection), not Django's test
client, which takes settings.MIDDLEWARE and a WSGI handler instead.

The pool's threads have connections of their own, so a test that calls the API must commit
what the API is to see: use `transactional_db` (the account fixtures in conftest.py do).

`count_queries()` counts the SQL every thread runs, the pool's included.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from django.db.backends import utils as db_utils
from django.http import HttpResponse
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

HOST = "testserver"


class AsgiResponse(HttpResponse):
    """What the application sent, read whole (status, headers and body)."""

    def json(self) -> Any:
        return json.loads(self.content)


class AsgiClient:
    """get/post/delete/head with the signatures of Django's test client."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        self.headers = dict(headers or {})

    def get(
        self, path: str, data: Mapping[str, Any] | None = None, *, headers: Any = None
    ) -> AsgiResponse:
        return self.request("GET", path, query=data, headers=headers)

    def head(
        self, path: str, data: Mapping[str, Any] | None = None, *, headers: Any = None
    ) -> AsgiResponse:
        return self.request("HEAD", path, query=data, headers=headers)

    def post(
        self,
        path: str,
        data: Any = None,
        content_type: str = MULTIPART_CONTENT,
        *,
        headers: Any = None,
    ) -> AsgiResponse:
        return self.request("POST", path, data=data, content_type=content_type, headers=headers)

    def delete(
        self, path: str, data: Any = "", content_type: str = "", *, headers: Any = None
    ) -> AsgiResponse:
        return self.request("DELETE", path, data=data, content_type=content_type, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        *,
        data: Any = None,
        content_type: str = "",
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsgiResponse:
        body = _encode(data, content_type)
        if content_type == MULTIPART_CONTENT:
            content_type = f"multipart/form-data; boundary={BOUNDARY}"
        path, _, query_string = path.partition("?")
        if query:
            query_string = "&".join(filter(None, [query_string, urlencode(query, doseq=True)]))
        sent = {**self.headers, **(headers or {})}
        if content_type:
            sent.setdefault("Content-Type", content_type)
        # One call, one event loop: async_to_sync runs it on a loop thread of its own, as a
        # server does; the handler's work goes to the DB-thread pool from there.
        return async_to_sync(_call)(method, path, query_string, sent, body)


def _encode(data: Any, content_type: str) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    if content_type == MULTIPART_CONTENT:
        return encode_multipart(BOUNDARY, dict(data))
    if content_type.startswith("application/json"):
        return json.dumps(data).encode()
    return urlencode(data, doseq=True).encode()


async def _call(
    method: str, path: str, query_string: str, headers: Mapping[str, str], body: bytes
) -> AsgiResponse:
    from videogen_site.asgi import application

    raw_headers = [(b"host", HOST.encode()), (b"content-length", str(len(body)).encode())]
    raw_headers += [
        (k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string.encode(),
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": (HOST, 80),
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    done = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await done.wait()  # a client that stays connected until the answer is complete
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    await application(scope, receive, send)
    start = sent[0]
    assert start["type"] == "http.response.start", start
    response = AsgiResponse(
        b"".join(m.get("body", b"") for m in sent[1:] if m["type"] == "http.response.body"),
        status=start["status"],
    )
    del response["Content-Type"]
    for name, value in start.get("headers", []):
        response[name.decode("latin-1")] = value.decode("latin-1")
    return response


@contextmanager
def count_queries() -> Iterator[list[str]]:
    """The SQL statements run while inside, on any thread (the DB-thread pool's included)."""
    statements: list[str] = []
    lock = threading.Lock()
    wrapper: Any = db_utils.CursorWrapper  # patched below: its stubs omit these methods
    real_execute = wrapper._execute
    real_many = wrapper._executemany

    def execute(self: Any, sql: str, params: Any, *ignored: Any) -> Any:
        with lock:
            statements.append(sql)
        return real_execute(self, sql, params, *ignored)

    def executemany(self: Any, sql: str, param_list: Any, *ignored: Any) -> Any:
        with lock:
            statements.append(sql)
        return real_many(self, sql, param_list, *ignored)

    wrapper._execute, wrapper._executemany = execute, executemany
    try:
        yield statements
    finally:
        wrapper._execute, wrapper._executemany = real_execute, real_many
