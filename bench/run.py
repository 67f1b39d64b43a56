"""`make bench`: API latency and throughput against a bare Django view, and pick-up time.

Starts the production server command (uvicorn, ASGI) and one django-q2 cluster on a fresh
data dir, then measures, in the same run:
  * GET /api/v1/status/{id} vs a bare Django JSON view served by the same server, once
    through the API's lean handler and once through the full middleware stack
    (p50, p99, requests/s at 16 concurrent keep-alive clients, ratio to the baseline);
  * POST /api/v1/generate the same way;
  * status while 200 Framepack `wait_for_result` requests are held open;
  * status with 200 dashboards open (each polling its live status every 2 s, as
    static/js/site.js does), against the same server idle before and after;
  * submit -> in_progress pick-up time (ORM broker), from the rows' own timestamps.
Targets (issue 2): status p99 < 50 ms, >= 60 % of the bare view's throughput, pick-up
median < 300 ms. Results are printed as tables; nothing here asserts on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "3000"))  # per round
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WAITERS = int(os.environ.get("BENCH_WAITERS", "200"))
# Open dashboard pages, each polling the live status of its generations (static/js/site.js).
DASHBOARDS = int(os.environ.get("BENCH_DASHBOARDS", "200"))
DASHBOARD_POLL_S = 2.0
DASHBOARD_GENERATIONS = 3
WAIT_SETTLE_S = 8.0
# Held waits end (504) after this; long enough to cover the status measurement.
WAIT_LIMIT_S = 20
SUBMITS = int(os.environ.get("BENCH_SUBMITS", "400"))
PICKUPS = int(os.environ.get("BENCH_PICKUPS", "30"))
# Two web processes per core: while one waits on SQLite or the GIL another serves.
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", str(2 * (os.cpu_count() or 1))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def migrate_with_key(tree: Path, env: dict[str, str]) -> str:
    """Migrate the data dir that `env` names with `tree`'s code, and make the bench user and
    an API key for it (a plan no load here uses up); the raw key."""
    manage = [sys.executable, str(tree / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, cwd=tree)
    made = subprocess.run(
        [*manage, "create_api_key", "--email", "bench@example.com", "--create-user",
         "--monthly-limit", "100000000"],
        env=env, check=True, cwd=tree, capture_output=True, text=True,
    )  # fmt: skip
    return made.stdout.strip().splitlines()[-1]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


async def _client(
    port: int, request: bytes, count: int, latencies: list[float], errors: list[int]
) -> None:
    """One keep-alive connection sending `count` requests back to back (HTTP/1.1)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(count):
        start = time.perf_counter()
        writer.write(request)
        status = await _read_response(reader)
        latencies.append(time.perf_counter() - start)
        if status >= 400:
            errors[0] += 1
    writer.close()


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (head and Content-Length body); its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


def _raw_request(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes | None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def load_async(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    total: int,
    clients: int,
) -> dict[str, float]:
    request = _raw_request(port, method, path, headers, body)
    latencies: list[float] = []
    errors = [0]
    began = time.perf_counter()
    await asyncio.gather(
        *(_client(port, request, total // clients, latencies, errors) for _ in range(clients))
    )
    return summarize(latencies, time.perf_counter() - began, errors[0])


def load(*args: Any) -> dict[str, float]:
    """`load_async` run to completion: `total` requests over `clients` keep-alive
    connections. The load generator is a single asyncio loop writing raw HTTP/1.1, far
    cheaper per request than threads with http.client, so it takes little CPU from the
    server it measures (both share this machine)."""
    return asyncio.run(load_async(*args))


async def _hold_wait(port: int, request: bytes, codes: list[int]) -> None:
    """One Framepack `wait_for_result` request, held open until the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    codes.append(int(head.split(b" ", 2)[1]))
    writer.close()


def waits_scenario(
    port: int, auth: dict[str, str], status_path: str
) -> tuple[dict[str, float], list[int], int]:
    """WAITERS held `wait_for_result` requests while other clients poll status."""
    body = json.dumps({"model": "local", "prompt": "bench wait", "num_frames": 30,
                       "resolution": "480p", "wait_for_result": True}).encode()  # fmt: skip
    request = _raw_request(port, "POST", "/v1/generate-video", auth, body)
    codes: list[int] = []

    async def scenario() -> tuple[dict[str, float], int]:
        holders = [asyncio.create_task(_hold_wait(port, request, codes)) for _ in range(WAITERS)]
        await asyncio.sleep(WAIT_SETTLE_S)  # every waiter submitted and is now waiting
        open_during = WAITERS - len(codes)
        stats = await load_async(port, "GET", status_path, auth, None, REQUESTS, CLIENTS)
        await asyncio.gather(*holders)
        return stats, open_during

    stats, open_during = asyncio.run(scenario())
    return stats, codes, open_during


async def _dashboard(
    port: int, request: bytes, stop: asyncio.Event, latencies: list[float], errors: list[int]
) -> None:
    """One open dashboard page: its live-status poll every DASHBOARD_POLL_S seconds (what
    static/js/site.js does), on a keep-alive connection of its own."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.sleep(random.uniform(0, DASHBOARD_POLL_S))  # pages opened at random times
    while not stop.is_set():
        start = time.perf_counter()
        writer.write(request)
        status = await _read_response(reader)
        latencies.append(time.perf_counter() - start)
        if status >= 400:
            errors[0] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), DASHBOARD_POLL_S)
    writer.close()


def dashboards_scenario(
    port: int, auth: dict[str, str], status_path: str, cookie: str, ids: list[str]
) -> dict[str, dict[str, float]]:
    """Status measured idle, then with DASHBOARDS dashboards open and polling their live
    status, then idle again (drift on a shared machine shows as idle-before != idle-after)."""
    poll = _raw_request(port, "GET", f"/api/dashboard/live?ids={','.join(ids)}",
                        {"Cookie": cookie, "Accept": "application/json"}, None)  # fmt: skip

    async def scenario() -> dict[str, dict[str, float]]:
        results = {"idle": await load_async(port, "GET", status_path, auth, None, REQUESTS,
                                            CLIENTS)}  # fmt: skip
        stop = asyncio.Event()
        latencies: list[float] = []
        errors = [0]
        pages = [asyncio.create_task(_dashboard(port, poll, stop, latencies, errors))
                 for _ in range(DASHBOARDS)]  # fmt: skip
        await asyncio.sleep(DASHBOARD_POLL_S * 2)  # every page open and polling
        began, before = time.perf_counter(), len(latencies)
        results["busy"] = await load_async(port, "GET", status_path, auth, None, REQUESTS,
                                           CLIENTS)  # fmt: skip
        polled = latencies[before:]  # the polls made while status was measured
        stop.set()
        await asyncio.gather(*pages)
        results["polls"] = summarize(polled, time.perf_counter() - began, errors[0])
        results["idle_after"] = await load_async(port, "GET", status_path, auth, None,
                                                 REQUESTS, CLIENTS)  # fmt: skip
        return results

    return asyncio.run(scenario())


def dashboard_session(env: dict[str, str], email: str) -> str:
    """A logged-in session cookie for `email`, made in this process against the bench's
    database (the server reads the same one)."""
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.update(env)
    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from generations.models import User

    user = User.objects.get(email=email)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def summarize(latencies: list[float], elapsed: float, errors: int) -> dict[str, float]:
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "rps": len(latencies) / elapsed,
        "errors": errors,
        "n": len(latencies),
        "elapsed": elapsed,
        "latencies": latencies,  # type: ignore[dict-item]
    }


def interleaved(
    port: int, targets: dict[str, tuple[str, dict[str, str]]], per_round: int
) -> dict[str, dict[str, float]]:
    """Each target measured in ROUNDS alternating rounds, so drift on a shared machine (other
    processes, CPU frequency) hits the baseline and the endpoint alike. Requests/s is the
    median of the rounds; percentiles are over all requests."""
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for _ in range(ROUNDS):
        for name, (path, headers) in targets.items():
            rounds[name].append(load(port, "GET", path, headers, None, per_round, CLIENTS))
    merged = {}
    for name, results in rounds.items():
        pooled: list[float] = [x for r in results for x in r["latencies"]]  # type: ignore[attr-defined]
        merged[name] = summarize(pooled, 1.0, int(sum(r["errors"] for r in results)))
        merged[name]["rps"] = statistics.median(r["rps"] for r in results)
    return merged


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="videogen-bench-"))
    env = {
        **os.environ,
        "VIDEOGEN_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "VIDEOGEN_WORKERS": "1",
        # The load far exceeds a real plan's request rate; measure the path, not the 429s.
        "VIDEOGEN_DEFAULT_RATE_LIMIT": "1000000000",
        "VIDEOGEN_WAIT_TIMEOUT": str(WAIT_LIMIT_S),
        "PYTHONPATH": str(ROOT),
    }
    py = sys.executable
    manage = [py, str(ROOT / "manage.py")]
    key = migrate_with_key(ROOT, env)
    port = free_port()
    server_cmd = [
        py,
        "-m",
        "uvicorn",
        "videogen_site.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(WEB_WORKERS),
        "--no-access-log",
    ]
    log = (data_dir / "server.log").open("w")
    server = subprocess.Popen(server_cmd, env=env, cwd=ROOT, stdout=log, stderr=log)
    worker: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(200):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/bench/bare")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        submit_body = json.dumps(
            {"model": "local", "prompt": "bench", "duration": 1, "resolution": "480p"}
        ).encode()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/api/v1/generate", body=submit_body, headers=auth)
        gen_id = json.loads(conn.getresponse().read())["generation_id"]

        # Warm up both paths, then measure them back to back.
        load(port, "GET", "/api/bench/bare", {}, None, 400, CLIENTS)
        load(port, "GET", f"/api/v1/status/{gen_id}", auth, None, 400, CLIENTS)
        measured = interleaved(
            port,
            {
                "bare": ("/api/bench/bare", {}),
                "bare_full": ("/bench/bare", {}),
                "status": (f"/api/v1/status/{gen_id}", auth),
            },
            REQUESTS,
        )
        bare, bare_full, status = measured["bare"], measured["bare_full"], measured["status"]
        submit = load(port, "POST", "/api/v1/generate", auth, submit_body, SUBMITS, CLIENTS)

        def row(name: str, r: dict[str, float]) -> list[str]:
            return [
                name,
                str(int(r["n"])),
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                f"{r['rps']:.0f}",
                f"{r['rps'] / bare['rps']:.2f}",
                str(int(r["errors"])),
            ]

        table(
            f"API latency, {CLIENTS} concurrent keep-alive clients, uvicorn --workers "
            f"{WEB_WORKERS}, {ROUNDS} interleaved rounds (ratio = throughput / bare view)",
            ["endpoint", "requests", "p50 ms", "p99 ms", "req/s", "ratio", "errors"],
            [
                row("bare JSON view, API handler (baseline)", bare),
                row("bare JSON view, full middleware stack", bare_full),
                row("GET /api/v1/status/{id}", status),
                row("POST /api/v1/generate", submit),
            ],
        )

        # Long waits: WAITERS held wait_for_result requests (no worker runs yet, so they wait)
        # while 16 other clients poll status.
        waited, codes, open_during = waits_scenario(port, auth, f"/api/v1/status/{gen_id}")
        table(
            f"Status while {WAITERS} Framepack wait_for_result requests are held open",
            ["waits open", "status requests", "p50 ms", "p99 ms", "req/s", "waits ended",
             "target"],
            [[str(open_during), str(int(waited["n"])), f"{waited['p50_ms']:.1f}",
              f"{waited['p99_ms']:.1f}", f"{waited['rps']:.0f}",
              ", ".join(f"{c}: {codes.count(c)}" for c in sorted(set(codes))),
              "p99 < 100 ms"]],
        )  # fmt: skip

        # Open dashboards: each page polls the live status of a few queued generations.
        watched = []
        for _ in range(DASHBOARD_GENERATIONS):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/api/v1/generate", body=submit_body, headers=auth)
            watched.append(json.loads(conn.getresponse().read())["generation_id"])
        cookie = dashboard_session(env, "bench@example.com")
        seen = dashboards_scenario(port, auth, f"/api/v1/status/{gen_id}", cookie, watched)
        idle_rps = (seen["idle"]["rps"] + seen["idle_after"]["rps"]) / 2
        polls = seen["polls"]
        table(
            f"Status with {DASHBOARDS} dashboards open (each polls the live status of "
            f"{DASHBOARD_GENERATIONS} queued generations every {DASHBOARD_POLL_S:.0f} s), "
            "against the same server idle",
            ["", "requests", "p50 ms", "p99 ms", "req/s", "vs idle req/s", "errors"],
            [[name, str(int(r["n"])), f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
              f"{r['rps']:.0f}", f"{r['rps'] / idle_rps:.2f}", str(int(r["errors"]))]
             for name, r in (("status, idle (before)", seen["idle"]),
                             (f"status, {DASHBOARDS} dashboards open", seen["busy"]),
                             ("status, idle (after)", seen["idle_after"]),
                             ("the dashboards' live polls", polls))],
        )  # fmt: skip

        # Pick-up: the queue is drained first; then one submit at a time on an idle worker.
        from generations.models import Generation

        Generation.objects.filter(status__in=["pending", "in_queue"]).update(
            status="canceled", cancel_requested=True
        )
        worker = subprocess.Popen([*manage, "qcluster"], env=env, cwd=ROOT, stdout=log, stderr=log)
        time.sleep(3)
        ids = []
        for _ in range(PICKUPS):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/api/v1/generate", body=submit_body, headers=auth)
            ids.append(json.loads(conn.getresponse().read())["generation_id"])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if Generation.objects.filter(generation_id=ids[-1], status="completed").exists():
                    break
                time.sleep(0.05)
        pickups = [
            (g.started_at - g.created_at).total_seconds() * 1000
            for g in Generation.objects.filter(generation_id__in=ids)
            if g.started_at
        ]
        table(
            "Pick-up: submit -> in_progress, ORM broker, one idle worker",
            ["samples", "median ms", "p90 ms", "max ms", "target"],
            [
                [
                    str(len(pickups)),
                    f"{statistics.median(pickups):.0f}",
                    f"{percentile(pickups, 90):.0f}",
                    f"{max(pickups):.0f}",
                    "median < 300",
                ]
            ],
        )
        ratio = status["rps"] / bare["rps"]
        ratio_full = status["rps"] / bare_full["rps"]
        median_pickup = statistics.median(pickups)
        table(
            "Targets (ratios against the lean API-handler baseline decide; the full-stack "
            "ratio is shown for reference)",
            ["target", "measured", "met"],
            [
                ["status p99 < 50 ms", f"{status['p99_ms']:.1f} ms", str(status["p99_ms"] < 50)],
                ["status >= 60 % of bare req/s", f"{ratio:.0%}", str(ratio >= 0.6)],
                ["  (vs bare, full middleware)", f"{ratio_full:.0%}", str(ratio_full >= 0.6)],
                ["pick-up median < 300 ms", f"{median_pickup:.0f} ms", str(median_pickup < 300)],
                [
                    f"status p99 < 100 ms with {WAITERS} waits open",
                    f"{waited['p99_ms']:.1f} ms",
                    str(waited["p99_ms"] < 100 and open_during == WAITERS),
                ],
            ],
        )
    finally:
        for proc in (server, worker):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        log.close()


if __name__ == "__main__":
    main()
