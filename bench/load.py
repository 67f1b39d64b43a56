"""`make bench`, load scenario (issue 9): 10,000 submissions at 32 concurrent clients against
the production server on PostgreSQL + Redis.

Starts a throwaway PostgreSQL (initdb as the `postgres` user, fsync off) and Redis on free
loopback ports (tests/dbservers.py, as the fault tests do), migrates, makes a key with room
for every submission, and serves the ASGI app with uvicorn (two processes per core) as in
production. No worker runs: this measures
the API's admission path (validation, quota reservation, the row, the enqueue), which is
what a burst of clients hits. Prints throughput, p50/p99 and the error count (must be 0),
and checks afterwards that the database holds exactly one generation and one charge per
accepted submission. Needs root (to run PostgreSQL as `postgres`), the PostgreSQL server
binaries and redis-server; says so and stops otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import free_port, load, table
from tests import dbservers
from tests.servers import web_command

ROOT = Path(__file__).resolve().parent.parent
TOTAL = int(os.environ.get("BENCH_LOAD_TOTAL", "10000"))
CLIENTS = int(os.environ.get("BENCH_LOAD_CLIENTS", "32"))
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", str(2 * (os.cpu_count() or 1))))


def _wait_port(port: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def main() -> None:
    why = dbservers.missing()
    if why:
        print(f"\nLoad scenario skipped: {why}.")
        return
    work = Path(tempfile.mkdtemp(prefix="videogen-load-"))
    port = free_port()
    server: subprocess.Popen[bytes] | None = None
    pg = dbservers.Postgres()
    redis: dbservers.Redis | None = None
    try:
        redis = dbservers.Redis(work)
        env = {
            **os.environ,
            "VIDEOGEN_DATA_DIR": str(work / "data"),
            "DATABASE_URL": pg.url,
            "REDIS_URL": redis.url,
            "DJANGO_SETTINGS_MODULE": "videogen_site.settings",
            # A burst far beyond a plan's request rate: measure admission, not the 429s.
            "VIDEOGEN_DEFAULT_RATE_LIMIT": "1000000000",
            "PYTHONPATH": str(ROOT),
        }
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
        key = subprocess.run(
            [*manage, "create_api_key", "--email", "load@example.com", "--create-user",
             "--monthly-limit", str(TOTAL * 2)],
            env=env, check=True, cwd=ROOT, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        log = (work / "server.log").open("w")
        server = subprocess.Popen(web_command(port, "--workers", str(WEB_WORKERS)), env=env,
                                  cwd=ROOT, stdout=log, stderr=log)  # fmt: skip
        _wait_port(port)
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        body = json.dumps({"model": "local", "prompt": "a lighthouse in a storm",
                           "duration": 2, "resolution": "480p"}).encode()  # fmt: skip
        warm = load(port, "POST", "/api/v1/generate", auth, body, 10 * CLIENTS, CLIENTS)
        # Baseline, same server and clients: an authenticated read (key, rate limit, one
        # usage query): what any API call costs before a submit's own work.
        load(port, "GET", "/api/v1/user", auth, None, 10 * CLIENTS, CLIENTS)
        base = load(port, "GET", "/api/v1/user", auth, None, TOTAL // 2, CLIENTS)
        result = load(port, "POST", "/api/v1/generate", auth, body, TOTAL, CLIENTS)
        rows, charges = _count(env)
        expected = sum(int(r["n"]) - int(r["errors"]) for r in (warm, result))
        table(
            f"Load: {int(result['n'])} submissions (POST /api/v1/generate) at {CLIENTS} "
            f"concurrent clients, uvicorn --workers {WEB_WORKERS}, PostgreSQL + Redis",
            ["scenario", "requests", "req/s", "p50 ms", "p99 ms", "errors", "x baseline req/s",
             "x baseline p99", "rows", "charges", "target"],
            [["baseline: GET /api/v1/user", str(int(base["n"])), f"{base['rps']:.0f}",
              f"{base['p50_ms']:.1f}", f"{base['p99_ms']:.1f}", str(int(base["errors"])),
              "1.00", "1.00", "", "", "0 errors"],
             ["submit: POST /api/v1/generate", str(int(result["n"])), f"{result['rps']:.0f}",
              f"{result['p50_ms']:.1f}", f"{result['p99_ms']:.1f}", str(int(result["errors"])),
              f"{result['rps'] / base['rps']:.2f}", f"{result['p99_ms'] / base['p99_ms']:.2f}",
              f"{rows} (expected {expected})", str(charges), "0 errors, 1 row + 1 charge each"]],
        )  # fmt: skip
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        if redis is not None:
            redis.kill()
        pg.close()
        shutil.rmtree(work, ignore_errors=True)


def _count(env: dict[str, str]) -> tuple[int, int]:
    """Generations and charges in the database (a fresh process with the server's settings)."""
    code = (
        "import django; django.setup();"
        "from generations.models import Generation, UsageEvent;"
        "print(Generation.objects.count(), UsageEvent.objects.filter(kind='charge').count())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    return int(out[-2]), int(out[-1])


if __name__ == "__main__":
    main()
