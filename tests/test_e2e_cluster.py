"""A real cluster on loopback: PostgreSQL, the Redis broker, two ASGI web processes, two
worker clusters and S3-compatible object storage (moto's server), all started here.

Runs in CI's second pass, where `.ci/run` provides PostgreSQL and Redis (DATABASE_URL,
REDIS_URL); skipped elsewhere, saying why. 200 generations submitted by 32 concurrent
clients spread over both web processes, and a batch of 10 among them, must all complete, each
exactly once in the ledger, with every file in the bucket; and both web processes must count
one rate limit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.servers import (
    ROOT,
    free_port,
    manage,
    start,
    stop,
    wait_ready,
    web_command,
    worker_command,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (
            os.environ.get("DATABASE_URL", "").startswith("postgres")
            and os.environ.get("REDIS_URL")
        ),
        reason="needs PostgreSQL and Redis (CI's second run sets DATABASE_URL and REDIS_URL)",
    ),  # fmt: skip
]
GENERATIONS = 200
BATCH = 10  # a batch submitted among them (its items wait in line with the rest)
CLIENTS = 32
BUCKET = "videogen-cluster"
TIMEOUT_S = 600


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    moto = pytest.importorskip("moto.server", reason="moto[server] is a dev dependency")
    import boto3

    s3 = moto.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    host, port = s3.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    client.create_bucket(Bucket=BUCKET)
    data_dir = tmp_path_factory.mktemp("cluster")
    env = {
        **os.environ,
        "VIDEOGEN_DATA_DIR": str(data_dir),
        "VIDEOGEN_STORAGE_URL": f"s3://{BUCKET}/media",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_S3_REGION_NAME": "us-east-1",
        "VIDEOGEN_WORKERS": "1",
        "DJANGO_SETTINGS_MODULE": "videogen_site.settings",
    }
    env.pop("VIDEOGEN_Q_SYNC", None)
    manage(env, "migrate", "--noinput", "-v", "0")
    key = manage(env, "create_api_key", "--email", "cluster@example.com", "--create-user",
                 "--monthly-limit", "10000").strip().splitlines()[-1]  # fmt: skip
    log = data_dir / "cluster.log"
    ports = [free_port(), free_port()]
    procs = [start(web_command(web_port), env, log) for web_port in ports]
    procs += [start(worker_command(), env, log) for _ in "ab"]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for base, proc in zip(bases, procs, strict=False):
            wait_ready(base, proc, log)
        yield {"bases": bases, "key": key, "env": env, "s3": client, "log": log}
    finally:
        for proc in procs:
            stop(proc)
        s3.stop()


def test_200_generations_over_two_web_processes_and_two_clusters(
    cluster: dict[str, Any],
) -> None:
    headers = {"Authorization": f"Bearer {cluster['key']}"}
    bases: list[str] = cluster["bases"]

    def submit(i: int) -> tuple[int, str]:
        body = {"model": "local", "prompt": f"lanterns drifting {i}", "duration": 1,
                "resolution": "480p", "aspect_ratio": "1:1"}  # fmt: skip
        response = requests.post(f"{bases[i % 2]}/api/v1/generate", json=body,
                                 headers=headers, timeout=60)  # fmt: skip
        return response.status_code, response.json().get("generation_id", "")

    def submit_batch() -> dict[str, Any]:
        body = {"model": "local", "prompt": "kites at dusk", "duration": 1, "count": BATCH,
                "resolution": "480p", "aspect_ratio": "1:1"}  # fmt: skip
        response = requests.post(f"{bases[1]}/api/v1/batches", json=body, headers=headers,
                                 timeout=60)  # fmt: skip
        assert response.status_code == 200, response.text
        return dict(response.json())

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        batch = pool.submit(submit_batch)
        results = list(pool.map(submit, range(GENERATIONS)))
        made = batch.result()
    assert [code for code, _ in results] == [200] * GENERATIONS
    ids = {gen_id for _, gen_id in results}
    assert len(ids) == GENERATIONS
    assert made["total"] == BATCH and len(set(made["generations"]) - ids) == BATCH
    ids |= set(made["generations"])

    end = time.monotonic() + TIMEOUT_S
    pending = set(ids)
    while pending:
        log = cluster["log"].read_text()[-5000:]
        assert time.monotonic() < end, f"{len(pending)} not finished\n{log}"
        statuses: dict[str, str] = {}
        for n in (1, 2, 3):
            page = requests.get(f"{bases[n % 2]}/api/v1/generations?limit=100&page={n}",
                                headers=headers, timeout=30).json()  # fmt: skip
            statuses |= {g["generation_id"]: g["status"] for g in page["generations"]}
        assert not set(statuses.values()) & {"failed", "canceled"}, statuses
        pending = {i for i in pending if statuses.get(i) != "completed"}
        time.sleep(1)

    # Each generation exactly once in the ledger; every file in the bucket.
    code = (
        "import django, collections; django.setup();"
        "from generations.models import UsageEvent as U;"
        "rows = U.objects.filter(generation__user__email='cluster@example.com');"
        "c = collections.Counter(rows.values_list('generation__generation_id', 'kind'));"
        "print(len(c), sum(c.values()), max(c.values()), sorted({k for _, k in c}))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=cluster["env"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split("\n")[-2]  # fmt: skip
    everything = GENERATIONS + BATCH
    assert out == f"{2 * everything} {2 * everything} 1 ['charge', 'settle']"
    keys = [o["Key"] for p in cluster["s3"].get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET) for o in p.get("Contents", [])]  # fmt: skip
    # (By name: CI's earlier e2e modules share this database, so a generation they left
    # waiting may be rendered by these workers into this bucket too.)
    assert {f"media/videos/{gen_id}.mp4" for gen_id in ids} <= set(keys)
    assert sum(k.startswith("media/posters/") and k[14:-4] in ids for k in keys) == everything
    # The batch reads as completed, its items with their links.
    shown = requests.get(made["status_url"], headers=headers, timeout=30).json()
    assert shown["counts"]["completed"] == shown["total"] == shown["done"] == BATCH, shown
    assert shown["finished_at"] and all(item["video_url"] for item in shown["items"])
    # The public link streams from the bucket through either web process, with Range.
    one = sorted(ids)[0]
    ranged = requests.get(f"{bases[1]}/api/v1/video/{one}", headers={"Range": "bytes=0-99"},
                          timeout=30)  # fmt: skip
    assert ranged.status_code == 206 and len(ranged.content) == 100


def test_both_web_processes_count_one_rate_limit(cluster: dict[str, Any]) -> None:
    env = cluster["env"]
    raw = manage(env, "create_api_key", "--email", "limits@example.com", "--create-user")
    raw = raw.strip().splitlines()[-1]
    manage(env, "shell", "-c",
           "from generations.core import accounts, quotas; from generations.models import User; "
           "u = User.objects.get(email='limits@example.com'); "
           "quotas.team_set_plan_limits(team=accounts.team_personal_get(user=u), "
           "requests_per_minute=30)")  # fmt: skip
    headers = {"Authorization": f"Bearer {raw}"}
    bases: list[str] = cluster["bases"]

    def get(i: int) -> tuple[int, str]:
        r = requests.get(f"{bases[i % 2]}/api/v1/user", headers=headers, timeout=10)
        return r.status_code, r.headers.get("X-RateLimit-Remaining", "")

    if 60 - time.time() % 60 < 10:  # the window is the clock minute: not across its end
        time.sleep(11)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(get, range(40)))
    codes = [c for c, _ in answers]
    assert codes.count(200) == 30 and codes.count(429) == 10
    # The remaining counts the two processes reported are one sequence, not two.
    remaining = sorted(int(r) for c, r in answers if c == 200)
    assert remaining == list(range(30))
