"""Money: each route's price in US dollars, the estimate (`POST /api/v1/estimate`) that
creates nothing, the cost recorded when a hosted job completes (fal's billed units, else the
price table), the ledger's US dollars summing to that cost, the plan's monthly budget (402)
and the usage report's and CSV's money columns.

fal is the fake queue server of tests/fake_fal.py on loopback; an operator map routes
`wan-25` to it with a price, so a 1 s 480p job costs what the test says."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, TestCase

from generations.core import quotas
from generations.models import (
    Generation,
    IdempotencyRecord,
    MonthlyUsage,
    UsageEvent,
)
from generations.rendering.hosted import providers, routes
from generations.routing import prices
from generations.spec import GenerationSpec
from generations.tasks import dispatch as polling
from tests.conftest import Account
from tests.fake_fal import FakeFal

FAL_KEY = "fal-test-money"
MAP = """
[wan-25.fal]
text-to-video = "fal-ai/wan-25-preview/text-to-video"
image-to-video = "fal-ai/wan-25-preview/image-to-video"
typical_s = 7
usd_per_s = {{ 480p = 0.30, 720p = 0.50 }}
usd_per_s_audio = 0.45
{unit}
[wan-25.fal.input]
prompt = "prompt"
duration = "duration|str"
"""
FINAL = Generation.FINAL_STATUSES


@pytest.fixture
def fal(settings: Any, tmp_path: Path, sync_tasks: None) -> Iterator[FakeFal]:
    with FakeFal(key=FAL_KEY) as fake:
        path = tmp_path / "providers.toml"
        path.write_text(MAP.format(unit="usd_per_unit = 0.125"))
        settings.VIDEOGEN_PROVIDER_MAP = str(path)
        settings.FAL_KEY = FAL_KEY
        settings.FAL_QUEUE_URL = fake.url
        settings.VIDEOGEN_POLL_FIRST_S = 0.001
        settings.VIDEOGEN_POLL_MAX_S = 0.004
        fake.queue_polls = fake.run_polls = 0
        yield fake


def drive(timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    while Generation.objects.exclude(status__in=FINAL).exists():
        assert time.monotonic() < end, "generations still running"
        if not polling.dispatch_due():
            time.sleep(0.002)


def submit(account: Account, **body: Any) -> Any:
    data = {"model": "wan-25", "prompt": "a paper boat", "duration": 1, "resolution": "480p",
            **body}  # fmt: skip
    with TestCase.captureOnCommitCallbacks(execute=True):
        return account.client().post("/api/v1/generate", data)


def ledger_usd(gen: Generation) -> dict[str, Decimal]:
    return dict(UsageEvent.objects.filter(generation=gen).values_list("kind", "usd"))


def spent(account: Account) -> Decimal:
    return quotas.month_spent(account.team)


def set_budget(account: Account, usd: str | None) -> None:
    quotas.team_set_plan_limits(
        team=account.team, monthly_budget_usd=None if usd is None else Decimal(usd)
    )
    account.team.refresh_from_db()


# --- prices ---------------------------------------------------------------------------------


def test_every_route_of_the_shipped_map_has_a_price() -> None:
    found = routes.parse(routes.read(routes.DEFAULT_MAP), "providers.toml", providers.PROVIDERS)
    unpriced = [f"{m}.{r.provider}" for m, rs in found.items() for r in rs if not r.price.known]
    assert unpriced == []
    veo = next(r for r in found["veo-31"] if r.provider == "fal")
    assert veo.price.per_second("1080p") == Decimal("0.20")
    assert veo.price.per_second("1080p", audio=True) == Decimal("0.40")
    wan = next(r for r in found["wan-25"] if r.provider == "fal")
    assert [wan.price.per_second(r) for r in ("480p", "720p", "1080p")] == [
        Decimal("0.05"), Decimal("0.10"), Decimal("0.15")
    ]  # fmt: skip


def spec(**fields: Any) -> GenerationSpec:
    base: dict[str, Any] = {
        "mode": "text-to-video", "model": "wan-25", "prompt": "p", "negative_prompt": "",
        "image_url": "", "duration": 5, "resolution": "720p", "aspect_ratio": "16:9",
        "width": 1280, "height": 720, "fps": 30, "num_frames": 150, "seed": 1,
        "camera_fixed": False, "add_audio": False, "audio_prompt": "", "style": "realistic",
        "cfg_scale": None, "guidance_scale": None, "enable_safety_checker": True,
    }  # fmt: skip
    names = set(GenerationSpec.__dataclass_fields__)
    return GenerationSpec(**{k: v for k, v in (base | fields).items() if k in names})


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('usd_per_s = "cheap"', "[wan-25.fal].usd_per_s must be a number"),
        ("usd_per_s = -1", "0 or more"),
        ("usd_per_s = { 8K = 1 }", "[wan-25.fal].usd_per_s: unknown resolution '8K'"),
        ("usd_per_s_audio = 0.2", "usd_per_s_audio needs usd_per_s"),
        ("usd_per_s = 0.1\nusd_per_unit = true", "[wan-25.fal].usd_per_unit must be a number"),
    ],
)
def test_a_malformed_price_is_refused_naming_the_place(table: str, problem: str) -> None:
    data = {"wan-25": {"fal": {"text-to-video": "x/y", **_toml(table)}}}
    with pytest.raises(routes.MapError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        routes.parse(data, "map.toml", providers.PROVIDERS)


def _toml(text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text)


def test_the_usd_of_a_spec_follows_duration_resolution_and_audio(settings: Any) -> None:
    settings.FAL_KEY = "k"
    veo = next(r for r in providers.all_routes()["veo-31"] if r.provider == "fal")
    assert prices.spec_usd(veo, spec(model="veo-31", duration=8)) == Decimal("1.6000")
    assert prices.spec_usd(veo, spec(model="veo-31", duration=8, add_audio=True)) == Decimal(
        "3.2000"
    )
    framepack = providers.all_routes()["framepack"][0]
    # $0.0333 a second at 480p, rounded to the ledger's 4 places.
    assert prices.spec_usd(framepack, spec(model="framepack", resolution="480p", duration=7)) == (
        Decimal("0.2331")
    )
    assert prices.spec_usd(None, spec()) == Decimal(0)  # our own engines cost nothing


def test_an_operator_price_map_overrides_prices_without_rewriting_routes(
    settings: Any, tmp_path: Path
) -> None:
    path = tmp_path / "prices.toml"
    path.write_text("[kling_25.fal]\nusd_per_s = 0.5\n[veo-31.fal]\nusd_per_s = 0.3\n")
    settings.VIDEOGEN_PRICE_MAP = str(path)
    kling = next(r for r in providers.all_routes()["kling_25"] if r.provider == "fal")
    assert kling.price.per_second("720p") == Decimal("0.5")
    assert kling.upstream["text-to-video"].startswith("fal-ai/kling-video")  # the route stays
    veo = next(r for r in providers.all_routes()["veo-31"] if r.provider == "fal")
    assert veo.with_end_image is not None and veo.with_end_image.price.per_second("720p") == (
        Decimal("0.3")
    )
    path.write_text("[kling_25.gemini]\nusd_per_s = 0.5\n")
    settings.VIDEOGEN_PRICE_MAP = str(path)  # (re-set: the cached map is forgotten)
    with pytest.raises(routes.MapError, match=r"\[kling_25.gemini\]: gemini does not serve"):
        providers.all_routes()
    path.write_text("[kling_25.fal]\ntypical_s = 5\n")
    settings.VIDEOGEN_PRICE_MAP = str(tmp_path / "prices.toml")
    providers.all_routes.cache_clear()
    with pytest.raises(routes.MapError, match="unknown key 'typical_s'"):
        providers.all_routes()


# --- the estimate -----------------------------------------------------------------------------


def test_the_estimate_answers_credits_usd_and_eta_and_creates_nothing(
    fal: FakeFal, owner: Account
) -> None:
    client = owner.client()
    before = (Generation.objects.count(), UsageEvent.objects.count(),
              IdempotencyRecord.objects.count())  # fmt: skip
    response = client.http.post(
        "/api/v1/estimate",
        data='{"model": "wan-25", "prompt": "a boat", "duration": 2, "resolution": "720p"}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {owner.raw_key}", "Idempotency-Key": "est-1"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["usd"] == "1.0000" and body["provider"] == "fal" and body["model"] == "wan-25"
    assert body["credits"] == "0" and body["priced"] is True
    assert body["eta_s"] == 7  # nothing ahead, never run here: the route's typical_s
    assert body["budget"] is None
    after = (Generation.objects.count(), UsageEvent.objects.count(),
             IdempotencyRecord.objects.count())  # fmt: skip
    assert after == before
    assert MonthlyUsage.objects.filter(team=owner.team, used__gt=0).count() == 0
    assert not fal.api_requests()  # nothing sent upstream


def test_the_estimate_counts_the_queue_ahead(fal: FakeFal, owner: Account, settings: Any) -> None:
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 1}
    for _ in range(2):
        Generation.objects.create(team=owner.team, user=owner.user, mode="text-to-video",
                                  model="wan-25", prompt="x", duration=1, resolution="480p",
                                  aspect_ratio="16:9", width=854, height=480, fps=30,
                                  num_frames=30, seed=1, status="pending")  # fmt: skip
    body = owner.client().post("/api/v1/estimate", {"model": "wan-25", "prompt": "a"}).json()
    assert body["queue_ahead"] == 2 and body["eta_s"] == 7 * 3  # one worker: 2 ahead, then itself


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "nope", "prompt": "a"}, "model"),
        ({"model": "wan-25", "prompt": ""}, "prompt"),
        ({"model": "wan-25", "prompt": "a", "duration": 99}, "duration"),
        ({"model": "wan-25", "prompt": "a", "resolution": "8K"}, "resolution"),
    ],
)
def test_a_bad_estimate_body_is_a_400_naming_the_field(
    fal: FakeFal, owner: Account, body: dict[str, Any], field: str
) -> None:
    response = owner.client().post("/api/v1/estimate", body)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert Generation.objects.count() == 0


def test_the_estimate_needs_a_key(fal: FakeFal, transactional_db: None) -> None:
    from tests.conftest import ApiClient

    answer = ApiClient(None).post("/api/v1/estimate", {"model": "wan-25", "prompt": "a"})
    assert answer.status_code == 401


def test_a_test_key_estimates_nothing_to_pay(fal: FakeFal, tester: Account) -> None:
    body = tester.client().post("/api/v1/estimate", {"model": "wan-25", "prompt": "a"}).json()
    assert body["usd"] == "0.0000" and body["provider"] == "local" and body["test_mode"] is True


# --- cost recorded, the ledger sums to it ------------------------------------------------------


def test_a_completed_job_records_the_billed_cost_and_the_ledger_sums_to_it(
    fal: FakeFal, owner: Account
) -> None:
    fal.billable_units = "2"  # at usd_per_unit 0.125: $0.25 billed, against $0.30 estimated
    response = submit(owner)
    assert response.status_code == 200, response.content
    gen = Generation.objects.get(generation_id=response.json()["generation_id"])
    assert gen.est_usd == Decimal("0.3000")
    charge = UsageEvent.objects.get(generation=gen, kind="charge")
    assert (charge.usd, charge.provider) == (Decimal("0.3000"), "fal")
    assert spent(owner) == Decimal("0.3000")  # reserved while it runs
    drive()
    gen.refresh_from_db()
    assert gen.status == "completed"
    assert (gen.cost_usd, gen.cost_source) == (Decimal("0.2500"), "billed")
    rows = ledger_usd(gen)
    assert rows == {"charge": Decimal("0.3000"), "settle": Decimal("-0.0500")}
    assert sum(rows.values()) == gen.cost_usd == spent(owner)
    assert UsageEvent.objects.get(generation=gen, kind="settle").provider == "fal"


def test_without_billed_units_the_cost_is_the_price_tables(fal: FakeFal, owner: Account) -> None:
    gen_id = submit(owner, add_audio=True, duration=2).json()["generation_id"]
    drive()
    gen = Generation.objects.get(generation_id=gen_id)
    # Estimated at the route's price with sound ($0.90); the fake's file came without
    # sound, so the audio step ran and its price ($0.01 a second) was added and settled.
    assert (gen.est_usd, gen.cost_usd, gen.cost_source, gen.audio_source) == (
        Decimal("0.9000"), Decimal("0.9200"), "price_table", "mirelo-sfx-v1.5"
    )  # fmt: skip
    assert sum(ledger_usd(gen).values()) == Decimal("0.9200") == spent(owner)
    # The status says so too: the estimate, the cost and where the figure came from.
    status = owner.client().get(f"/api/v1/status/{gen_id}").json()
    assert status["cost"] == {"estimated_usd": "0.9000", "usd": "0.9200", "source": "price_table"}
    assert status["provider"] == "fal"


def test_a_refund_gives_the_estimate_back(fal: FakeFal, owner: Account) -> None:
    fal.policy_on = "result"
    gen_id = submit(owner, prompt="something forbidden").json()["generation_id"]
    drive()
    gen = Generation.objects.get(generation_id=gen_id)
    assert gen.status == "failed"
    assert ledger_usd(gen) == {"charge": Decimal("0.3000"), "refund": Decimal("-0.3000")}
    assert spent(owner) == Decimal(0) and gen.cost_usd == Decimal(0)


def test_own_engines_cost_nothing(owner: Account, sync_tasks: None) -> None:
    gen_id = submit(owner, model="local").json()["generation_id"]
    gen = Generation.objects.get(generation_id=gen_id)
    assert gen.status == "completed" and gen.est_usd == Decimal(0) == gen.cost_usd
    assert sum(ledger_usd(gen).values()) == Decimal(0)


# --- budgets -------------------------------------------------------------------------------------


def test_a_submit_over_the_budget_is_a_402_with_the_numbers(fal: FakeFal, owner: Account) -> None:
    fal.never_finish = True
    set_budget(owner, "1.00")
    assert [submit(owner).status_code for _ in range(3)] == [200, 200, 200]
    refused = submit(owner)
    assert refused.status_code == 402
    answer = refused.json()
    error = answer["error"]
    assert error["code"] == "budget_exceeded"
    assert "$0.30" in error["message"] and "$0.90" in error["message"]
    assert "$1.00" in error["message"]
    assert (answer["budget_usd"], answer["spent_usd"], answer["estimate_usd"]) == (
        "1.00", "0.9000", "0.3000"
    )  # fmt: skip
    assert Generation.objects.filter(team=owner.team).count() == 3  # nothing made
    assert quotas.month_usage(owner.team) == 3  # the monthly count is rolled back too
    # Canceling one gives its estimate back: the next fits again.
    first = Generation.objects.filter(team=owner.team).first()
    assert first is not None
    owner.client().post(f"/api/v1/generations/{first.generation_id}/cancel", {})
    end = time.monotonic() + 30
    while Generation.objects.get(pk=first.pk).status != "canceled":  # its next poll stops it
        assert time.monotonic() < end
        if not polling.dispatch_due():
            time.sleep(0.002)
    assert spent(owner) == Decimal("0.6000")
    assert submit(owner).status_code == 200


def test_a_batch_over_the_budget_is_refused_whole(fal: FakeFal, owner: Account) -> None:
    set_budget(owner, "1.00")
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = owner.client().post(
            "/api/v1/batches",
            {"model": "wan-25", "prompt": "a", "duration": 1, "resolution": "480p", "count": 4},
        )
    assert response.status_code == 402 and response.json()["error"]["code"] == "budget_exceeded"
    assert "These 4 generations" in response.json()["error"]["message"]
    assert Generation.objects.count() == 0 and spent(owner) == Decimal(0)


def test_test_keys_spend_nothing_against_the_budget(fal: FakeFal, tester: Account) -> None:
    set_budget(tester, "0")
    assert submit(tester).status_code == 200
    assert spent(tester) == Decimal(0)


def test_a_settle_moves_the_spend_by_cost_less_estimate(fal: FakeFal, owner: Account) -> None:
    set_budget(owner, "10")
    fal.billable_units = "4"  # $0.50 against $0.30 estimated
    submit(owner)
    drive()
    assert spent(owner) == Decimal("0.5000")
    user = owner.client().get("/api/v1/user").json()
    assert user["spend"] == {"month": quotas.current_month(), "spent_usd": "0.5000",
                             "monthly_budget_usd": "10.00", "remaining_usd": "9.5000"}  # fmt: skip
    assert user["plan"]["monthly_budget_usd"] == "10.00"


def test_a_custom_plan_keeps_the_budget(owner: Account) -> None:
    set_budget(owner, "5")
    plan = quotas.team_set_plan_limits(team=owner.team, monthly_limit=7)
    assert plan.monthly_budget_usd == Decimal("5")


# --- usage in US dollars -----------------------------------------------------------------------


def test_usage_page_and_csv_show_money_per_member_key_model_and_provider(
    fal: FakeFal, owner: Account
) -> None:
    set_budget(owner, "2")
    fal.billable_units = "2"
    submit(owner)
    submit(owner, duration=2)  # $0.60 estimated, $0.25 billed
    drive()
    browser = Client()
    browser.force_login(owner.user)
    page = browser.get("/usage")
    assert page.status_code == 200
    text = page.content.decode()
    assert "$0.50 of $2.00 budget" in text
    assert 'id="budget-used"' in text and "25% of the budget" in text
    assert "<td>fal</td><td>2</td><td>$0.50</td>" in text
    rows = list(csv.reader(io.StringIO(browser.get("/usage?format=csv").content.decode())))
    assert rows[0][-1] == "usd" and rows[1][1] == owner.user.email and rows[1][-1] == "0.5000"
    assert ["key", "key_name", "charged", "usd"] in rows
    assert ["wan-25", "2", "0.5000"] in rows
    assert ["fal", "2", "0.5000"] in rows
    assert ["0.5000", "2.00"] in rows


def test_the_dashboard_estimate_follows_the_form(fal: FakeFal, owner: Account) -> None:
    browser = Client()
    browser.force_login(owner.user)
    answer = browser.get("/api/dashboard/estimate",
                         {"model": "wan-25", "duration": "2", "resolution": "720p"})  # fmt: skip
    assert answer.status_code == 200
    assert answer.json()["usd"] == "1.0000" and "$1.00 at fal" in answer.json()["text"]
    audio = browser.get("/api/dashboard/estimate", {"model": "wan-25", "duration": "2",
                                                    "add_audio": "on"})  # fmt: skip
    assert audio.json()["usd"] == "0.9000"
    bad = browser.get("/api/dashboard/estimate", {"model": "wan-25", "duration": "99"})
    assert bad.status_code == 400 and bad.json()["field"] == "duration"
    assert Client().get("/api/dashboard/estimate", {"model": "wan-25"}).status_code == 401
    page = browser.get("/generate?model=wan-25").content.decode()
    assert 'id="estimate"' in page and "Estimate:" in page  # rendered without JavaScript
