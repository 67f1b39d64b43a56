"""Fair share against a real cluster (issue 16, CONTRACT 7): PostgreSQL and Redis of this
module's own, a uvicorn web process and two worker clusters of one worker each. Team A's
batch of 20 fills both workers; team B's single generation, submitted after, must start as
soon as a worker frees, ahead of nearly all of A's waiting items; and everything completes,
charged exactly once.

Runs in CI's PostgreSQL + Redis pass (about a minute); skipped elsewhere, saying why."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests import dbservers
from tests.cluster_helpers import OWN_SERVERS, Cluster, assert_each_charged_once, cluster_env
from tests.servers import manage

pytestmark = OWN_SERVERS
BATCH = 20
RENDER = {"model": "local", "duration": 3, "resolution": "480p", "aspect_ratio": "16:9"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("fairshare")
    pg = dbservers.Postgres()
    redis = dbservers.Redis(data_dir)
    env = cluster_env(data_dir, pg, redis, VIDEOGEN_WORKERS="1")  # 2 clusters: 2 workers
    manage(env, "migrate", "--noinput", "-v", "0")
    made = Cluster(env, data_dir / "cluster.log", pg, redis, webs=1, workers=2)
    try:
        made.start_web(0)
        for n in (0, 1):
            made.start_worker(n)
        yield made
    finally:
        made.close()
        redis.kill()
        pg.close()


def started(cluster: Cluster, email: str) -> list[tuple[str, Any]]:
    """(generation id, started_at) of this user's generations that have started."""
    return cluster.sql(
        "SELECT g.generation_id, g.started_at FROM generations_generation g"
        " JOIN generations_user u ON u.id = g.user_id"
        " WHERE u.email = %s AND g.started_at IS NOT NULL", email)  # fmt: skip


@pytest.mark.timeout(300)
def test_a_batch_of_20_does_not_hold_back_another_teams_generation(cluster: Cluster) -> None:
    base = cluster.bases[0]
    a = {"Authorization": f"Bearer {cluster.account('team-a@example.com')}"}
    b = {"Authorization": f"Bearer {cluster.account('team-b@example.com')}"}
    begun = time.monotonic()
    take = {**RENDER, "prompt": "tide pools at dawn", "count": BATCH}
    batch = requests.post(f"{base}/api/v1/batches", headers=a, json=take, timeout=60)
    assert batch.status_code == 200, batch.text
    assert batch.json()["total"] == BATCH
    # Both workers busy on A's batch; then B submits one generation.
    deadline = time.monotonic() + 60
    while len(started(cluster, "team-a@example.com")) < 2:
        assert time.monotonic() < deadline, cluster.tail()
        time.sleep(0.1)
    single = requests.post(f"{base}/api/v1/generate", headers=b, timeout=60,
                           json={**RENDER, "prompt": "a lighthouse in fog"})  # fmt: skip
    assert single.status_code == 200, single.text
    submitted_b = time.monotonic()

    rows_a = cluster.wait_completed("team-a@example.com", BATCH)
    rows_b = cluster.wait_completed("team-b@example.com", 1)
    took = time.monotonic() - begun
    assert_each_charged_once(rows_a + rows_b)

    [(_, b_started)] = started(cluster, "team-b@example.com")
    a_started = [at for _, at in started(cluster, "team-a@example.com")]
    after = sum(at > b_started for at in a_started)
    before = BATCH - after
    b_wait = (b_started - min(a_started)).total_seconds()
    print(f"[fairshare] B's generation started after {before} of A's {BATCH} items and "
          f"before {after}; {b_wait:.1f} s after A's first item started (B submitted "
          f"{submitted_b - begun:.1f} s after A's batch); all {BATCH + 1} completed, each "
          f"charged once, in {took:.0f} s on 2 workers")  # fmt: skip
    assert after >= 15

    shown = requests.get(f"{base}/api/v1/batches/{batch.json()['batch_id']}", headers=a,
                         timeout=30).json()  # fmt: skip
    assert shown["counts"]["completed"] == shown["total"] == shown["done"] == BATCH, shown
