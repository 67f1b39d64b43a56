"""Reads that stay fast with a year of history (issue 20), and stay right: History, the
gallery and the API list page by cursor and walk every row exactly once in order; the usage
report and the API list's total read the same from day summaries as from the rows."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from generations.core import library, reports, rollups
from generations.models import Generation, Team, UsageDay, UsageEvent, UsageRolled, User
from tests.conftest import Account

pytestmark = pytest.mark.django_db


def make(team: Team, user: User, *, days_ago: float, status: str = "completed",
         model: str = "local", **extra: Any) -> Generation:  # fmt: skip
    created = timezone.now() - timedelta(days=days_ago)
    final = status in Generation.FINAL_STATUSES
    extra.setdefault("engine", "local" if final else "")
    return Generation.objects.create(
        team=team, user=user, mode="text-to-video", model=model, prompt=f"a {status} scene",
        duration=2, resolution="480p", aspect_ratio="16:9", width=854, height=480, fps=30,
        num_frames=60, seed=1, status=status, created_at=created,
        finished_at=created + timedelta(seconds=30) if final else None,
        **extra,
    )  # fmt: skip


LINK = re.compile(r'href="/generations/(gen_\w+)"')


def walk(client: Client, url: str, forward: str = "Older") -> tuple[list[str], list[str]]:
    """Every generation id History lists, following one pager link to the end; and the
    URLs visited."""
    seen: list[str] = []
    urls = []
    while url:
        urls.append(url)
        page = client.get(url).content.decode()
        seen += LINK.findall(page)
        found = re.search(rf'<a href="(\?[^"]*)" rel="\w+">{forward}</a>', page)
        url = "/generations/" + found.group(1).replace("&amp;", "&") if found else ""
    return seen, urls


def test_history_pages_by_cursor_through_every_generation_once(owner: Account) -> None:
    tie = timezone.now() - timedelta(hours=1)
    made = [make(owner.team, owner.user, days_ago=i / 10) for i in range(30)]
    made += [make(owner.team, owner.user, days_ago=0, status="failed") for _ in range(15)]
    Generation.objects.filter(status="failed").update(created_at=tie)  # 15 with one timestamp
    newest_first = list(
        Generation.objects.order_by("-created_at", "-pk").values_list("generation_id", flat=True)
    )
    client = Client()
    client.force_login(owner.user)
    seen, urls = walk(client, "/generations/")
    assert seen == newest_first and len(urls) == 3  # 20 + 20 + 5
    assert "Newer" not in client.get(urls[0]).content.decode()  # the top has no newer page
    # Back up from the last page: the same pages in reverse.
    back, _ = walk(client, urls[-1], forward="Newer")
    assert back[-20:] == newest_first[:20] and len(back) == 45
    # Filters ride along in the links.
    failed, urls = walk(client, "/generations/?status=failed")
    assert len(failed) == 15 and set(failed) == {g.generation_id for g in made[30:]}
    assert all("status=failed" in url for url in urls)
    # A cursor that is not ours is ignored: the first page.
    assert (
        LINK.findall(client.get("/generations/?after=garbage").content.decode())
        == (newest_first[:20])
    )


def test_the_gallery_pages_by_cursor_in_every_sort(owner: Account) -> None:
    made = [make(owner.team, owner.user, days_ago=i / 7) for i in range(30)]
    for gen in made[::4]:
        library.generation_share(generation=gen)
    client = Client()
    client.force_login(owner.user)
    tile = re.compile(r'<li class="tile">\s*<a href="/generations/(gen_\w+)"')
    for sort in ("newest", "oldest", "longest", "shared"):
        seen, url = [], f"/gallery?sort={sort}"
        while url:
            page = client.get(url).content.decode()
            seen += tile.findall(page)
            found = re.search(r'<a href="(\?[^"]*)" rel="next">Older</a>', page)
            url = "/gallery" + found.group(1).replace("&amp;", "&") if found else ""
            assert not found or f"sort={sort}" in found.group(1)
        assert sorted(seen) == sorted(g.generation_id for g in made), sort
        if sort == "shared":  # the shared ones first, newest shared first
            shared = {g.generation_id for g in made[::4]}
            assert set(seen[: len(shared)]) == shared


def test_the_api_list_pages_by_cursor_and_still_by_page(owner: Account) -> None:
    for i in range(23):
        make(owner.team, owner.user, days_ago=i / 3)
    client = owner.client()
    newest_first = list(
        Generation.objects.order_by("-created_at", "-pk").values_list("generation_id", flat=True)
    )
    seen, cursor, pages = [], "", 0
    while True:
        body = client.get("/api/v1/generations", limit=10, **({"cursor": cursor} if cursor else {}))
        body = body.json()
        pages += 1
        assert body["total"] == 23 and body["page"] == (1 if pages == 1 else None)
        seen += [g["generation_id"] for g in body["generations"]]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        cursor = body["next_cursor"]
    assert seen == newest_first and pages == 3
    by_page = client.get("/api/v1/generations", limit=10, page=2).json()
    assert [g["generation_id"] for g in by_page["generations"]] == newest_first[10:20]
    assert by_page["has_more"] is True and by_page["next_cursor"]
    refused = client.get("/api/v1/generations", cursor="not-a-cursor")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "cursor"


def _report(team: Team, month: str) -> dict[str, Any]:
    report = reports.month_report(team, month)
    return {name: getattr(report, name) for name in ("members", "models", "keys", "days",
                                                     "providers", "used", "spent_usd")}  # fmt: skip


def _months(team: Team) -> list[str]:
    return sorted(set(UsageEvent.objects.filter(team=team).values_list("month", flat=True)))


def test_usage_reads_the_same_from_day_summaries_as_from_the_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call_command("seed_demo", "--generations", "600", "--teams", "2", stdout=StringIO())
    team = Team.objects.filter(name="Demo studio 1").latest("pk")
    assert UsageRolled.objects.filter(team=team).exists() and UsageDay.objects.filter(team=team)
    # Some live rows too: today's, in flight and done, with a test-mode one.
    owner = User.objects.get(pk=team.memberships.get(role="owner").user_id)
    make(team, owner, days_ago=0, model="veo-31", cost_usd=Decimal("1.5"), engine="gemini")
    make(team, owner, days_ago=0, status="in_progress")
    make(team, owner, days_ago=0, test_mode=True)
    months = _months(team)
    rolled = {month: _report(team, month) for month in months}
    rolled_total = rollups.generation_count(team)

    # Nothing rolled up: every figure from the rows themselves.
    UsageDay.objects.filter(team=team).delete()
    UsageRolled.objects.filter(team=team).delete()
    monkeypatch.setattr(rollups, "SETTLE", timedelta(days=10_000))
    live = {month: _report(team, month) for month in months}
    assert rolled == live
    assert rolled_total == rollups.generation_count(team) == team.generations.count()
    assert not UsageDay.objects.filter(team=team).exists()


def test_deleting_a_rolled_up_generation_takes_it_out_of_its_day(owner: Account) -> None:
    old = [make(owner.team, owner.user, days_ago=40 + i) for i in range(3)]
    make(owner.team, owner.user, days_ago=0)
    assert rollups.generation_count(owner.team) == 4  # rolls the closed days up
    assert _summed(owner.team) == 3
    library.generation_delete(generation=old[0])
    assert rollups.generation_count(owner.team) == 3
    assert _summed(owner.team) == 2


def _summed(team: Team) -> int:
    return int(UsageDay.objects.filter(team=team).aggregate(n=Sum("submitted"))["n"] or 0)


def test_a_generation_still_running_holds_its_day_open(owner: Account) -> None:
    make(owner.team, owner.user, days_ago=20)
    running = make(owner.team, owner.user, days_ago=10, status="in_progress")
    make(owner.team, owner.user, days_ago=5)
    mark = rollups.roll(owner.team)
    assert mark == running.created_at.date()  # days before it rolled, its own day not
    assert rollups.generation_count(owner.team) == 3
    Generation.objects.filter(pk=running.pk).update(status="completed")
    assert rollups.roll(owner.team) == rollups.closed_before()
    assert rollups.generation_count(owner.team) == 3


def test_the_batches_and_sequences_lists_page_by_cursor_too(owner: Account) -> None:
    from generations.models import Batch, Sequence

    now = timezone.now()
    batches = [
        Batch.objects.create(team=owner.team, user=owner.user, created_at=now - timedelta(hours=i))
        for i in range(23)
    ]
    sequences = [
        Sequence.objects.create(team=owner.team, user=owner.user, model="local",
                                resolution="480p", aspect_ratio="16:9", width=854, height=480,
                                fps=30, transition="cut", created_at=now - timedelta(hours=i))
        for i in range(23)
    ]  # fmt: skip
    client = Client()
    client.force_login(owner.user)
    for base, made, link in (
        ("/batches/", batches, re.compile(r'href="/batches/(bat_\w+)"')),
        ("/sequences/", sequences, re.compile(r'href="/sequences/(seq_\w+)"')),
    ):
        seen, url = [], base
        while url:
            page = client.get(url).content.decode()
            seen += link.findall(page)
            found = re.search(r'<a href="(\?[^"]*)" rel="next">Older</a>', page)
            url = base + found.group(1).replace("&amp;", "&") if found else ""
        ids = [getattr(m, "batch_id", None) or getattr(m, "sequence_id", "") for m in made]
        assert seen == ids, base  # newest first, each once, over two pages
