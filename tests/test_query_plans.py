"""The hot reads go through an index on PostgreSQL (issue 20), so that a refactor cannot
quietly bring back a scan of the whole history: the gallery, History's filters and search,
a month's usage, the Generate page's ETAs, the reaper and retention.

Each page or job runs for real; every statement it sent that reads the big tables is then
EXPLAINed with sequential scans priced out (`enable_seqscan = off`), so the planner takes an
index wherever one can serve the query, and shows a Seq Scan where none can, whatever the
table's size. The index each path is built around must be in its plans. Runs in CI's
PostgreSQL pass (`.ci/run`); on SQLite it is skipped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from generations.dashboard.access import CURRENT_TEAM_KEY
from generations.models import Generation, Team, User
from generations.ops import retention
from generations.tasks import reaper

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]

BIG_TABLES = ("generations_generation", "generations_usageevent", "generations_usageday")


@pytest.fixture
def pages() -> Client:
    if connection.vendor != "postgresql":
        pytest.skip("query plans are PostgreSQL's (CI's second pass runs this file)")
    call_command("seed_demo", "--generations", "3000", "--teams", "3", stdout=StringIO())
    team = Team.objects.filter(name="Demo studio 1").latest("pk")
    owner = User.objects.get(pk=team.memberships.get(role="owner").user_id)
    client = Client()
    client.force_login(owner)
    session = client.session
    session[CURRENT_TEAM_KEY] = str(team.code)
    session.save()
    return client


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def plans(run: Callable[[], object]) -> list[tuple[str, list[dict[str, Any]]]]:
    """What `run` asked of the big tables: each SELECT with its plan's nodes."""
    with CaptureQueriesContext(connection) as captured:
        run()
    found = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            if not any(f'"{table}"' in sql for table in BIG_TABLES):
                continue
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            found.append((sql, list(_nodes(cursor.fetchone()[0][0]["Plan"]))))
        cursor.execute("SET LOCAL enable_seqscan = on")
    assert found, "nothing read the big tables"
    return found


def assert_indexed(run: Callable[[], object], *indexes: str) -> None:
    used = set()
    for sql, nodes in plans(run):
        scanned = [
            n["Relation Name"]
            for n in nodes
            if n["Node Type"] == "Seq Scan" and n.get("Relation Name") in BIG_TABLES
        ]
        assert not scanned, f"a sequential scan of {scanned} in:\n{sql}"
        used |= {n["Index Name"] for n in nodes if n.get("Index Name")}
    assert set(indexes) <= used, f"expected {indexes}, the plans used {sorted(used)}"


def ok(client: Client, url: str) -> Callable[[], object]:
    def run() -> object:
        response = client.get(url)
        assert response.status_code == 200
        return response

    return run


def test_the_gallery_reads_its_own_index(pages: Client) -> None:
    assert_indexed(ok(pages, "/gallery"), "gen_gallery")
    assert_indexed(ok(pages, "/gallery?sort=oldest"), "gen_gallery")


def test_history_and_its_filters_read_an_index(pages: Client) -> None:
    assert_indexed(ok(pages, "/generations/"), "gen_team_recent")
    assert_indexed(ok(pages, "/generations/?status=canceled"), "gen_team_status")
    assert_indexed(ok(pages, "/generations/?model=veo-31"), "gen_team_model")


def test_history_search_can_read_the_trigram_index(pages: Client) -> None:
    """Which index serves a search depends on the team's size (a small team's rows are
    walked newest first; a big one's rare word is found through the trigram index: see
    make bench's scale table). What must hold at any size: the LIKE that Django's
    `icontains` writes is the expression the trigram index was built on."""
    assert_indexed(ok(pages, "/generations/?q=zeppelin"))
    search = Generation.objects.filter(prompt__icontains="zeppelin").values("pk")
    assert_indexed(lambda: list(search), "gen_prompt_trgm")


def test_a_months_usage_reads_summaries_and_the_live_days_through_indexes(
    pages: Client,
) -> None:
    assert_indexed(ok(pages, "/usage"), "usageday_team_month", "usage_team_month_at")
    assert_indexed(ok(pages, "/usage?format=csv"), "usageday_team_month")


def test_the_generate_page_reads_etas_through_an_index(pages: Client) -> None:
    """Its ETAs: a model's latest completed generations, at the form's resolution (720p,
    which none of the demo rows has: an index finds none without walking them)."""
    assert_indexed(ok(pages, "/generate"), "gen_model_res_finished")


def test_the_reaper_and_retention_read_only_their_candidates(pages: Client) -> None:
    assert_indexed(reaper.reap_stale)
    assert_indexed(lambda: retention.purge_media(older_than_days=30, dry_run=True), "gen_unpurged")
