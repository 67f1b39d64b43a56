"""Faults against a real cluster (issue 9): PostgreSQL and Redis of this module's own, two
uvicorn web processes and two worker clusters, all on loopback; then the faults production
sees. A worker cluster SIGKILLed 5 times during 100 generations; a web process SIGKILLed with
requests in flight; Redis restarted (its queue lost) with work waiting; a cluster killed and
Redis restarted during a batch; PostgreSQL stopped for a few seconds. Every generation must
end `completed`, charged exactly once, with nothing half-made, and the service must come back
without a manual step.

Runs in CI's PostgreSQL + Redis pass (a few minutes: recovery waits for the reaper, which
runs every minute); skipped elsewhere, saying why."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests import dbservers
from tests.cluster_helpers import (
    DONE_WITHIN_S,
    OWN_SERVERS,
    Cluster,
    assert_each_charged_once,
    cluster_env,
)
from tests.servers import manage

pytestmark = OWN_SERVERS
# Short enough that a test sees recovery within minutes: a run silent for 10 s is lost; a row
# queued 10 s ago whose task is not in the broker is enqueued again.
FAST_RECOVERY = {
    "VIDEOGEN_STALE_AFTER": "10",
    "VIDEOGEN_QUEUED_GRACE_S": "10",
}


def report(line: str) -> None:
    """What happened, for the record (`pytest -s`, or `-rA`)."""
    print(f"[faults] {line}")


def body(i: int, duration: int = 2) -> dict[str, Any]:
    return {"model": "local", "prompt": f"paper boats on a canal {i}", "duration": duration,
            "resolution": "480p", "aspect_ratio": "16:9"}  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("faults")
    pg = dbservers.Postgres()
    redis = dbservers.Redis(data_dir)
    env = cluster_env(data_dir, pg, redis, **FAST_RECOVERY, VIDEOGEN_WORKERS="2")
    manage(env, "migrate", "--noinput", "-v", "0")
    made = Cluster(env, data_dir / "cluster.log", pg, redis)
    try:
        for n in (0, 1):
            made.start_web(n)
            made.start_worker(n)
        yield made
    finally:
        made.close()
        redis.kill()
        pg.close()


@pytest.mark.timeout(DONE_WITHIN_S + 180)
def test_a_worker_cluster_sigkilled_5_times_during_100_generations(cluster: Cluster) -> None:
    email = "kills@example.com"
    headers = {"Authorization": f"Bearer {cluster.account(email)}"}

    def submit(i: int) -> int:
        url = f"{cluster.bases[i % 2]}/api/v1/generate"
        return requests.post(url, json=body(i), headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(submit, range(100))) == [200] * 100

    for _ in range(5):
        # Let the cluster (re)start and take work; then kill it, with that work, mid-run.
        started = time.monotonic()
        while time.monotonic() - started < 4 or cluster.count("in_progress") == 0:
            assert time.monotonic() - started < 60, "no work in progress to kill"
            time.sleep(0.2)
        unfinished = 100 - sum(r.status == "completed" for r in cluster.rows(email))
        assert unfinished > 0, "the generations finished before all 5 kills"
        cluster.kill_worker(0)
        cluster.start_worker(0)

    last_kill = time.monotonic()
    rows = cluster.wait_completed(email, 100)
    assert_each_charged_once(rows)
    # The kills took running work with them: those runs were started again.
    rerun = sum(r.attempts >= 2 for r in rows)
    assert rerun >= 1
    report(f"5 kills: 100/100 completed, each charged once; {rerun} runs started again; "
           f"the last done {time.monotonic() - last_kill:.0f} s after the last kill")  # fmt: skip


@pytest.mark.timeout(DONE_WITHIN_S + 180)
def test_a_web_process_sigkilled_mid_request_leaves_nothing_half_made(cluster: Cluster) -> None:
    """32 clients submit 150 generations, each with its own Idempotency-Key, over both web
    processes; one process is SIGKILLed while requests are in flight and started again. A
    client whose request died retries with the same key (on whichever process answers), as
    the API docs tell it to. Each key ends up as exactly one generation, charged once."""
    email = "webkill@example.com"
    headers = {"Authorization": f"Bearer {cluster.account(email)}"}
    total = 150
    answered = 0
    lock = threading.Lock()
    killed = threading.Event()
    broken: list[str] = []  # requests that died with the process
    replayed: list[int] = []  # answered from an earlier, cut-off try

    def kill_once() -> None:
        if not killed.is_set():
            killed.set()
            cluster.kill_web(0)

    def submit(i: int) -> str:
        nonlocal answered
        deadline = time.monotonic() + 240
        for attempt in range(10_000):
            assert time.monotonic() < deadline, f"request {i} never succeeded"
            base = cluster.bases[(i + attempt) % 2]
            try:
                response = requests.post(f"{base}/api/v1/generate", json=body(i, 1),
                                         headers={**headers, "Idempotency-Key": f"boat-{i}"},
                                         timeout=60)  # fmt: skip
            except requests.RequestException as exc:
                # Cut off mid-request (the process died under it) or refused (it is down).
                cut = "aborted" in str(exc) or "RemoteDisconnected" in str(exc)
                broken.append("cut" if cut else "refused")
                time.sleep(0.5)
                continue
            if response.status_code in (409, 502, 503):  # still in flight, or presumed so
                time.sleep(1)
                continue
            assert response.status_code == 200, response.text
            if response.headers.get("Idempotent-Replayed"):
                replayed.append(i)
            with lock:
                answered += 1
                if answered == 30:
                    kill_once()  # ~16 of this process's requests are in flight now
            return str(response.json()["generation_id"])
        raise AssertionError("unreachable")

    def restart_after_the_kill() -> None:
        if not killed.wait(timeout=240):
            return
        time.sleep(2)
        cluster.start_web(0)

    restart = threading.Thread(target=restart_after_the_kill)
    restart.start()
    with ThreadPoolExecutor(max_workers=32) as pool:
        ids = list(pool.map(submit, range(total)))
    restart.join()
    assert killed.is_set() and "cut" in broken, "the kill hit no request in flight"
    assert len(set(ids)) == total  # one generation per key
    rows = cluster.wait_completed(email, total)  # and no other row: nothing half-made
    assert {r.generation_id for r in rows} == set(ids)
    assert_each_charged_once(rows)
    unanswered = cluster.sql(
        "SELECT count(*) FROM generations_idempotencyrecord r JOIN generations_apikey k"
        " ON k.id = r.api_key_id JOIN generations_user u ON u.id = k.user_id"
        " WHERE u.email = %s AND r.response_status IS NULL", email)  # fmt: skip
    assert unanswered == [(0,)]
    report(f"web kill: {broken.count('cut')} requests cut mid-flight, "
           f"{broken.count('refused')} refused; {len(replayed)} retries answered with what "
           f"an earlier try had saved; {total} keys, one generation each")  # fmt: skip


@pytest.mark.timeout(DONE_WITHIN_S + 180)
def test_redis_restarted_mid_run_queued_work_is_recovered_from_the_database(
    cluster: Cluster,
) -> None:
    """With fair share the broker is shallow on purpose: the waiting work is `pending` rows in
    the database, and only VIDEOGEN_QUEUE_AHEAD tasks are handed over at a time (most often
    already taken off the Redis list by a cluster's pusher). Redis restarted without
    persistence loses whatever is in its list; meanwhile the dispatchers' hand-overs fail
    and their rows go back to waiting; submits are saved and charged. All of it completes
    once Redis is back."""
    email = "redis@example.com"
    headers = {"Authorization": f"Bearer {cluster.account(email)}"}

    def submit(i: int) -> requests.Response:
        url = f"{cluster.bases[i % 2]}/api/v1/generate"
        return requests.post(url, json=body(i), headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert [r.status_code for r in pool.map(submit, range(60))] == [200] * 60
    while cluster.count("completed") == 0 or cluster.count("in_progress") == 0:
        time.sleep(0.2)
    waiting = cluster.count("pending") + cluster.count("in_queue")
    assert waiting > 10, "the waiting work drained before the restart"
    handed = cluster.sql("SELECT generation_id FROM generations_generation"
                         " WHERE status = 'in_queue'")  # fmt: skip
    in_list = cluster.redis.client().llen("django_q:videogen:q")  # type: ignore[attr-defined]

    cluster.redis.kill()  # without persistence: the broker's list is gone
    # While it is down the API keeps taking work: saved, charged, handed over later.
    during = [submit(100 + i) for i in range(5)]
    assert [r.status_code for r in during] == [200] * 5
    assert {r.json()["status"] for r in during} <= {"pending", "queued"}
    time.sleep(2)
    held = cluster.count("pending")  # hand-overs refused while it was down wait here
    cluster.redis.start()
    assert cluster.redis.client().llen("django_q:videogen:q") == 0  # type: ignore[attr-defined]

    back = time.monotonic()
    rows = cluster.wait_completed(email, 65)
    assert_each_charged_once(rows)
    done = {r.generation_id for r in rows if r.status == "completed"}
    assert {gen_id for (gen_id,) in handed} <= done  # the handed-over tasks, lost or not
    report(f"Redis restart: {waiting} generations waiting ({len(handed)} handed to the "
           f"broker, {in_list} of them still in its list and lost; {held} pending while it "
           f"was down), 5 submits during the outage; all 65 completed "
           f"{time.monotonic() - back:.0f} s after Redis was back")  # fmt: skip


@pytest.mark.timeout(DONE_WITHIN_S + 180)
def test_a_worker_cluster_sigkilled_then_redis_restarted_during_a_batch(cluster: Cluster) -> None:
    """A batch of 30: with every worker busy on it, a worker cluster is SIGKILLed (its running
    items with it) and started again; a few items later Redis is restarted (its list lost).
    Both faults in one batch, so that their recoveries overlap (the reaper's minute is the
    long wait). Every item completes once, and the batch reads as completed."""
    email = "batch-faults@example.com"
    headers = {"Authorization": f"Bearer {cluster.account(email)}"}
    take = {**body(0), "prompt": "kites over a dune", "count": 30}
    made = requests.post(f"{cluster.bases[0]}/api/v1/batches", json=take, headers=headers,
                         timeout=60)  # fmt: skip
    assert made.status_code == 200 and made.json()["total"] == 30, made.text

    def count(status: str) -> int:
        return sum(r.status == status for r in cluster.rows(email))

    deadline = time.monotonic() + 60
    while count("in_progress") < 3:  # at least one running on the cluster about to die
        assert time.monotonic() < deadline, cluster.tail()
        time.sleep(0.1)
    at_kill = 30 - count("completed")
    cluster.kill_worker(0)
    cluster.start_worker(0)
    killed = time.monotonic()

    # The batch goes on (the other cluster, the restarted one); then Redis goes.
    done_before = count("completed")
    while count("completed") < done_before + 2:
        assert time.monotonic() < killed + 60, cluster.tail()
        time.sleep(0.2)
    at_restart = 30 - count("completed")
    assert at_restart > 0, "the batch finished before Redis was restarted"
    cluster.redis.kill()
    time.sleep(2)
    cluster.redis.start()
    back = time.monotonic()

    rows = cluster.wait_completed(email, 30)
    assert_each_charged_once(rows)
    rerun = sum(r.attempts >= 2 for r in rows)
    assert rerun >= 1  # the kill took running items with it: they were started again
    shown = requests.get(f"{cluster.bases[1]}/api/v1/batches/{made.json()['batch_id']}",
                         headers=headers, timeout=30).json()  # fmt: skip
    assert shown["counts"]["completed"] == shown["total"] == shown["done"] == 30, shown
    assert shown["finished_at"], shown
    report(f"batch of 30: a cluster killed with {at_kill} unfinished, Redis restarted with "
           f"{at_restart} unfinished; all 30 completed, each charged once, {rerun} started "
           f"again; the last done {time.monotonic() - killed:.0f} s after the kill, "
           f"{time.monotonic() - back:.0f} s after Redis was back")  # fmt: skip


@pytest.mark.timeout(DONE_WITHIN_S + 180)
def test_postgresql_stopped_briefly_gives_clear_503s_then_recovers(cluster: Cluster) -> None:
    email = "pg@example.com"
    key = cluster.account(email)
    headers = {"Authorization": f"Bearer {key}"}

    def submit(i: int, base: str) -> requests.Response:
        return requests.post(f"{base}/api/v1/generate", json=body(i), headers=headers, timeout=60)

    first = [submit(i, cluster.bases[i % 2]) for i in range(20)]
    assert [r.status_code for r in first] == [200] * 20
    while cluster.count("in_progress") == 0:
        time.sleep(0.2)

    cluster.pg.stop("fast")
    try:
        answers: list[requests.Response] = []
        for base in cluster.bases:
            answers += [
                requests.get(f"{base}/api/v1/status/{first[0].json()['generation_id']}",
                             headers=headers, timeout=30),
                submit(999, base),
                requests.get(f"{base}/v1/videos", headers=headers, timeout=30),
            ]  # fmt: skip
            page = requests.get(f"{base}/s/no-such-link", timeout=30)  # a dashboard page
            assert page.status_code == 503 and "Briefly unavailable" in page.text
            assert requests.get(f"{base}/healthz", timeout=30).status_code == 503
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] == "5"
            assert answer.json()["error"]["code"] == "database_unavailable"
        time.sleep(3)
    finally:
        cluster.pg.start()

    # Back without a manual step: each web process answers again within seconds.
    back = time.monotonic()
    for base in cluster.bases:
        deadline = time.monotonic() + 30
        while requests.get(f"{base}/api/v1/user", headers=headers, timeout=30).status_code != 200:
            assert time.monotonic() < deadline, cluster.tail()
            time.sleep(0.5)
    answering = time.monotonic() - back
    after = [submit(100 + i, cluster.bases[i % 2]) for i in range(5)]
    assert [r.status_code for r in after] == [200] * 5
    rows = cluster.wait_completed(email, 25)  # the refused submits left nothing behind
    assert_each_charged_once(rows)
    report(f"PostgreSQL stop: {len(answers)} API calls and 2 pages answered 503, none 500; "
           f"both web processes answering {answering:.1f} s after the restart; all 25 "
           f"completed {time.monotonic() - back:.0f} s after it")  # fmt: skip
