"""`make bench`: what the fair-share dispatcher costs per generation it hands to a worker.

    .venv/bin/python -m bench.fairshare

On a fresh data dir (SQLite, the ORM broker: django-q2 writes each task to its queue table,
nothing runs inline), 100 teams wait with 10,000 pending generations between them: uneven
lines (a few teams hold most of it) and every fifth team has a 64-item batch lane, submitted
before the single generations. Then, in this process, in rounds, with status reads before
and after each round of the others:

  * `fairshare.release(ahead=N)` for N = 1 and 8 (VIDEOGEN_QUEUE_AHEAD): per call, its time
    over the items it released (median, p99) and the total over all of them. Between calls
    (not timed) simulated workers take each released task off the ORM queue and claim its
    row; they run BENCH_FAIRSHARE_WORKERS at a time, finishing the oldest first, so teams
    have work in flight and the queue always has room again. Each N starts again from the
    same 10,000 waiting;
  * the previous dispatch, for comparison: one item handed over directly (async_task, then
    pending -> in_queue), what a submit did before fair share;
  * the authenticated read, as the baseline: GET /api/v1/status/{id} of a running
    generation, in process through the production ASGI app (bench/asgi_calls.py).

Every time is also printed over the authenticated read's median, measured between the
same rounds. BENCH_FAIRSHARE_ROUNDS, _CALLS, _READS, _DIRECT, _WORKERS size the run.

Fairness is checked on the released order: each release must be the head of the line of
the team that fair share owes the next turn (fewest in flight, then oldest waiting, as the
call saw them; interactive before batch within the team), and the first 100 released items
are counted by team, against the submit order a FIFO broker would have followed.
Nothing asserts on time.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.run import migrate_with_key, percentile, table

ROOT = Path(__file__).resolve().parent.parent
TEAMS = int(os.environ.get("BENCH_FAIRSHARE_TEAMS", "100"))
WAITING = int(os.environ.get("BENCH_FAIRSHARE_WAITING", "10000"))
BATCH_SIZE = 64
BATCH_EVERY = 5  # every fifth team has a batch lane
ROUNDS = int(os.environ.get("BENCH_FAIRSHARE_ROUNDS", "5"))
CALLS = int(os.environ.get("BENCH_FAIRSHARE_CALLS", "60"))  # release() calls per round and N
READS = int(os.environ.get("BENCH_FAIRSHARE_READS", "100"))  # status reads per round
DIRECT = int(os.environ.get("BENCH_FAIRSHARE_DIRECT", "60"))  # direct hand-overs per round
WORKERS = int(os.environ.get("BENCH_FAIRSHARE_WORKERS", "100"))
AHEADS = (1, 8)


def setup() -> str:
    """A migrated data dir, Django set up on it in this process; the bench API key."""
    data_dir = tempfile.mkdtemp(prefix="videogen-fairshare-")
    for name in ("REDIS_URL", "VIDEOGEN_Q_SYNC", "DATABASE_URL"):
        os.environ.pop(name, None)  # SQLite and the ORM broker, tasks not run inline
    os.environ.update(
        VIDEOGEN_DATA_DIR=data_dir,
        DJANGO_SETTINGS_MODULE="bench.settings",
        VIDEOGEN_DEFAULT_RATE_LIMIT="1000000000",
        VIDEOGEN_API_DB_THREADS="1",
        PYTHONPATH=str(ROOT),
    )
    key = migrate_with_key(ROOT, dict(os.environ))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django_q.conf import Conf

    assert Conf.ORM and not Conf.SYNC, "the bench measures the ORM broker, tasks not run inline"
    return key


def sizes(rng: random.Random) -> list[int]:
    """Single generations per team: uneven (a few teams hold most), at least one each, so
    that with the batch lanes they add up to WAITING."""
    batches = len(range(0, TEAMS, BATCH_EVERY)) * BATCH_SIZE
    singles = WAITING - batches
    weights = [1 / (i + 1) ** 0.9 for i in range(TEAMS)]
    rng.shuffle(weights)
    counts = [1 + int((singles - TEAMS) * w / sum(weights)) for w in weights]
    for i in range(singles - sum(counts)):  # rounding leftovers
        counts[i % TEAMS] += 1
    return counts


def populate() -> list[int]:
    """TEAMS teams and WAITING pending generations, bulk-created; the bench's row ids."""
    from generations.models import Batch, Generation, Team
    from generations.vocabulary import Lane, Status

    rng = random.Random(16)
    teams = Team.objects.bulk_create(Team(name=f"bench team {i}") for i in range(TEAMS))
    start = datetime.now().astimezone() - timedelta(hours=3)
    rows: list[Generation] = []

    def row(team: Team, lane: Lane, created: datetime, batch: Batch | None = None) -> Generation:
        return Generation(
            team=team, batch=batch, lane=lane, queue="", status=Status.PENDING,
            created_at=created, mode="text-to-video", model="local", prompt="bench",
            duration=1, resolution="480p", aspect_ratio="16:9", width=854, height=480,
            fps=24, num_frames=24, seed=rng.randrange(2**31),
        )  # fmt: skip

    batched = teams[::BATCH_EVERY]
    batches = Batch.objects.bulk_create(
        Batch(team=t, created_at=start + timedelta(seconds=i)) for i, t in enumerate(batched)
    )
    for batch in batches:  # the batches first: a FIFO broker would run them before anyone
        rows += [row(batch.team, Lane.BATCH, batch.created_at, batch) for _ in range(BATCH_SIZE)]
    for team, count in zip(teams, sizes(rng), strict=True):
        rows += [
            row(team, Lane.INTERACTIVE, start + timedelta(minutes=5, seconds=rng.uniform(0, 9000)))
            for _ in range(count)
        ]
    made = Generation.objects.bulk_create(rows, batch_size=500)
    return [g.pk for g in made]


def reset(ids: list[int]) -> None:
    """All the bench's rows waiting again, the ORM queue empty."""
    from django_q.models import OrmQ

    from generations.models import Generation

    Generation.objects.filter(pk__in=ids).update(
        status="pending", queued_at=None, started_at=None, finished_at=None, claim=""
    )
    OrmQ.objects.all().delete()


class Workers:
    """Simulated workers: each takes a released task off the ORM queue and claims its row;
    WORKERS run at once, the oldest finishing first. What the fairness check needs to know
    is kept here: each team's waiting line and its work in flight."""

    def __init__(self, ids: list[int]) -> None:
        from generations.models import Generation

        self.ids = ids
        self.running: list[int] = []
        self.flying: Counter[int] = Counter()
        self.lines: dict[int, list[tuple[int, datetime, int]]] = {}
        for pk, team_id, lane, created in Generation.objects.filter(pk__in=ids).values_list(
            "pk", "team_id", "lane", "created_at"
        ):
            self.lines.setdefault(team_id, []).append((lane, created, pk))
        for line in self.lines.values():
            line.sort()
        self.team_of = {pk: t for t, line in self.lines.items() for _, _, pk in line}
        self.order: list[int] = []  # released, in order
        self.rule_broken = 0
        self.tasks_seen = 0

    def take(self, snapshot_oldest: dict[int, datetime], snapshot_flying: Counter[int]) -> int:
        """After a release call: check its picks, take its tasks, claim and finish rows."""
        from django.utils import timezone
        from django_q.models import OrmQ

        from generations.models import Generation

        released = list(
            Generation.objects.filter(status="in_queue", pk__in=self.ids)
            .order_by("queued_at", "pk")
            .values_list("pk", flat=True)
        )
        self.tasks_seen += OrmQ.objects.count()
        self.check(released, snapshot_oldest, snapshot_flying)
        OrmQ.objects.all().delete()  # the workers took the tasks
        now = timezone.now()
        Generation.objects.filter(pk__in=released).update(status="in_progress", started_at=now)
        self.running += released
        for pk in released:
            self.flying[self.team_of[pk]] += 1
        done, self.running = self.running[:-WORKERS], self.running[-WORKERS:]
        if done:
            Generation.objects.filter(pk__in=done).update(status="completed", finished_at=now)
            for pk in done:
                self.flying[self.team_of[pk]] -= 1
        return len(released)

    def snapshot(self) -> tuple[dict[int, datetime], Counter[int]]:
        """What a release call sees when it starts: each waiting team's oldest item."""
        oldest = {t: min(c for _, c, _ in line) for t, line in self.lines.items() if line}
        return oldest, Counter(self.flying)

    def check(self, released: list[int], oldest: dict[int, datetime], flying: Counter[int]) -> None:
        turns = [(flying[t], oldest[t], t) for t in oldest]
        heapq.heapify(turns)
        for pk in released:
            while turns and not self.lines[turns[0][2]]:
                heapq.heappop(turns)  # that team's line emptied
            owed = heapq.heappop(turns) if turns else None
            team = self.team_of[pk]
            line = self.lines[team]
            if owed is None or owed[2] != team or line[0][2] != pk:
                self.rule_broken += 1
            line.remove(next(item for item in line if item[2] == pk))
            self.order.append(pk)
            if owed is not None:
                heapq.heappush(turns, (owed[0] + 1, owed[1], owed[2]))


def status_reads(app: Any, key: str, path: str, count: int) -> list[float]:
    from bench.asgi_calls import call

    async def run() -> list[float]:
        times = []
        for _ in range(count):
            began = time.perf_counter()
            await call(app, key, "GET", path)
            times.append(time.perf_counter() - began)
        return times

    return asyncio.run(run())


def main() -> None:
    key = setup()
    from django_q.models import OrmQ

    from bench.asgi_calls import SUBMIT, call
    from generations.core import fairshare
    from generations.models import Generation
    from videogen_site.asgi import application

    # The read's generation: submitted through the API, then running (a worker has it).
    made = asyncio.run(call(application, key, "POST", "/api/v1/generate", SUBMIT))
    gen_id = json.loads(made)["generation_id"]
    Generation.objects.filter(generation_id=gen_id).update(status="in_progress")
    OrmQ.objects.all().delete()
    read_path = f"/api/v1/status/{gen_id}"
    status_reads(application, key, read_path, 50)  # warm: compiled queries, the DB thread

    began = time.perf_counter()
    ids = populate()
    populate_s = time.perf_counter() - began
    teams = Generation.objects.filter(pk__in=ids).values("team_id").distinct().count()
    fifo = [t for t, in Generation.objects.filter(pk__in=ids).order_by("created_at", "pk")
            .values_list("team_id")[:100]]  # fmt: skip

    reads: list[float] = []
    per_item: dict[int, list[float]] = {n: [] for n in AHEADS}
    totals: dict[int, list[float]] = {n: [0.0, 0] for n in AHEADS}  # seconds, items
    direct: list[float] = []
    workers: dict[int, Workers] = {}
    reset(ids)
    warm = Workers(ids)
    fairshare.release(ahead=1)  # warm: its queries compiled
    warm.take(*warm.snapshot())
    for n in AHEADS:  # each N from the same WAITING waiting; reads between its rounds
        reset(ids)
        w = workers[n] = Workers(ids)
        for _ in range(ROUNDS):
            reads += status_reads(application, key, read_path, READS)
            for _ in range(CALLS):
                snap = w.snapshot()
                t0 = time.perf_counter()
                fairshare.release(ahead=n)
                elapsed = time.perf_counter() - t0
                got = w.take(*snap)
                if got:
                    per_item[n].append(elapsed / got)
                    totals[n][0] += elapsed
                    totals[n][1] += got
    # The previous dispatch: one item at a time, straight to the broker.
    reset(ids)
    pending = list(Generation.objects.filter(pk__in=ids).order_by("pk")[: ROUNDS * DIRECT])
    for r in range(ROUNDS):
        reads += status_reads(application, key, read_path, READS)
        for gen in pending[r * DIRECT : (r + 1) * DIRECT]:
            t0 = time.perf_counter()
            fairshare.enqueue(generation=gen)
            direct.append(time.perf_counter() - t0)
    assert OrmQ.objects.count() == len(direct), "every direct hand-over wrote its task"
    reads += status_reads(application, key, read_path, READS)

    read = statistics.median(reads)

    def row(name: str, times: list[float], total: str) -> list[str]:
        median = statistics.median(times)
        p99 = percentile(times, 99)
        return [name, str(len(times)), f"{median * 1000:.3f}", f"{p99 * 1000:.3f}", total,
                f"{median / read:.2f}"]  # fmt: skip

    rows = [row("GET /api/v1/status/{id} (authenticated read, baseline)", reads, "")]
    for n in AHEADS:
        seconds, items = totals[n]
        total = f"{seconds:.2f} s / {int(items)} = {seconds / items * 1000:.3f} ms"
        rows.append(row(f"release(), VIDEOGEN_QUEUE_AHEAD={n}: per released item", per_item[n],
                        total))  # fmt: skip
    rows.append(row("previous dispatch: one item handed over directly", direct, ""))
    table(
        f"Fair-share dispatch at {len(ids):,} waiting generations over {teams} teams (ORM broker, "
        f"SQLite, {ROUNDS} rounds of {CALLS} release calls each, {WORKERS} simulated workers; "
        f"populated in {populate_s:.1f} s); ratio = median / the authenticated read's median",
        ["operation", "samples", "median ms", "p99 ms", "total", "ratio to read"],
        rows,
    )
    fair_rows = []
    for n in AHEADS:
        w = workers[n]
        first = Counter(w.team_of[pk] for pk in w.order[:100])
        fair_rows.append([
            f"VIDEOGEN_QUEUE_AHEAD={n}", str(len(w.order)), str(w.tasks_seen),
            f"{len(w.order) - w.rule_broken} of {len(w.order)}",
            f"{len(first)} teams (most from one: {max(first.values())})",
        ])  # fmt: skip
    first_fifo = Counter(fifo)
    most = max(first_fifo.values())
    fair_rows.append(["FIFO by submit time (a broker alone)", "", "", "",
                      f"{len(first_fifo)} teams (most from one: {most})"])  # fmt: skip
    table(
        "Fairness: the released order (each release the head of the line of the team owed the "
        "turn: fewest in flight, then oldest waiting; interactive before batch)",
        ["", "released", "tasks in the ORM queue", "releases as the rule says",
         "first 100 released"],
        fair_rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
