"""How many queries the hot paths make, through the production ASGI path (the API's DB-thread
pool included): a status poll, a submit, a page of the list, and the gallery. Each count is
exact, and each statement is named, so a new query (or a lost select_related) fails here."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client
from django.utils import timezone

from generations.models import Generation
from tests.asgi_client import count_queries
from tests.conftest import Account

BODY = {"model": "local", "prompt": "a lighthouse at dusk", "duration": 1, "resolution": "480p"}


def tables(statements: list[str]) -> list[str]:
    """The table each statement is about (`generations_generation`, `django_q_ormq`...): the
    first one it names outside parentheses (not a subquery's in its select list), else the
    first one it names at all."""
    found = []
    pattern = re.compile(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)
    for sql in statements:
        outer = sql
        while (inner := re.sub(r"\([^()]*\)", "", outer)) != outer:
            outer = inner
        match = pattern.search(outer) or pattern.search(sql)
        found.append(match.group(1) if match else sql.split()[0].upper())
    return found


def kinds(statements: list[str]) -> list[str]:
    return [sql.lstrip().split()[0].upper() for sql in statements]


def submit(account: Account) -> str:
    response = account.client().post("/api/v1/generate", BODY)
    assert response.status_code == 200, response.content
    return str(response.json()["generation_id"])


def test_a_status_poll_makes_two_queries(owner: Account) -> None:
    """As videogenapi.status documents: the key (with its team, plan and user) and the
    generation (the columns its answer needs, the provider's queue position included)."""
    gen_id = submit(owner)
    client = owner.client()
    client.get(f"/api/v1/status/{gen_id}")  # warm: key last used just now, shapes compiled
    with count_queries() as statements:
        response = client.get(f"/api/v1/status/{gen_id}")
    assert response.status_code == 200
    assert tables(statements) == ["generations_apikey", "generations_generation"]
    assert kinds(statements) == ["SELECT", "SELECT"]


def test_a_status_poll_of_a_hosted_job_reads_its_queue_position_in_the_same_query(
    owner: Account,
) -> None:
    gen_id = submit(owner)
    Generation.objects.filter(generation_id=gen_id).update(
        status=Generation.Status.IN_PROGRESS, engine="fal", engine_handle={"queue_position": 3}
    )
    client = owner.client()
    client.get(f"/api/v1/status/{gen_id}")
    with count_queries() as statements:
        body = client.get(f"/api/v1/status/{gen_id}").json()
    assert body["queue_position"] == 3
    assert tables(statements) == ["generations_apikey", "generations_generation"]


def test_a_submit_makes_the_queries_of_one_transaction(owner: Account) -> None:
    submit(owner)  # warm: the month's usage row exists, the key was used just now
    Generation.objects.update(status=Generation.Status.COMPLETED)  # a worker is free again
    with count_queries() as statements:
        submit(owner)
    assert tables(statements) == [
        "generations_apikey",  # the key, its team, plan and user, and the user's role there
        "BEGIN",  # one transaction from here to the commit
        "generations_generation",  # the row
        "generations_usageevent",  # its charge in the ledger
        # Fair share, one read: tasks handed over that no worker took yet, and is anyone
        # else waiting? (room, and no: hand it over now)
        "generations_generation",
        "generations_generation",  # pending -> in_queue
        "django_q_ormq",  # its task (the ORM broker: in the same transaction)
        # used + 1 where used < limit, RETURNING used (the month's row exists: no
        # get_or_create before it, only after an UPDATE that found no row)
        "generations_monthlyusage",
    ]
    assert kinds(statements) == [
        "SELECT", "BEGIN", "INSERT", "INSERT", "SELECT", "UPDATE", "INSERT", "UPDATE",
    ]  # fmt: skip


def test_a_page_of_the_list_makes_five_queries_however_long(owner: Account) -> None:
    for _ in range(3):
        submit(owner)
    client = owner.client()
    client.get("/api/v1/generations")
    with count_queries() as few:
        assert len(client.get("/api/v1/generations?limit=20").json()["generations"]) == 3
    for _ in range(22):
        submit(owner)
    with count_queries() as many:
        assert len(client.get("/api/v1/generations?limit=20").json()["generations"]) == 20
    # The key, the page, then the total: how far the team's usage is rolled up, the
    # summaries' sum, the live rows' count (core/rollups.py). No query per generation.
    assert tables(few) == tables(many) == [
        "generations_apikey", "generations_generation", "generations_usagerolled",
        "generations_usageday", "generations_generation",
    ]  # fmt: skip


def test_the_gallery_makes_the_same_queries_for_two_videos_or_twenty(owner: Account) -> None:
    client = Client()
    client.force_login(owner.user)

    def finish(count: int) -> None:
        for _ in range(count):
            gen = Generation.objects.get(generation_id=submit(owner))
            Generation.objects.filter(pk=gen.pk).update(
                status=Generation.Status.COMPLETED, finished_at=timezone.now(),
                video="videos/x.mp4", poster="posters/x.jpg", preview="previews/x.webp",
            )  # fmt: skip

    def gallery() -> list[str]:
        client.get("/gallery")
        with count_queries() as statements:
            response = client.get("/gallery")
        assert response.status_code == 200
        return statements

    finish(2)
    two = gallery()
    finish(18)
    twenty = gallery()
    assert tables(two) == tables(twenty) == [
        "django_session", "generations_user",  # who is logged in
        "generations_membership",  # their current team (the personal one, joined)
        "generations_generation",  # the page of videos (one more row: is there a next?)
        "generations_membership",  # the header's team switcher: all their teams
    ]  # fmt: skip
    assert "videos/x.mp4" not in _page(client)  # files are served by our views, not linked raw


def _page(client: Any) -> str:
    return str(client.get("/gallery").content.decode())
