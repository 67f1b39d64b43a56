"""Requests to the production ASGI application in one process, no network: the harness that
bench/instructions.py runs under callgrind.

    python bench/asgi_calls.py CHECKOUT DATA_DIR ENDPOINT COUNT

CHECKOUT is the tree whose code serves (it goes first on sys.path), DATA_DIR a data dir
already migrated with an API key in DATA_DIR/key, ENDPOINT one of bare, status, submit.
After a warm-up (prepared queries compiled, connections open), it makes COUNT requests.
The API's handlers run on one DB thread, as a web process's do.

It builds its ASGI scope itself rather than use tests/asgi_client.py: it runs the code of
either checkout, and the older one need not have that module."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

SUBMIT = json.dumps(
    {"model": "local", "prompt": "bench", "duration": 1, "resolution": "480p"}
).encode()
WARM_UP = 20


async def call(app: Any, key: str, method: str, path: str, body: bytes = b"") -> bytes:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}  # fmt: skip
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    done = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(scope, receive, send)
    assert sent[0]["status"] == 200, (path, sent[0]["status"])
    return b"".join(m.get("body", b"") for m in sent[1:])


def main() -> None:
    tree, data_dir, endpoint, count = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    os.environ.update(
        VIDEOGEN_DATA_DIR=data_dir,
        DJANGO_SETTINGS_MODULE="bench.settings",
        VIDEOGEN_DEFAULT_RATE_LIMIT="1000000000",
        VIDEOGEN_API_DB_THREADS="1",
    )
    sys.path.insert(0, str(tree))
    os.chdir(tree)
    import django

    django.setup()
    from videogen_site.asgi import application

    key = (Path(data_dir) / "key").read_text().strip()

    async def run() -> None:
        made = json.loads(await call(application, key, "POST", "/api/v1/generate", SUBMIT))
        requests = {
            "bare": ("GET", "/api/bench/bare", b""),
            "status": ("GET", f"/api/v1/status/{made['generation_id']}", b""),
            "submit": ("POST", "/api/v1/generate", SUBMIT),
        }
        for _ in range(WARM_UP):
            for method, path, body in requests.values():
                await call(application, key, method, path, body)
        method, path, body = requests[endpoint]
        for _ in range(count):
            await call(application, key, method, path, body)

    asyncio.run(run())


if __name__ == "__main__":
    main()
