"""The shared part of the fake provider servers: a real HTTP server on loopback that records
every request, serves result files, and injects the faults real providers have.

Each provider's fake (tests/fake_<provider>.py) subclasses FakeUpstream and implements
`handle(req)` with that provider's documented protocol. Faults are decided per request from a
seeded random generator, so a failing run can be replayed.

Fault modes, switched from a test while the server runs (`fake.mode = ...`): "" (answer
normally), DOWN (503 to everything, files included), SLOW (every API answer held back
`slow_s` seconds, by default past our read timeout) and STORM_429 (429 with `Retry-After:
storm_retry_after` to every API call). `received` counts the requests that reached the fake
per kind (`kind_of`: the provider's operations, e.g. fal's "submit" and "status"; "file"
for downloads), whatever the mode answered: `fake.api_calls()` is 0 for a provider that was
not called at all.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import numpy as np

from generations.media.encode import Mp4Writer


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: Any, **headers: str) -> Reply:
        return cls(
            status, json.dumps(data).encode(), {"Content-Type": "application/json", **headers}
        )


@dataclass
class Faults:
    """What goes wrong, and how often. Rates apply to every API call (not file downloads)."""

    transient_rate: float = 0.0  # share of calls answered 500, 503, 429 or malformed JSON
    seed: int = 0
    retry_after: str = "0"  # the Retry-After sent with 429s


# Fault modes (FakeUpstream.mode).
NORMAL, DOWN, SLOW, STORM_429 = "", "down", "slow", "storm_429"
# SLOW's default delay: past the read timeout of our provider calls (30 s).
SLOW_S = 35.0


def make_mp4(path: Path, width: int = 64, height: int = 48, fps: int = 24, frames: int = 24,
             audio: bool = False, tone_hz: float = 0.0, blue: int = 128) -> bytes:  # fmt: skip
    """A small real H.264 MP4 (a moving gradient), as a provider would return; with
    `audio`, silent AAC, or a sine at `tone_hz` (a sound a test can recognise); `blue`, the
    blue channel's level (frames a test can tell apart)."""
    sound = np.zeros((48_000 * frames // fps, 2), dtype=np.float32) if audio else None
    if sound is not None and tone_hz:
        t = np.arange(len(sound)) / 48_000
        sound[:] = (0.3 * np.sin(2 * np.pi * tone_hz * t))[:, None].astype(np.float32)
    with Mp4Writer(path, width, height, fps, sound) as writer:
        ys, xs = np.mgrid[0:height, 0:width]
        for i in range(frames):
            rgb = np.stack([(xs * 4 + i * 8) % 256, (ys * 4) % 256, np.full_like(xs, blue)], -1)
            writer.write(rgb.astype(np.uint8))
    return path.read_bytes()


class FakeUpstream(ABC):
    """Subclasses implement `handle`; files put in `self.files` are served at /files/<name>."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.rng = random.Random(self.faults.seed)
        self.requests: list[Request] = []
        self.files: dict[str, bytes] = {}
        self.expired: set[str] = set()  # file names that now answer 404
        self.lock = threading.Lock()
        self.calls = 0
        self.injected = 0
        self.mode = NORMAL
        self.slow_s = SLOW_S
        self.storm_retry_after = "1"
        self.received: Counter[str] = Counter()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                reply = fake.dispatch(req)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_file(self, data: bytes, suffix: str = ".mp4") -> str:
        name = f"{uuid.uuid4().hex}{suffix}"
        self.files[name] = data
        return f"{self.url}/files/{name}"

    def api_requests(self, method: str | None = None) -> list[Request]:
        return [r for r in self.requests if not r.path.startswith("/files/")
                and (method is None or r.method == method)]  # fmt: skip

    def kind_of(self, req: Request) -> str:
        """The operation a request is, for `received`; subclasses name their own."""
        return "file" if req.path.startswith("/files/") else f"{req.method} {req.path}"

    def api_calls(self) -> int:
        """API requests received so far (downloads not counted), whatever was answered."""
        with self.lock:
            return sum(n for kind, n in self.received.items() if kind != "file")

    def dispatch(self, req: Request) -> Reply:
        with self.lock:
            self.received[self.kind_of(req)] += 1
        mode = self.mode
        if mode == DOWN:
            with self.lock:
                self.requests.append(req)
            return Reply(503, b"upstream connect error or disconnect/reset before headers",
                         {"Content-Type": "text/plain"})  # fmt: skip
        if req.path.startswith("/files/"):
            name = req.path.removeprefix("/files/")
            with self.lock:
                self.requests.append(req)
            if name in self.expired or name not in self.files:
                return Reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
            return Reply(200, self.files[name], {"Content-Type": "video/mp4"})
        if mode == STORM_429:
            with self.lock:
                self.requests.append(req)
            return Reply.json(429, {"detail": "Too many requests: slow down."},
                              **{"Retry-After": self.storm_retry_after})  # fmt: skip
        if mode == SLOW:
            time.sleep(self.slow_s)
        with self.lock:
            self.requests.append(req)
            self.calls += 1
            fault = self.rng.random() < self.faults.transient_rate
            kind = self.rng.choice(("500", "503", "429", "json")) if fault else ""
            if fault:
                self.injected += 1
        if kind == "500":
            return Reply.json(500, {"detail": "Internal Server Error"})
        if kind == "503":
            return Reply(503, b"upstream connect error or disconnect/reset before headers")
        if kind == "429":
            return Reply.json(429, {"detail": "Request was throttled."},
                              **{"Retry-After": self.faults.retry_after})  # fmt: skip
        if kind == "json":
            return Reply(200, b'{"status": "IN_PROG', {"Content-Type": "application/json"})
        with self.lock:
            return self.handle(req)

    @abstractmethod
    def handle(self, req: Request) -> Reply:
        """The provider's protocol: answer one API request (faults already decided)."""
