"""`make bench`, scale (issue 20): every read path at N = 1,000 and N = 1,000,000 generations
on PostgreSQL, and what `seed_demo` takes to make them.

Starts a throwaway PostgreSQL (tests/dbservers.py: initdb as the `postgres` user, fsync
off) with two databases, migrates both, fills one with BENCH_SCALE_SMALL generations and the
other with BENCH_SCALE_BIG (50 teams each, `manage.py seed_demo`, timed), then starts one
probe process per database (this module with `--probe`: Django set up on that database, the
test client in-process, so what is timed is the view and its queries, not HTTP). Each path
is timed BENCH_SCALE_SAMPLES times on each database, the two alternating, so drift on a
shared machine hits both alike. The pages are read as the owner of the biggest team (40 %
of the rows); the API as a key of that team. Prints p50 and p99 per path and the ratio of
the big database's to the small one's (target <= 1.5), then what it costs to go deep into
the API's list by `page=` and by cursor, on the big database.

Iterating on a kept pair of databases: BENCH_SCALE_URLS="postgresql://...small
postgresql://...big" skips the server, the migrations and the seeding (run `migrate` on
them yourself after a schema change). Needs root and Debian's postgresql otherwise.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SMALL = int(os.environ.get("BENCH_SCALE_SMALL", "1000"))
BIG = int(os.environ.get("BENCH_SCALE_BIG", "1000000"))
TEAMS = int(os.environ.get("BENCH_SCALE_TEAMS", "50"))
SAMPLES = int(os.environ.get("BENCH_SCALE_SAMPLES", "40"))
TARGET = 1.5
# Words of the demo prompts (generations/core/demo.py): one in 1 of 12 prompts, one in none.
COMMON_WORD, RARE_WORD = "hummingbird", "zeppelin"
# How deep into the API's list the second table goes (items of 20).
DEEP_PAGES = (1, 50, 500, 5000)


def _env(url: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "VIDEOGEN_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "videogen_site.settings",
        "VIDEOGEN_DEFAULT_RATE_LIMIT": "1000000000",
        "PYTHONPATH": str(ROOT),
    }


def _seed(env: dict[str, str], count: int) -> dict[str, float]:
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
    started = time.monotonic()
    out = subprocess.run(
        [*manage, "seed_demo", "--generations", str(count), "--teams", str(TEAMS)],
        env=env, check=True, cwd=ROOT, capture_output=True, text=True,
    ).stdout  # fmt: skip
    seconds = time.monotonic() - started
    found = re.search(r"\((\d+) ledger rows\)", out)
    ledger = int(found.group(1)) if found else 0
    return {"generations": count, "ledger": ledger, "seconds": seconds}


class Probe:
    """A process on one database that times one path per request, over stdin/stdout."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.scale", "--probe"], env=env, cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} probe stopped")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def time(self, path: str) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"path": path}) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if answer.get("error"):
            raise RuntimeError(f"{self.name}: {path}: {answer['error']}")
        return float(answer["ms"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def main() -> None:
    from bench.run import table
    from tests import dbservers

    kept = os.environ.get("BENCH_SCALE_URLS", "").split()
    work = Path(tempfile.mkdtemp(prefix="videogen-scale-"))
    pg = None
    seeded: dict[str, dict[str, float]] = {}
    if kept:
        urls = dict(zip(("small", "big"), kept, strict=True))
    else:
        why = dbservers.missing()
        if why:
            print(f"\nScale scenario skipped: {why}.")
            return
        pg = dbservers.Postgres()
        urls = {"small": pg.create_database("small"), "big": pg.create_database("big")}
        for name, count in (("small", SMALL), ("big", BIG)):
            seeded[name] = _seed(_env(urls[name], work / name), count)
    probes: dict[str, Probe] = {}
    try:
        for name, url in urls.items():
            probes[name] = Probe(name, _env(url, work / name))
        small, big = probes["small"], probes["big"]
        rows = []
        for path in PATHS:
            times: dict[str, list[float]] = {"small": [], "big": []}
            for probe in (small, big, small, big):  # warm: caches, plans, connections
                probe.time(path)
            for i in range(SAMPLES):
                for probe in (small, big) if i % 2 else (big, small):
                    times[probe.name].append(probe.time(path))
            p50 = {k: statistics.median(v) for k, v in times.items()}
            p99 = {k: percentile(v, 99) for k, v in times.items()}
            ratio = max(p50["big"] / p50["small"], p99["big"] / p99["small"])
            rows.append([path, f"{p50['small']:.1f}", f"{p99['small']:.1f}",
                         f"{p50['big']:.1f}", f"{p99['big']:.1f}",
                         f"{p50['big'] / p50['small']:.2f}", f"{p99['big'] / p99['small']:.2f}",
                         "ok" if ratio <= TARGET else "MISS"])  # fmt: skip
        counts = {name: probe.info["generations"] for name, probe in probes.items()}
        table(
            f"Scale: read paths at {counts['small']:,} vs {counts['big']:,} generations "
            f"(PostgreSQL, {TEAMS} teams; pages of the biggest team, {small.info['team_rows']:,} "
            f"vs {big.info['team_rows']:,} of its rows; {SAMPLES} samples each, alternating; ms)",
            ["path", "p50 small", "p99 small", "p50 big", "p99 big", "x p50", "x p99",
             f"<= {TARGET}"],
            rows,
        )  # fmt: skip
        deep = []
        deep_pages = [p for p in DEEP_PAGES if (p - 1) * 20 < big.info["team_rows"]]
        for page in deep_pages if os.environ.get("BENCH_SCALE_DEEP", "1") != "0" else ():
            by_page = [big.time(f"api list page={page}") for _ in range(max(5, SAMPLES // 4))]
            by_cursor = [big.time(f"api list cursor@{page}") for _ in range(max(5, SAMPLES // 4))]
            deep.append([str(page), f"{(page - 1) * 20:,}", f"{statistics.median(by_page):.1f}",
                         f"{statistics.median(by_cursor):.1f}"])  # fmt: skip
        if deep:
            table(
                "Scale: going deep into GET /api/v1/generations on the big database (20 a page; "
                "median ms)",
                ["page", "rows before it", "page=", "cursor= (next_cursor of the page before)"],
                deep,
            )
        if seeded:
            table(
                "Scale: seed_demo (COPY into PostgreSQL, migrations excluded)",
                ["generations", "ledger rows", "seconds", "generations/s"],
                [[f"{s['generations']:,}", f"{s['ledger']:,}", f"{s['seconds']:.1f}",
                  f"{s['generations'] / s['seconds']:,.0f}"] for s in seeded.values()],
            )  # fmt: skip
    finally:
        for probe in probes.values():
            probe.close()
        if pg is not None:
            pg.close()


# --- the probe: one database, one path at a time ---------------------------------------------

PATHS = (
    "generate (its ETAs)",
    "POST /api/v1/estimate",
    "gallery",
    "history",
    "history ?status=failed",
    "history ?model=veo-31",
    "history ?member=",
    f"history ?q={COMMON_WORD}",
    f"history ?q={RARE_WORD}",
    "usage",
    "usage ?format=csv",
    "metrics snapshot (worker, 1/min)",
    "/metrics",
    "api list page=1",
    "openai list",
    "reaper",
    "broker scan",
    "retention",
)


def probe() -> None:  # pragma: no cover - run as a subprocess
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from generations.core import apikeys
    from generations.dashboard.access import CURRENT_TEAM_KEY
    from generations.models import Generation, Plan, Team, User
    from generations.ops import metrics, retention
    from generations.tasks import reaper

    team = Team.objects.filter(name="Demo studio 1").order_by("pk").first()
    assert team is not None, "no demo team: run seed_demo first"
    owner = User.objects.get(pk=team.memberships.get(role="owner").user_id)
    member = team.memberships.exclude(user=owner).select_related("user").first()
    assert member is not None
    # Walking the list by cursor asks many pages at once: no per-minute limit in the way.
    Plan.objects.filter(teams=team).update(requests_per_minute=10**6)
    _, raw = apikeys.api_key_create(team=team, user=owner, name="scale bench")
    api = {"Authorization": f"Bearer {raw}"}
    pages = Client()
    pages.force_login(owner)
    session = pages.session  # work in the demo team, not the owner's personal one
    session[CURRENT_TEAM_KEY] = str(team.code)
    session.save()
    client = Client()
    cursors: dict[int, str] = {}

    def get(url: str, headers: dict[str, str] | None = None) -> Callable[[], int]:
        def run() -> int:
            response = (client if headers else pages).get(url, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code}")
            if response.streaming:
                for _ in response.streaming_content:  # type: ignore[attr-defined]
                    pass
            return response.status_code

        return run

    def step(limit: int, cursor: str) -> str:
        url = f"/api/v1/generations?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        return str(client.get(url, headers=api).json()["next_cursor"])

    def cursor_at(page: int) -> str:
        """The cursor the API hands out for `page` (walked once, then kept)."""
        if page not in cursors:
            cursor, skip = "", (page - 1) * 20
            for _ in range(skip // 100):
                cursor = step(100, cursor)
            if skip % 100:
                cursor = step(skip % 100, cursor)
            cursors[page] = cursor
        return cursors[page]

    def by_cursor(page: int) -> Callable[[], int]:
        def run() -> int:
            cursor = cursor_at(page)
            return get(f"/api/v1/generations?limit=20&cursor={cursor}" if cursor else
                       "/api/v1/generations?limit=20", api)()  # fmt: skip

        return run

    def estimate() -> int:
        body = {"model": "local", "prompt": "a kite", "duration": 1, "resolution": "480p"}
        response = client.post("/api/v1/estimate", body, content_type="application/json",
                               headers=api)  # fmt: skip
        if response.status_code != 200:
            raise RuntimeError(f"estimate: {response.status_code} {response.content[:200]!r}")
        return response.status_code

    runs: dict[str, Callable[[], object]] = {
        "generate (its ETAs)": get("/generate"),
        "POST /api/v1/estimate": estimate,
        "gallery": get("/gallery"),
        "history": get("/generations/"),
        "history ?status=failed": get("/generations/?status=failed"),
        "history ?model=veo-31": get("/generations/?model=veo-31"),
        "history ?member=": get(f"/generations/?member={member.user.email}"),
        f"history ?q={COMMON_WORD}": get(f"/generations/?q={COMMON_WORD}"),
        f"history ?q={RARE_WORD}": get(f"/generations/?q={RARE_WORD}"),
        "usage": get("/usage"),
        "usage ?format=csv": get("/usage?format=csv"),
        "metrics snapshot (worker, 1/min)": metrics.refresh_snapshot,
        "/metrics": get("/metrics"),
        "openai list": get("/v1/videos?limit=20", api),
        "reaper": reaper.reap_stale,
        "broker scan": lambda: reaper._requeue_lost(timezone.now()),
        "retention": lambda: retention.purge_media(older_than_days=400, dry_run=True),
    }
    for page in DEEP_PAGES:
        runs[f"api list page={page}"] = get(f"/api/v1/generations?page={page}&limit=20", api)
        runs[f"api list cursor@{page}"] = by_cursor(page)
    rows = Generation.objects.filter(team=team).count()
    print(json.dumps({"generations": Generation.objects.count(), "team_rows": rows}), flush=True)
    for line in sys.stdin:
        path = json.loads(line)["path"]
        try:
            started = time.perf_counter()
            runs[path]()
            ms = (time.perf_counter() - started) * 1000
        except Exception as exc:
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
            continue
        print(json.dumps({"ms": ms}), flush=True)
    connection.close()


if __name__ == "__main__":
    if "--probe" in sys.argv:
        probe()
    else:
        main()
