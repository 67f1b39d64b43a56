"""End to end: the plan's monthly budget is reserved exactly under concurrency, like the
monthly limit (tests/test_e2e.py's race), against the real ASGI server and a real django-q2
cluster, on SQLite in `make test` and PostgreSQL in CI's second run. fal is the fake of
tests/fake_fal.py; an operator map prices the job at $0.30, and fal bills $0.25 of it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.fake_fal import FakeFal
from tests.servers import manage, provider_site

pytestmark = pytest.mark.e2e
FAL_KEY = "fal-e2e-money"
EMAIL = "money@example.com"
TIMEOUT_S = 120
MAP = """
[wan-25.fal]
text-to-video = "fal-ai/wan-25-preview/text-to-video"
typical_s = 2
usd_per_s = 0.30
usd_per_unit = 0.125
[wan-25.fal.input]
prompt = "prompt"
duration = "duration|str"
"""
BUDGET = (
    "from decimal import Decimal; from generations.core import accounts, quotas; "
    "from generations.models import User; "
    f"u = User.objects.get(email='{EMAIL}'); "
    "quotas.team_set_plan_limits(team=accounts.team_personal_get(user=u), "
    "monthly_budget_usd=Decimal('1.00'))"
)
# The recorded costs and the ledger of this test's team, read in the server's own database
# (in CI's PostgreSQL pass the database holds the other end-to-end tests' teams too).
TOTALS = (
    "import json; from django.db.models import Sum; "
    "from generations.core import accounts; "
    "from generations.models import Generation, MonthlyUsage, UsageEvent, User; "
    f"t = accounts.team_personal_get(user=User.objects.get(email='{EMAIL}')); "
    "g = Generation.objects.filter(team=t); "
    "print(json.dumps({"
    "'cost': str(g.aggregate(s=Sum('cost_usd'))['s']), "
    "'ledger': str(UsageEvent.objects.filter(team=t).aggregate(s=Sum('usd'))['s']), "
    "'spent': str(MonthlyUsage.objects.filter(team=t).aggregate(s=Sum('spent_usd'))['s']), "
    "'sources': sorted(set(g.values_list('cost_source', flat=True)))}))"
)


@pytest.fixture(scope="module")
def fal() -> Iterator[FakeFal]:
    with FakeFal(key=FAL_KEY) as fake:
        fake.billable_units = "2"  # $0.25 at usd_per_unit
        yield fake


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, fal: FakeFal) -> Iterator[dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("e2e-money")
    price_map = data_dir / "providers.toml"
    price_map.write_text(MAP)
    provider_env = {"FAL_KEY": FAL_KEY, "FAL_QUEUE_URL": fal.url,
                    "VIDEOGEN_PROVIDER_MAP": str(price_map), "WEB_CONCURRENCY": "2"}  # fmt: skip
    with provider_site(data_dir, EMAIL, provider_env, BUDGET) as site:
        site["data_dir"] = str(data_dir)
        site["map"] = str(price_map)
        yield site


def test_forty_concurrent_submits_against_a_one_dollar_budget_accept_exactly_three(
    site: dict[str, str],
) -> None:
    headers = {"Authorization": f"Bearer {site['key']}"}
    body = {"model": "wan-25", "prompt": "race", "duration": 1, "resolution": "480p"}

    def submit(_: int) -> requests.Response:
        return requests.post(
            f"{site['base']}/api/v1/generate", json=body, headers=headers, timeout=60
        )

    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(submit, range(40)))
    assert sorted(r.status_code for r in answers) == [200] * 3 + [402] * 37
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 402} == {
        "budget_exceeded"
    }
    accepted = [r.json()["generation_id"] for r in answers if r.status_code == 200]
    deadline = time.monotonic() + TIMEOUT_S
    for gen_id in accepted:
        while True:
            status = requests.get(
                f"{site['base']}/api/v1/status/{gen_id}", headers=headers, timeout=10
            ).json()["status"]
            if status in ("completed", "failed", "canceled"):
                break
            assert time.monotonic() < deadline, Path(site["log"]).read_text()[-5000:]
            time.sleep(0.2)
        assert status == "completed"
    env = {**os.environ, "VIDEOGEN_DATA_DIR": site["data_dir"],
           "VIDEOGEN_PROVIDER_MAP": site["map"], "FAL_KEY": FAL_KEY}  # fmt: skip
    totals = json.loads(manage(env, "shell", "-c", TOTALS).strip().splitlines()[-1])
    # Each cost is fal's billed figure; the ledger and the month's spend sum to them.
    assert Decimal(totals["cost"]) == Decimal("0.75") == Decimal(totals["ledger"])
    assert Decimal(totals["spent"]) == Decimal("0.75")
    assert totals["sources"] == ["billed"]
    user = requests.get(f"{site['base']}/api/v1/user", headers=headers, timeout=10).json()
    assert user["spend"]["spent_usd"] == "0.7500" and user["spend"]["remaining_usd"] == "0.2500"
