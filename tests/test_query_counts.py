"""Every dashboard page and API list makes as many queries for twelve items as for two: O(1)
in the number of items shown, never a query per row (issue 20).

Each case builds what its page shows, twice over (2 items, then 10 more), spread over what
could cost a query per row: a member and an API key of its own for each generation, several
models and statuses, hosted ones with their route attempts, failures with their errors,
batches with picks, sequences, extensions, remixes and shared links. The page is asked
once to warm it (a key's last use, a session touched), then counted, through the path
production takes (Django's handler for the dashboard, the ASGI application for the API and
the dashboard's live poll). A failure names the statements, the repeated ones first."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from generations.core import accounts, apikeys, quotas
from generations.dashboard.access import CURRENT_TEAM_KEY
from generations.models import (
    ApiKey,
    Batch,
    Generation,
    Invitation,
    Membership,
    Sequence,
    Team,
    UsageEvent,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from generations.vocabulary import Lane, Status
from tests.asgi_client import AsgiClient, count_queries
from tests.conftest import ApiClient

FEW, MANY = 2, 12
# (model, the engine that served it): ours and hosted ones.
MODELS = (("local", "local"), ("kling_25", "fal"), ("veo-31", "gemini"), ("wan-25", "replicate"),
          ("sora-2", "openai"))  # fmt: skip
STATUSES = (Status.COMPLETED, Status.FAILED, Status.IN_PROGRESS, Status.IN_QUEUE,
            Status.PENDING, Status.CANCELED)  # fmt: skip
LIVE = (Status.IN_PROGRESS, Status.IN_QUEUE, Status.PENDING)
FINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELED)
ROLES = (Membership.Role.MEMBER, Membership.Role.ADMIN, Membership.Role.VIEWER)
SLUG = "studio-gallery"


class World:
    """A team ("Studio") its owner works in, and factories for what its pages list."""

    def __init__(self) -> None:
        self.user = User.objects.create_user("owner@example.com")  # no password: no hashing
        self.team = accounts.team_create(name="Studio", owner=self.user)
        Team.objects.filter(pk=self.team.pk).update(gallery_public=True, gallery_slug=SLUG)
        self.key, self.raw_key = apikeys.api_key_create(team=self.team, user=self.user, name="k")
        self.serial = itertools.count()  # unique names
        self.row = itertools.count()  # which generation: its model, status, relations
        self.kept: dict[str, Any] = {}
        self.base = self.generations(1, statuses=(Status.COMPLETED,))[0]

    def once(self, name: str, make: Callable[[], Any]) -> Any:
        """What `make` returns, made on the first call only (a page's own object)."""
        if name not in self.kept:
            self.kept[name] = make()
        return self.kept[name]

    def member(self) -> User:
        n = next(self.serial)
        user = User.objects.create_user(f"member{n}@example.com", name=f"Member {n}")
        Membership.objects.create(team=self.team, user=user, role=ROLES[n % len(ROLES)])
        return user

    def api_key(self, user: User) -> ApiKey:
        n = next(self.serial)
        key = ApiKey.objects.create(
            team=self.team, user=user, name=f"key {n}", prefix="vg_live_", last4=f"{n:04d}",
            digest=f"{n:064d}", last_used_at=timezone.now() if n % 2 else None,
            revoked_at=timezone.now() if n % 3 == 0 else None,
        )  # fmt: skip
        return key

    def batch(self) -> Batch:
        user = self.member()
        return Batch.objects.create(team=self.team, user=user, api_key=self.api_key(user),
                                    title=f"Takes {next(self.serial)}")  # fmt: skip

    def sequence(self, **fields: Any) -> Sequence:
        user = self.member()
        values = {"team": self.team, "user": user, "api_key": self.api_key(user),
                  "title": f"Story {next(self.serial)}", "model": "local", "resolution": "480p",
                  "aspect_ratio": "16:9", "width": 854, "height": 480, "fps": 30,
                  "transition": Sequence.Transition.CROSSFADE, **fields}  # fmt: skip
        return Sequence.objects.create(**values)

    def generations(
        self, count: int, *, statuses: tuple[str, ...] = STATUSES, related: bool = False,
        **fields: Any,
    ) -> list[Generation]:  # fmt: skip
        """`count` generations, each by a member and key of its own, of several models and
        statuses, with their ledger rows (a charge, then a settle or a refund). `related`:
        also in batches (some the pick) and sequences, remixing and extending another."""
        now = timezone.now()
        rows = []
        for _ in range(count):
            n = next(self.row)
            user = self.member()
            model, engine = MODELS[n % len(MODELS)]
            status = statuses[n % len(statuses)]
            hosted = engine != "local"
            done = status == Status.COMPLETED
            values: dict[str, Any] = {
                "team": self.team, "user": user, "api_key": self.api_key(user), "source": "api",
                "mode": "text-to-video", "model": model, "prompt": f"prompt {user.pk}",
                "duration": 5, "resolution": "480p", "aspect_ratio": "16:9", "width": 854,
                "height": 480, "fps": 30, "num_frames": 150, "seed": n, "status": status,
                "progress": 100 if done else 40, "created_at": now + timedelta(seconds=n),
                "queued_at": now, "lane": Lane.INTERACTIVE.value,
                "started_at": now if status in (Status.IN_PROGRESS, *FINAL) else None,
                "finished_at": now + timedelta(seconds=n) if status in FINAL else None,
                "engine": engine if status != Status.PENDING else "",
                "engine_handle": {"queue_position": 3} if hosted else {},
                "route_attempts": [
                    {"provider": "replicate", "outcome": "failed_over", "at": "", "detail": "x"},
                    {"provider": engine, "outcome": "served", "at": "", "detail": ""},
                ] if hosted else [],
                "est_usd": Decimal("0.35") if hosted else Decimal(0),
                "cost_usd": Decimal("0.35") if hosted and done else None,
                "cost_source": "price_table" if hosted and done else "",
                "error_code": "upstream_failed" if status == Status.FAILED else "",
                "error_message": "The provider failed." if status == Status.FAILED else "",
                "video": "videos/x.mp4" if done else "", "poster": "posters/x.jpg" if done else "",
                "preview": "previews/x.webp" if done else "",
                "share_token": f"tok{user.pk:019d}" if done else None,
                "shared_at": now + timedelta(seconds=n) if done else None,
            }  # fmt: skip
            if related:
                values.update(remixed_from=self.base, extended_from=self.base)
                if n % 2:
                    values.update(batch=self.batch(), lane=Lane.BATCH.value)
                else:
                    values.update(sequence=self.sequence(), shot_index=0)
            values.update(fields)
            rows.append(Generation(**values))
        made = Generation.objects.bulk_create(rows)
        for gen in made:
            if gen.batch_id is not None and gen.status == Status.COMPLETED:
                Batch.objects.filter(pk=gen.batch_id).update(pick=gen)
        self.ledger(made)
        return made

    def ledger(self, rows: list[Generation]) -> None:
        month = quotas.current_month()
        events = []
        for gen in rows:
            common = {"team": self.team, "user_id": gen.user_id, "api_key_id": gen.api_key_id,
                      "generation": gen, "month": month, "model": gen.model,
                      "provider": gen.engine if gen.engine != "local" else ""}  # fmt: skip
            usd = gen.est_usd or Decimal(0)
            events.append(UsageEvent(kind=UsageEvent.Kind.CHARGE, units=1, usd=usd, **common))
            if gen.status in (Status.FAILED, Status.CANCELED):
                events.append(UsageEvent(kind=UsageEvent.Kind.REFUND, units=-1, usd=-usd,
                                         **common))  # fmt: skip
        UsageEvent.objects.bulk_create(events)


def ids(rows: list[Generation]) -> list[str]:
    return [gen.generation_id for gen in rows]


# --- what each page shows, grown by `count` items: (its path, what its body must show) ---------


def history(w: World, count: int) -> tuple[str, list[str]]:
    return "/generations/", ids(w.generations(count, related=True))


def generate(w: World, count: int) -> tuple[str, list[str]]:
    # The Recent sidebar: the newest six.
    return "/generate", ids(w.generations(count, related=True))[-1:]


def generation(w: World, count: int) -> tuple[str, list[str]]:
    """One generation: its extensions and the providers it tried before the one serving it."""
    gen = w.once("gen", lambda: w.generations(1, statuses=(Status.COMPLETED,), related=True)[0])
    extensions = w.generations(count, extended_from=gen)
    tried = [{"provider": f"p{i}", "outcome": "skipped_open", "at": "", "detail": ""}
             for i in range(len(gen.route_attempts) + count)]  # fmt: skip
    gen.route_attempts = [*tried, {"provider": "fal", "outcome": "served", "at": "", "detail": ""}]
    gen.save(update_fields=["route_attempts"])
    return f"/generations/{gen.generation_id}", ids(extensions)


def batch_list(w: World, count: int) -> tuple[str, list[str]]:
    made = []
    for _ in range(count):
        batch = w.batch()
        w.generations(2, batch=batch, lane=Lane.BATCH.value)
        made.append(batch.batch_id)
    return "/batches/", made


def batch(w: World, count: int) -> tuple[str, list[str]]:
    found = w.once("batch", w.batch)
    made = w.generations(count, batch=found, lane=Lane.BATCH.value)
    w.once("pick", lambda: Batch.objects.filter(pk=found.pk).update(pick=made[0]))
    return f"/batches/{found.batch_id}", ids(made)


def queue(w: World, count: int) -> tuple[str, list[str]]:
    return "/queue", ids(w.generations(count, statuses=LIVE, related=True))


def sequence_list(w: World, count: int) -> tuple[str, list[str]]:
    made = []
    for _ in range(count):
        seq = w.sequence()
        for index in range(2):
            w.generations(1, sequence=seq, shot_index=index)
        made.append(seq.sequence_id)
    return "/sequences/", made


def _sequence_with_shots(w: World, count: int) -> Sequence:
    """A finished sequence of `count` more shots, its timeline's markers to match."""
    seq: Sequence = w.once("seq", lambda: w.sequence(
        status=Status.COMPLETED, video="videos/s.mp4", poster="posters/s.jpg",
    ))  # fmt: skip
    before = seq.shots.count()
    for index in range(before, before + count):
        w.generations(1, statuses=(Status.COMPLETED,), sequence=seq, shot_index=index)
    seq.markers = [float(5 * i) for i in range(before + count)]
    seq.num_frames = 150 * (before + count)
    seq.save(update_fields=["markers", "num_frames"])
    return seq


def sequence(w: World, count: int) -> tuple[str, list[str]]:
    seq = _sequence_with_shots(w, count)
    return f"/sequences/{seq.sequence_id}", [gen.prompt for gen in seq.shots.all()]


def gallery(w: World, count: int) -> tuple[str, list[str]]:
    return "/gallery", ids(w.generations(count, statuses=(Status.COMPLETED,), related=True))


def _shared(w: World, count: int) -> list[Generation]:
    return w.generations(count, statuses=(Status.COMPLETED,), related=True)


def team_gallery(w: World, count: int) -> tuple[str, list[str]]:
    return f"/g/{SLUG}", [gen.share_token or "" for gen in _shared(w, count)]


def home(w: World, count: int) -> tuple[str, list[str]]:
    # The newest eight shared videos of public galleries.
    return "/", [gen.share_token or "" for gen in _shared(w, count)][-1:]


def shared_page(w: World, count: int) -> tuple[str, list[str]]:
    gen = w.once("shared", lambda: _shared(w, 1)[0])
    _shared(w, count)  # the team's other shared videos
    return f"/s/{gen.share_token}", [gen.prompt]


def shared_embed(w: World, count: int) -> tuple[str, list[str]]:
    path, shown = shared_page(w, count)
    return f"{path}/embed", shown


def api_keys(w: World, count: int) -> tuple[str, list[str]]:
    return "/keys", [w.api_key(w.member()).display for _ in range(count)]


def usage(w: World, count: int) -> tuple[str, list[str]]:
    rows = w.generations(count, related=True)
    return "/usage", [gen.user.email for gen in rows if gen.user is not None]


def webhooks(w: World, count: int) -> tuple[str, list[str]]:
    rows = w.generations(count)
    urls = []
    for gen in rows:
        url = f"https://hooks.example.com/{gen.generation_id}"
        WebhookEndpoint.objects.create(team=w.team, url=url)
        WebhookDelivery.objects.create(
            team=w.team, generation=gen, message_id=f"msg_{gen.generation_id}",
            event="generation.completed", url=url, payload={"id": gen.generation_id},
            status=WebhookDelivery.Status.FAILED, attempts=2, last_status_code=500,
            last_error="Internal Server Error",
        )  # fmt: skip
        urls.append(url)
    return "/webhooks", urls


def teams(w: World, count: int) -> tuple[str, list[str]]:
    names = []
    for _ in range(count):
        team = accounts.team_create(name=f"Team {next(w.serial)}", owner=w.user)
        Membership.objects.create(team=team, user=w.member())
        names.append(team.name)
    return "/teams", names


def team(w: World, count: int) -> tuple[str, list[str]]:
    shown = []
    for _ in range(count):
        shown.append(w.member().email)
        n = next(w.serial)
        Invitation.objects.create(
            team=w.team, email=f"invitee{n}@example.com", role=ROLES[n % len(ROLES)],
            token_digest=f"{n:064d}", invited_by=w.user,
            expires_at=timezone.now() + timedelta(days=7),
        )  # fmt: skip
        shown.append(f"invitee{n}@example.com")
    return f"/teams/{w.team.code}", shown


def live(w: World, count: int) -> tuple[str, list[str]]:
    made: list[str] = w.once("live", list)
    made += ids(w.generations(count, statuses=(*LIVE, Status.COMPLETED), related=True))
    return f"/api/dashboard/live?ids={','.join(made)}", made


def api_generations(w: World, count: int) -> tuple[str, list[str]]:
    return "/api/v1/generations?page=1&limit=20", ids(w.generations(count, related=True))


def api_batches(w: World, count: int) -> tuple[str, list[str]]:
    _, made = batch_list(w, count)
    return "/api/v1/batches", made


def api_batch(w: World, count: int) -> tuple[str, list[str]]:
    path, made = batch(w, count)
    return f"/api{path.removesuffix('/').replace('/batches/', '/v1/batches/')}", made


def api_sequences(w: World, count: int) -> tuple[str, list[str]]:
    _, made = sequence_list(w, count)
    return "/api/v1/sequences", made


def api_sequence(w: World, count: int) -> tuple[str, list[str]]:
    seq = _sequence_with_shots(w, count)
    return f"/api/v1/sequences/{seq.sequence_id}", ids(list(seq.shots.all()))


def openai_videos(w: World, count: int) -> tuple[str, list[str]]:
    return "/v1/videos?limit=20", ids(w.generations(count, related=True))


def api_models(w: World, count: int) -> tuple[str, list[str]]:
    # The catalog, not the database: the team's generations of every model change nothing.
    w.generations(count)
    return "/api/v1/models", [model for model, _ in MODELS]


@dataclass(frozen=True)
class Case:
    name: str
    grow: Callable[[World, int], tuple[str, list[str]]]
    who: str = "member"  # "member" (a logged-in session), "anonymous", "key" (the API)


CASES = [
    Case("home", home, "anonymous"),
    Case("generate", generate),
    Case("history", history),
    Case("generation", generation),
    Case("batches", batch_list),
    Case("batch", batch),
    Case("queue", queue),
    Case("sequences", sequence_list),
    Case("sequence", sequence),
    Case("gallery", gallery),
    Case("team-gallery", team_gallery, "anonymous"),
    Case("shared", shared_page, "anonymous"),
    Case("shared-embed", shared_embed, "anonymous"),
    Case("api-keys", api_keys),
    Case("usage", usage),
    Case("webhooks", webhooks),
    Case("teams", teams),
    Case("team", team),
    Case("dashboard-live", live),
    Case("api-generations", api_generations, "key"),
    Case("api-batches", api_batches, "key"),
    Case("api-batch", api_batch, "key"),
    Case("api-sequences", api_sequences, "key"),
    Case("api-sequence", api_sequence, "key"),
    Case("openai-videos", openai_videos, "key"),
    Case("api-models", api_models, "key"),
]


def _getter(w: World, who: str) -> Callable[[str], Any]:
    if who == "key":
        return ApiClient(w.raw_key).get
    client = Client()
    if who == "anonymous":
        return client.get
    client.force_login(w.user)
    session = client.session
    session[CURRENT_TEAM_KEY] = str(w.team.code)
    session.save()
    # The dashboard's live poll is served by the ASGI application's lean handler.
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    asgi = AsgiClient({"Cookie": cookie})
    return lambda path: (asgi if path.startswith("/api/") else client).get(path)


def _counted(w: World, case: Case, get: Callable[[str], Any], count: int) -> list[str]:
    path, shown = case.grow(w, count)
    get(path)  # warm: the key's or the session's last use written, caches filled
    with count_queries() as statements:
        response = get(path)
    assert response.status_code == 200, (path, response.status_code)
    body = response.content.decode()
    missing = [item for item in shown if item not in body]
    assert not missing, f"{path} does not show {missing}"
    return statements


def _shape(sql: str) -> str:
    """A statement with its literals and parameter lists folded, to spot repeats."""
    sql = re.sub(r"'[^']*'|\b\d+\b", "?", sql)
    return re.sub(r"\((?:\s*(?:%s|\?)\s*,?)+\)", "(...)", sql)


def explain(name: str, few: list[str], many: list[str]) -> str:
    repeated = [f"  x{n} {sql[:400]}" for sql, n in Counter(map(_shape, many)).items() if n > 1]
    listed = [f"  {i:2}. {sql[:400]}" for i, sql in enumerate(many, 1)]
    return "\n".join([
        f"{name}: {len(few)} queries for {FEW} items, {len(many)} for {MANY}.",
        "Repeated statements:", *(repeated or ["  (none)"]),
        f"All {len(many)}:", *listed,
    ])  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_page_makes_as_many_queries_for_twelve_items_as_for_two(
    case: Case, transactional_db: None
) -> None:
    world = World()
    get = _getter(world, case.who)
    few = _counted(world, case, get, FEW)
    many = _counted(world, case, get, MANY - FEW)
    assert len(few) == len(many), explain(case.name, few, many)
