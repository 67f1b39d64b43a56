"""Demo data (CONTRACT 10): `manage.py seed_demo --generations N [--teams T]` fills the
database with N finished generations spread over T teams, for demos and for measuring the
read paths at scale. Never run by anything else.

What it makes, fast: T teams (each with an owner and a member), the first holding 40 % of
the generations and the others sharing the rest evenly; N generations of the catalog's
models over the last year, 96 % completed and 4 % failed, with their ledger rows (a charge
and a settle, or a charge and a refund, with credits and US dollars as the real paths write
them) and each team's monthly counters to match. Media files are shared: a handful of real
MP4s with their posters, written once, named by every generation (so the gallery and the
video endpoints serve something real). Rows go in with COPY on PostgreSQL and batched
INSERTs elsewhere, with explicit primary keys (run it on a server nobody else writes to).
"""

from __future__ import annotations

import dataclasses
import json
import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, models, transaction
from django.utils import timezone

from generations import catalog
from generations.core import accounts, rollups
from generations.ids import new_generation_id
from generations.media.encode import Mp4Writer, write_poster
from generations.models import Generation, MonthlyUsage, Team, UsageEvent, User

# The first team's share of the generations (the skew a year of real use shows).
BIG_TEAM_SHARE = 0.4
FAILED_SHARE = 0.04
DAYS = 365
BATCH = 5000
MEDIA_CLIPS = 4
WIDTH, HEIGHT, FPS, SECONDS = 854, 480, 30, 1
PROMPTS = (
    "A calm ocean at sunset", "Neon city streets in the rain", "A campfire under the stars",
    "Snow falling on a pine forest", "A paper boat on a stream", "Clouds racing over hills",
    "A hummingbird at a red flower", "Lanterns drifting over a lake", "A desert road at dawn",
    "Waves breaking on black rocks", "A kite over a beach", "Fog rolling through a valley",
)  # fmt: skip
# Models with the weight of each, and who served them (hosted ones cost money).
MODELS = (("local", 5, "local"), ("kling_25", 3, "fal"), ("veo-31", 2, "gemini"),
          ("wan-25", 2, "replicate"), ("sora-2", 1, "openai"))  # fmt: skip
USD_PER_S = {"local": Decimal(0), "fal": Decimal("0.07"), "gemini": Decimal("0.40"),
             "replicate": Decimal("0.10"), "openai": Decimal("0.10")}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Seeded:
    teams: int
    generations: int
    ledger_rows: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.generations / self.seconds if self.seconds else 0.0


def seed(
    *, generations: int, teams: int, seed: int = 0, say: Callable[[str], None] | None = None
) -> Seeded:
    """Make the teams, the shared media and `generations` rows with their ledger."""
    if generations < 1 or teams < 1:
        raise ValueError("seed_demo needs at least one generation and one team")
    started = time.monotonic()
    rng = random.Random(seed)
    say = say or (lambda _: None)
    made_teams = _teams(teams, rng)
    media = _media(rng)
    say(f"{len(made_teams)} teams and {len(media)} shared clips ready")
    shares = _shares(generations, len(made_teams))
    next_gen = _next_pk(Generation)
    next_event = _next_pk(UsageEvent)
    counters: Counter[tuple[int, str]] = Counter()
    spent: dict[tuple[int, str], Decimal] = {}
    done = 0
    ledger = 0
    for (team, owner, member), count in zip(made_teams, shares, strict=True):
        for start in range(0, count, BATCH):
            rows, events = _batch(
                min(BATCH, count - start), team, (owner, member), media, rng, next_gen,
                next_event, counters, spent,
            )  # fmt: skip
            with transaction.atomic():
                _insert(Generation, rows)
                _insert(UsageEvent, events)
            next_gen += len(rows)
            next_event += len(events)
            done += len(rows)
            ledger += len(events)
            say(f"{done} of {generations} generations")
    _counters(counters, spent)
    _sync_sequences()
    for team, _, _ in made_teams:
        rollups.roll(team)  # their closed days summed up now, not by the first reader
    say("usage rolled up")
    return Seeded(len(made_teams), done, ledger, time.monotonic() - started)


def _teams(count: int, rng: random.Random) -> list[tuple[Team, User, User]]:
    made = []
    suffix = uuid.uuid4().hex[:6]
    for index in range(count):
        owner = accounts.user_create(email=f"demo-{suffix}-{index}@example.com",
                                     password=None, name=f"Demo owner {index}")  # fmt: skip
        team = accounts.team_create(name=f"Demo studio {index + 1}", owner=owner)
        member = accounts.user_create(email=f"demo-{suffix}-{index}-m@example.com",
                                      password=None, name=f"Demo member {index}")  # fmt: skip
        team.memberships.create(user=member, role="member")
        made.append((team, owner, member))
    return made


def _media(rng: random.Random) -> list[tuple[str, str, int]]:
    """A few real clips (a moving gradient, each its own colours) and posters, stored once:
    (video name, poster name, video bytes)."""
    stored = []
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(MEDIA_CLIPS):
            tint = np.array([rng.randrange(256) for _ in range(3)], dtype=np.int64)
            path = Path(tmp) / f"demo-{index}.mp4"
            first = None
            with Mp4Writer(path, WIDTH, HEIGHT, FPS) as writer:
                for frame_no in range(FPS * SECONDS):
                    frame = (((xs + ys + frame_no * 6)[..., None] + tint) % 256).astype(np.uint8)
                    first = frame if first is None else first
                    writer.write(frame)
            assert first is not None
            poster = write_poster(first, Path(tmp) / f"demo-{index}.jpg")
            with path.open("rb") as fh:
                video_name = default_storage.save(f"videos/demo-{index}.mp4", File(fh))
            with poster.open("rb") as fh:
                poster_name = default_storage.save(f"posters/demo-{index}.jpg", File(fh))
            stored.append((video_name, poster_name, path.stat().st_size))
    return stored


def _shares(total: int, teams: int) -> list[int]:
    if teams == 1:
        return [total]
    big = round(total * BIG_TEAM_SHARE)
    rest, extra = divmod(total - big, teams - 1)
    return [big] + [rest + (1 if index < extra else 0) for index in range(teams - 1)]


def _next_pk(model: type[models.Model]) -> int:
    found = model._default_manager.aggregate(m=models.Max("pk"))["m"]
    return int(found or 0) + 1


def _batch(
    count: int,
    team: Team,
    people: Sequence[User],
    media: Sequence[tuple[str, str, int]],
    rng: random.Random,
    first_pk: int,
    first_event: int,
    counters: Counter[tuple[int, str]],
    spent: dict[tuple[int, str], Decimal],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows as {attname: value} (no model instances: a million of them would take most of
    the time), a generation's and its ledger's."""
    now = timezone.now()
    names = [m[0] for m in MODELS]
    weights = [m[1] for m in MODELS]
    served_by = {m[0]: m[2] for m in MODELS}
    durations = {
        name: (info.default_duration if (info := catalog.get_model(name)) is not None else 5)
        for name in names
    }
    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for offset in range(count):
        model = rng.choices(names, weights)[0]
        duration = durations[model]
        created = now - timedelta(seconds=rng.uniform(0, DAYS * 86400))
        took = timedelta(seconds=rng.uniform(5, 240))
        failed = rng.random() < FAILED_SHARE
        engine = served_by[model]
        est = (USD_PER_S[engine] * duration).quantize(Decimal("0.0001"))
        cost = est if not failed else Decimal(0)
        video, poster, size = media[rng.randrange(len(media))]
        user = people[rng.randrange(len(people))]
        pk = first_pk + offset
        month = created.astimezone(UTC).strftime("%Y-%m")
        rows.append({
            "id": pk, "generation_id": new_generation_id(), "request_id": uuid.uuid4(),
            "team_id": team.pk, "user_id": user.pk, "source": "demo",
            "mode": "text-to-video", "model": model, "prompt": rng.choice(PROMPTS),
            "duration": duration, "resolution": "480p", "aspect_ratio": "16:9",
            "width": WIDTH, "height": HEIGHT, "fps": FPS, "num_frames": FPS * duration,
            "seed": rng.randrange(2**31),
            "status": Generation.Status.FAILED if failed else Generation.Status.COMPLETED,
            "progress": 0 if failed else 100, "created_at": created, "queued_at": created,
            "started_at": created, "finished_at": created + took,
            "heartbeat_at": created + took, "attempts": 1, "engine": engine,
            "error_code": "upstream_failed" if failed else "",
            "error_message": "The provider failed the job (demo data)." if failed else "",
            "video": "" if failed else video, "poster": "" if failed else poster,
            "video_size": 0 if failed else size, "est_usd": est, "cost_usd": cost,
            "cost_source": "" if failed else "price_table",
            "route_attempts": [] if engine == "local" else [
                {"provider": engine, "outcome": "failed" if failed else "served",
                 "at": (created + took).isoformat(timespec="seconds"), "detail": ""}],
        })  # fmt: skip
        common = {"team_id": team.pk, "user_id": user.pk, "generation_id": pk, "month": month,
                  "model": model, "provider": engine if engine != "local" else ""}  # fmt: skip
        events.append({"id": first_event + len(events), "kind": UsageEvent.Kind.CHARGE,
                       "units": 1, "usd": est, "created_at": created, **common})  # fmt: skip
        if failed:
            events.append({"id": first_event + len(events), "kind": UsageEvent.Kind.REFUND,
                           "units": -1, "usd": -est, "created_at": created + took,
                           **common})  # fmt: skip
        else:
            events.append({"id": first_event + len(events), "kind": UsageEvent.Kind.SETTLE,
                           "units": 0, "usd": cost - est, "created_at": created + took,
                           **common})  # fmt: skip
            counters[team.pk, month] += 1
            spent[team.pk, month] = spent.get((team.pk, month), Decimal(0)) + cost
    return rows, events


def _insert(model: type[models.Model], rows: list[dict[str, Any]]) -> None:
    """The rows in one COPY on PostgreSQL (values psycopg adapts itself; JSON as text, and
    each column the rows leave out at its default), `bulk_create` elsewhere."""
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create([model(**row) for row in rows], batch_size=500)
        return
    fields = model._meta.concrete_fields
    given = rows[0].keys()
    defaults = {
        f.attname: f.get_db_prep_save(f.get_default(), connection)
        for f in fields
        if f.attname not in given
    }
    as_json = {f.attname for f in fields if isinstance(f, models.JSONField)}
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    names = [f.attname for f in fields]
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: COPY
        with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([
                    json.dumps(row[name]) if name in as_json and name in row
                    else row[name] if name in row else defaults[name]
                    for name in names
                ])  # fmt: skip


def _counters(counters: Counter[tuple[int, str]], spent: dict[tuple[int, str], Decimal]) -> None:
    """Each team's monthly counters, as the submits and settles would have left them."""
    for (team_id, month), used in counters.items():
        row, _ = MonthlyUsage.objects.get_or_create(team_id=team_id, month=month)
        MonthlyUsage.objects.filter(pk=row.pk).update(
            used=models.F("used") + used,
            spent_usd=models.F("spent_usd") + spent.get((team_id, month), Decimal(0)),
        )


def _sync_sequences() -> None:
    """After explicit primary keys, PostgreSQL's sequences must move past them."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in (Generation, UsageEvent):
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT COALESCE(MAX(id), 1) FROM {connection.ops.quote_name(table)}))"
            )
            # Fresh statistics for the planner: a million rows it has not seen yet.
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
