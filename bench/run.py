"""`make bench`: API latency and throughput against a bare Django view, and pick-up time.

Starts the production server command (uvicorn, ASGI) and one django-q2 cluster on a fresh
data dir, then measures, in the same run:
  * GET /api/v1/status/{id} vs a bare Django JSON view served by the same server
    (p50, p99, requests/s at 16 concurrent keep-alive clients, ratio to the baseline);
  * POST /api/v1/generate the same way;
  * submit -> in_progress pick-up time (ORM broker), from the rows' own timestamps.
Targets (issue 2): status p99 < 50 ms, >= 60 % of the bare view's throughput, pick-up
median < 300 ms. Results are printed as tables; nothing here asserts on time.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "4000"))
SUBMITS = int(os.environ.get("BENCH_SUBMITS", "400"))
PICKUPS = int(os.environ.get("BENCH_PICKUPS", "30"))
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def load(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    total: int,
    clients: int,
) -> dict[str, float]:
    """`total` requests spread over `clients` keep-alive connections; latency per request."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    per_client = total // clients

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        bad = 0
        for _ in range(per_client):
            start = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status >= 400:
                bad += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "rps": len(latencies) / elapsed,
        "errors": errors[0],
        "n": len(latencies),
    }


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
        "PYTHONPATH": str(ROOT),
    }
    py = sys.executable
    manage = [py, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
    key = (
        subprocess.run(
            [
                *manage,
                "create_api_key",
                "--email",
                "bench@example.com",
                "--create-user",
                "--monthly-limit",
                "1000000",
            ],
            env=env,
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
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
        load(port, "GET", "/bench/bare", {}, None, 400, CLIENTS)
        load(port, "GET", f"/api/v1/status/{gen_id}", auth, None, 400, CLIENTS)
        bare = load(port, "GET", "/bench/bare", {}, None, REQUESTS, CLIENTS)
        status = load(port, "GET", f"/api/v1/status/{gen_id}", auth, None, REQUESTS, CLIENTS)
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
            f"{WEB_WORKERS} (ratio = throughput / bare view)",
            ["endpoint", "requests", "p50 ms", "p99 ms", "req/s", "ratio", "errors"],
            [
                row("bare Django JSON view (baseline)", bare),
                row("GET /api/v1/status/{id}", status),
                row("POST /api/v1/generate", submit),
            ],
        )

        # Pick-up: the queue is drained first; then one submit at a time on an idle worker.
        import django

        sys.path.insert(0, str(ROOT))
        os.environ.update(env)
        django.setup()
        from generations.models import Generation

        Generation.objects.filter(status__in=["pending", "in_queue"]).update(
            status="canceled", cancel_requested=True
        )
        worker = subprocess.Popen([*manage, "qcluster"], env=env, cwd=ROOT, stdout=log, stderr=log)
        time.sleep(3)
        ids = []
        for _ in range(PICKUPS):
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
        ok_p99 = status["p99_ms"] < 50
        ok_ratio = status["rps"] / bare["rps"] >= 0.6
        ok_pickup = statistics.median(pickups) < 300
        table(
            "Targets",
            ["target", "measured", "met"],
            [
                ["status p99 < 50 ms", f"{status['p99_ms']:.1f} ms", str(ok_p99)],
                [
                    "status >= 60 % of bare req/s",
                    f"{status['rps'] / bare['rps']:.0%}",
                    str(ok_ratio),
                ],
                ["pick-up median < 300 ms", f"{statistics.median(pickups):.0f} ms", str(ok_pickup)],
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
