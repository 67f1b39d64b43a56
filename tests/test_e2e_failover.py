"""Failover and the circuit breaker against a real cluster (issue 19, CONTRACT 9): PostgreSQL
and Redis of this module's own, a uvicorn web process and a django-q2 cluster of two
workers, with fal and Replicate played by the fake servers of tests/ on loopback.

fal answers 503 to everything. Fifty generations of a model routed fal -> Replicate all
complete on Replicate, each charged exactly once; fal's circuit opens after
VIDEOGEN_BREAKER_FAILURES failures, after which fal is not called at all; once fal recovers
and the cool-down is over, one probe closes the circuit and fal serves again.

Runs in CI's PostgreSQL + Redis pass (with servers of its own); skipped elsewhere, saying why."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests import dbservers
from tests.cluster_helpers import OWN_SERVERS, Cluster, assert_each_charged_once, cluster_env
from tests.fake_fal import FakeFal
from tests.fake_replicate import FakeReplicate
from tests.fakeupstream import DOWN, NORMAL, make_mp4
from tests.servers import manage

pytestmark = OWN_SERVERS
FAL_KEY = "fal-e2e-failover-key"
REPLICATE_TOKEN = "r8_e2e_failover_token"
COUNT = 50  # the fifty generations
MORE = 10  # submitted while the circuit is open
FAILURES = 5  # VIDEOGEN_BREAKER_FAILURES
COOLDOWN_S = 30  # VIDEOGEN_BREAKER_COOLDOWN_S: long enough to submit MORE within it
EMAIL = "failover@example.com"
RENDER = {"model": "wan-25", "duration": 1, "resolution": "480p", "aspect_ratio": "16:9"}
MAP = """
[wan-25.fal]
text-to-video = "fal-ai/wan-25-preview/text-to-video"
typical_s = 2
[wan-25.fal.input]
prompt = "prompt"
duration = "duration|str"
resolution = "resolution"

[wan-25.replicate]
text-to-video = "wan-video/wan-2.5-t2v"
typical_s = 2
[wan-25.replicate.input]
prompt = "prompt"
duration = "duration|int"
resolution = "resolution"
"""


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeFal, FakeReplicate]]:
    folder = tmp_path_factory.mktemp("failover-video")
    # Exactly the 480p, 30 fps, 1 s asked for: stored by remuxing, so fifty stay quick.
    exact = make_mp4(folder / "exact.mp4", width=854, height=480, fps=30, frames=30)
    with FakeFal(key=FAL_KEY) as fal, FakeReplicate(token=REPLICATE_TOKEN) as replicate:
        fal.video = replicate.video = exact
        replicate.run_polls = 1
        yield fal, replicate


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, fakes: tuple[FakeFal, FakeReplicate]
) -> Iterator[Cluster]:
    fal, replicate = fakes
    data_dir = tmp_path_factory.mktemp("failover")
    provider_map = data_dir / "providers.toml"
    provider_map.write_text(MAP)
    pg = dbservers.Postgres()
    redis = dbservers.Redis(data_dir)
    env = cluster_env(
        data_dir, pg, redis,
        VIDEOGEN_WORKERS="2",
        VIDEOGEN_PROVIDER_MAP=str(provider_map),
        FAL_KEY=FAL_KEY, FAL_QUEUE_URL=fal.url,
        REPLICATE_API_TOKEN=REPLICATE_TOKEN, REPLICATE_API_URL=f"{replicate.url}/v1",
        VIDEOGEN_POLL_FIRST_S="0.2", VIDEOGEN_POLL_MAX_S="1",
        VIDEOGEN_BREAKER_FAILURES=str(FAILURES), VIDEOGEN_BREAKER_COOLDOWN_S=str(COOLDOWN_S),
    )  # fmt: skip
    manage(env, "migrate", "--noinput", "-v", "0")
    made = Cluster(env, data_dir / "cluster.log", pg, redis, webs=1, workers=1)
    try:
        made.start_web(0)
        made.start_worker(0)
        yield made
    finally:
        made.close()
        redis.kill()
        pg.close()


def circuit(cluster: Cluster) -> dict[str, Any]:
    rows = cluster.sql("SELECT state, failures, opened_count, retry_at FROM "
                       "generations_providercircuit WHERE provider = 'fal'")  # fmt: skip
    assert rows, "fal has no circuit yet"
    state, failures, opened_count, retry_at = rows[0]
    return {"state": state, "failures": failures, "opened": opened_count, "retry_at": retry_at}


def engines(cluster: Cluster) -> dict[str, str]:
    query = ("SELECT g.generation_id, g.engine FROM generations_generation g JOIN "
             "generations_user u ON u.id = g.user_id WHERE u.email = %s")  # fmt: skip
    rows = cluster.sql(query, EMAIL)
    return dict(rows)


def submit(cluster: Cluster, key: str, n: int, prompt: str) -> list[str]:
    ids = []
    for i in range(n):
        answer = requests.post(f"{cluster.bases[0]}/api/v1/generate", timeout=60,
                               headers={"Authorization": f"Bearer {key}"},
                               json={**RENDER, "prompt": f"{prompt} {i}"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        ids.append(str(answer.json()["generation_id"]))
    return ids


def now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.timeout(400)
def test_fifty_generations_fail_over_to_replicate_and_the_breaker_keeps_fal_out(
    cluster: Cluster, fakes: tuple[FakeFal, FakeReplicate]
) -> None:
    fal, replicate = fakes
    key = cluster.account(EMAIL)
    fal.mode = DOWN
    begun = time.monotonic()
    first = submit(cluster, key, COUNT, "a paper boat")
    rows = cluster.wait_completed(EMAIL, COUNT)
    took = time.monotonic() - begun
    assert_each_charged_once(rows)  # one charge and one settle each, no refund
    assert set(engines(cluster).values()) == {"replicate"}
    opened = circuit(cluster)
    fal_calls = fal.api_calls()
    print(f"[failover] {COUNT} generations completed on Replicate in {took:.0f} s with fal "
          f"down; fal got {fal_calls} calls, its circuit opened {opened['opened']} "
          "time(s)")  # fmt: skip
    assert opened["opened"] >= 1 and opened["state"] in ("open", "half_open")
    assert fal_calls < COUNT  # most never called fal: its circuit was open
    body = requests.get(f"{cluster.bases[0]}/api/v1/status/{first[-1]}", timeout=30,
                        headers={"Authorization": f"Bearer {key}"}).json()  # fmt: skip
    assert body["provider"] == "replicate" and body["attempts"][-1]["outcome"] == "served"

    # While it is open, fal is not called at all. (If the cool-down ended during the fifty,
    # one more job probes fal, still down, which opens the circuit for a new cool-down.)
    state = circuit(cluster)
    if state["state"] != "open" or state["retry_at"] < now() + timedelta(seconds=COOLDOWN_S / 2):
        while state["retry_at"] > now():
            time.sleep(0.2)
            state = circuit(cluster)
        submit(cluster, key, 1, "a probing boat")
        cluster.wait_completed(EMAIL, COUNT + 1)
        state = circuit(cluster)
        assert state["state"] == "open" and state["opened"] == opened["opened"] + 1, state
    calls = fal.api_calls()
    submit(cluster, key, MORE, "a boat while fal is out")
    cluster.wait_completed(EMAIL, len(engines(cluster)))
    assert now() < state["retry_at"], "the cool-down ended before the check was done"
    assert fal.api_calls() == calls
    assert circuit(cluster)["opened"] == state["opened"]

    # fal recovers; after the cool-down, one probe closes the circuit and fal serves again.
    fal.mode = NORMAL
    while circuit(cluster)["retry_at"] > now():
        time.sleep(0.2)
    submits = fal.received["submit"]
    [probe] = submit(cluster, key, 1, "the boat after the storm")
    total = len(engines(cluster))
    cluster.wait_completed(EMAIL, total)
    closed = circuit(cluster)
    assert closed["state"] == "closed" and closed["failures"] == 0, closed
    assert closed["opened"] == state["opened"]  # the probe succeeded: not opened again
    assert engines(cluster)[probe] == "fal" and fal.received["submit"] == submits + 1
    [after] = submit(cluster, key, 1, "a calm day")
    cluster.wait_completed(EMAIL, total + 1)
    assert engines(cluster)[after] == "fal"
    assert_each_charged_once(cluster.rows(EMAIL))
    print(f"[failover] whole run {time.monotonic() - begun:.0f} s; Replicate got "
          f"{replicate.received['create']} submissions")  # fmt: skip
