"""`manage.py seed_demo` (CONTRACT 10): N finished generations over T teams, skewed, with the
ledger the real paths would have written and media the pages can serve. Runs on SQLite in
`make test` (batched INSERTs) and on PostgreSQL in CI's second pass (COPY)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db.models import Count, Sum
from django.test import Client

from generations.models import Generation, MonthlyUsage, Team, UsageEvent

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]


def test_seed_demo_fills_teams_with_finished_generations_and_their_ledger() -> None:
    out = StringIO()
    call_command("seed_demo", "--generations", "3000", "--teams", "5", stdout=out)
    assert "seeded 3000 generations" in out.getvalue()
    demo = Generation.objects.filter(source="demo")
    assert demo.count() == 3000
    per_team = sorted(demo.values("team").annotate(n=Count("id")).values_list("n", flat=True))
    assert per_team == [450, 450, 450, 450, 1200]  # the first team holds 40 %
    assert set(demo.values_list("status", flat=True)) == {"completed", "failed"}
    assert 0.02 < demo.filter(status="failed").count() / 3000 < 0.06

    # The ledger as the real paths write it: a charge and a settle (or a refund) each, the
    # US dollars of a generation summing to its cost, the counters matching the ledger.
    events = UsageEvent.objects.filter(generation__source="demo")
    assert events.count() == 6000
    assert events.filter(kind="charge").count() == 3000
    completed = demo.filter(status="completed")
    assert events.filter(kind="settle").count() == completed.count()
    cost = demo.aggregate(s=Sum("cost_usd"))["s"]  # SQLite sums decimals as floats: to the cent
    assert round(events.aggregate(s=Sum("usd"))["s"], 2) == round(cost, 2) > 0
    assert sum(events.values_list("units", flat=True)) == completed.count()
    teams = Team.objects.filter(generations__source="demo").distinct()
    used = MonthlyUsage.objects.filter(team__in=teams).aggregate(u=Sum("used"), s=Sum("spent_usd"))
    assert used["u"] == completed.count()
    assert round(used["s"], 2) == round(cost, 2)

    # The pages show them: the gallery lists the team's videos, a video's page renders, and
    # the shared files are real MP4s and JPEG posters.
    big = max(teams, key=lambda t: t.generations.count())
    owner = big.memberships.get(role="owner").user
    browser = Client()
    browser.force_login(owner)
    browser.post("/teams/switch", {"team": str(big.code)})
    gallery = browser.get("/gallery").content.decode()
    gen = completed.filter(team=big).order_by("-created_at").first()
    assert gen is not None and f"/api/v1/thumbnail/{gen.generation_id}" in gallery
    assert browser.get(f"/generations/{gen.generation_id}").status_code == 200
    with default_storage.open(gen.video.name, "rb") as fh:
        assert fh.read(12)[4:8] == b"ftyp"
    with default_storage.open(gen.poster.name, "rb") as fh:
        assert fh.read(3) == b"\xff\xd8\xff"

    # More can be added on top: primary keys and sequences move on.
    call_command("seed_demo", "--generations", "10", "--teams", "1", stdout=StringIO())
    assert Generation.objects.filter(source="demo").count() == 3010
