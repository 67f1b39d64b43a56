"""An in-flight limit through real workers (CONTRACT 9): the production server command (web
and a django-q2 cluster of two worker processes, their dispatcher threads polling) with
VIDEOGEN_PROVIDER_CONCURRENCY=fal=2, and fal played by the fake queue API on loopback,
which counts the requests in flight (submitted, not yet ended for us). Ten jobs submitted
at once: the fake never holds more than two, and all ten complete.

Runs in `make test` (SQLite, the ORM broker) and again in CI's PostgreSQL + Redis pass."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fake_fal import FakeFal
from tests.servers import provider_site

pytestmark = pytest.mark.e2e
FAL_KEY = "fal-e2e-pool-key"
LIMIT = 2
JOBS = 10
TIMEOUT_S = 120
# `wan-25` on fal with small jobs, so that ten of them stay quick.
MAP = """
[wan-25.fal]
text-to-video = "fal-ai/wan-25-preview/text-to-video"
image-to-video = "fal-ai/wan-25-preview/image-to-video"
typical_s = 2
[wan-25.fal.input]
prompt = "prompt"
"""


@pytest.fixture(scope="module")
def fal() -> Iterator[FakeFal]:
    with FakeFal(key=FAL_KEY) as fake:
        fake.queue_polls, fake.run_polls = 1, 2  # a few polls each: jobs overlap
        yield fake


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, fal: FakeFal) -> Iterator[dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("e2e-pools")
    provider_map = data_dir / "providers.toml"
    provider_map.write_text(MAP)
    env = {"FAL_KEY": FAL_KEY, "FAL_QUEUE_URL": fal.url,
           "VIDEOGEN_PROVIDER_MAP": str(provider_map),
           "VIDEOGEN_PROVIDER_CONCURRENCY": f"fal={LIMIT}"}  # fmt: skip
    with provider_site(data_dir, "pools@example.com", env) as site:
        yield site


def call(site: dict[str, str], method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {site['key']}"}
    return requests.request(method, site["base"] + path, headers=headers, timeout=30, **kwargs)


@pytest.mark.timeout(240)
def test_with_fal_2_the_provider_never_holds_more_than_2_and_all_10_complete(
    site: dict[str, str], fal: FakeFal
) -> None:
    ids = []
    for i in range(JOBS):
        response = call(site, "POST", "/api/v1/generate", json={
            "model": "wan-25", "prompt": f"lantern number {i}", "duration": 1,
            "resolution": "480p",
        })  # fmt: skip
        assert response.status_code == 200, response.text
        ids.append(response.json()["generation_id"])
    began = time.monotonic()
    statuses: dict[str, str] = {}
    most_seen = 0
    while time.monotonic() - began < TIMEOUT_S:
        most_seen = max(most_seen, fal.in_flight)
        listing = call(site, "GET", "/api/v1/generations", params={"limit": JOBS})
        assert listing.status_code == 200, listing.text
        statuses = {g["generation_id"]: g["status"] for g in listing.json()["generations"]}
        if set(statuses) == set(ids) and all(
            s in ("completed", "failed", "canceled") for s in statuses.values()
        ):
            break
        time.sleep(0.3)
    took = time.monotonic() - began
    log = Path(site["log"]).read_text()
    assert set(statuses.values()) == {"completed"}, (statuses, log[-5000:])
    assert len(fal.jobs) == JOBS  # each submitted once
    assert fal.max_in_flight == LIMIT, (fal.max_in_flight, most_seen)  # reached, never passed
    assert most_seen <= LIMIT  # as sampled here too
    print(f"{JOBS} jobs at fal={LIMIT}: all completed in {took:.1f} s, "
          f"at most {fal.max_in_flight} in flight")  # fmt: skip
