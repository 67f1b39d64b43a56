"""The API's lean ASGI handler: bodies read whole (in memory when small, spooled to disk when
large), an aborted upload ends quietly, and responses go out complete."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from django.core.exceptions import RequestAborted

from videogen_site.asgi import ApiHandler, application


def receiver(messages: list[dict[str, Any]]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)  # the client says nothing more
        raise AssertionError

    return receive


def chunks(data: bytes, size: int) -> list[dict[str, Any]]:
    parts = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    return [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
            for i, p in enumerate(parts)]  # fmt: skip


@pytest.mark.parametrize("size", [0, 100, 10_000])
def test_small_bodies_are_read_in_memory(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    body = asyncio.run(ApiHandler().read_body(receiver(chunks(data, 999))))
    assert body.read() == data and not hasattr(body, "_rolled")


def test_large_bodies_spool_to_disk_whole(settings: Any) -> None:
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 50_000
    data = b"0123456789" * 30_000  # 300 kB in 64 kB messages
    body = asyncio.run(ApiHandler().read_body(receiver(chunks(data, 65_536))))
    assert body._rolled  # on disk past the memory limit
    assert body.read() == data
    body.close()


def test_a_client_that_leaves_mid_upload_aborts_the_request() -> None:
    messages = chunks(b"a" * 1000, 100)[:3] + [{"type": "http.disconnect"}]
    with pytest.raises(RequestAborted):
        asyncio.run(ApiHandler().read_body(receiver(messages)))


def test_a_request_through_the_api_handler_gets_a_whole_response() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/openapi.json", "raw_path": b"",
             "query_string": b"", "headers": [(b"host", b"127.0.0.1")], "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5), "asgi": {"version": "3.0"},
             "http_version": "1.1"}  # fmt: skip
    # On a thread of its own, like a server's event loop: one that never touched the
    # database (the test runner's main thread may hold a connection from other tests).
    loop = threading.Thread(target=asyncio.run,
                            args=(application(scope, receiver(chunks(b"", 1)), send),))  # fmt: skip
    loop.start()
    loop.join(30)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert json.loads(body)["openapi"].startswith("3.1")


# What videogen_site/asgi.py's ApiHandler re-implements or relies on in Django's own handler,
# as the source read when it was written (Django 5.2). A Django upgrade that changes any of
# them fails here: re-read ApiHandler against the new code (a new signal, a new check, a
# security fix in body reading), carry the change over, then update the digest.
COPIED_FROM_DJANGO = {
    "ASGIHandler.handle": "98faeb5bef800331",  # ApiHandler.handle, less the thread hops
    "ASGIHandler.read_body": "cf4aa904631d5410",  # ApiHandler.read_body, small bodies in memory
    "BaseHandler.load_middleware": "a1fb7ee5f8586195",  # ApiHandler's own short chain
    "ASGIHandler.send_response": "77eda2b08689b44e",  # used as is: closes nothing itself
}


def test_the_api_handler_still_matches_the_django_code_it_copies() -> None:
    import hashlib
    import inspect

    import django
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.base import BaseHandler

    owners = {"ASGIHandler": ASGIHandler, "BaseHandler": BaseHandler}
    changed = []
    for name, digest in COPIED_FROM_DJANGO.items():
        owner, method = name.split(".")
        source = inspect.getsource(getattr(owners[owner], method))
        if hashlib.sha256(source.encode()).hexdigest()[:16] != digest:
            changed.append(name)
    assert changed == [], (
        f"Django {django.__version__} changed {', '.join(changed)}: compare with ApiHandler "
        "in videogen_site/asgi.py, carry the change over, then update COPIED_FROM_DJANGO."
    )
