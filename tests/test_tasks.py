"""The worker side: claiming, running twice, lost workers and failures."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from generations import spec, tasks
from generations.core import lifecycle
from generations.models import Generation, UsageEvent
from generations.rendering import registry
from generations.rendering.base import EngineError, RenderContext
from generations.tasks import results
from tests.conftest import Account


def submit(account: Account, **extra: Any) -> Generation:
    body = (
        account.client()
        .post(
            "/api/v1/generate",
            {
                "model": "local",
                "prompt": "rain on a window",
                "duration": 1,
                "resolution": "480p",
                **extra,
            },
        )
        .json()
    )
    return Generation.objects.get(generation_id=body["generation_id"])


def test_a_run_renders_and_completes_the_generation(owner: Account) -> None:
    gen = submit(owner)
    assert tasks.generation_run(gen.pk) == "completed"
    gen.refresh_from_db()
    assert gen.status == "completed" and gen.progress == 100 and gen.attempts == 1
    assert gen.started_at and gen.finished_at and gen.engine == "local"
    kinds = list(
        UsageEvent.objects.filter(generation=gen).order_by("pk").values_list("kind", flat=True)
    )
    assert kinds == ["charge", "settle"]


def test_running_the_task_twice_renders_once(owner: Account) -> None:
    gen = submit(owner)
    assert tasks.generation_run(gen.pk) == "completed"
    first_video = Generation.objects.get(pk=gen.pk).video.name
    assert tasks.generation_run(gen.pk).startswith("skipped")
    gen.refresh_from_db()
    assert gen.video.name == first_video and gen.attempts == 1
    assert UsageEvent.objects.filter(generation=gen, kind="charge").count() == 1


def test_a_job_held_by_a_live_worker_is_not_taken(owner: Account) -> None:
    gen = submit(owner)
    Generation.objects.filter(pk=gen.pk).update(
        status="in_progress", heartbeat_at=timezone.now(), claim="someone", attempts=1
    )
    assert tasks.generation_run(gen.pk).startswith("skipped")


def test_the_reaper_requeues_a_job_whose_worker_died(owner: Account, sync_tasks: None) -> None:
    gen = submit(owner)
    long_ago = timezone.now() - timedelta(minutes=10)
    Generation.objects.filter(pk=gen.pk).update(
        status="in_progress", heartbeat_at=long_ago, claim="dead", attempts=1
    )
    tasks.reap_stale()  # sync mode: the re-enqueued run happens right here
    gen.refresh_from_db()
    assert gen.status == "completed" and gen.attempts == 2


def test_a_job_canceled_while_running_whose_worker_died_ends_canceled_and_refunded(
    owner: Account,
) -> None:
    """Canceled while running (the flag waits for its run's next frame), then the worker died
    with it. The reaper must not queue it again: no run may claim a row asked to stop, so it
    would stay `in_queue` forever, never refunded, holding its queue's place in the broker
    (core/fairshare.py hands out nothing more while it counts as handed over)."""
    gen = submit(owner)
    Generation.objects.filter(pk=gen.pk).update(
        status="in_progress", heartbeat_at=timezone.now(), claim="dying", attempts=1
    )
    canceled = owner.client().post(f"/api/v1/generations/{gen.generation_id}/cancel", {})
    assert canceled.status_code == 200, canceled.json()
    Generation.objects.filter(pk=gen.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    tasks.reap_stale()
    gen.refresh_from_db()
    assert gen.status == "canceled" and gen.finished_at
    kinds = sorted(UsageEvent.objects.filter(generation=gen).values_list("kind", flat=True))
    assert kinds == ["charge", "refund"]


def test_a_cancel_that_lands_while_the_reaper_looks_keeps_the_row_from_the_queue(
    owner: Account,
) -> None:
    """The reaper read the silent row, then a cancel set its flag: the requeue does not
    happen; the next round stops it."""
    gen = submit(owner)
    Generation.objects.filter(pk=gen.pk).update(
        status="in_progress", heartbeat_at=timezone.now() - timedelta(minutes=10), claim="dead"
    )
    gen.refresh_from_db()
    Generation.objects.filter(pk=gen.pk).update(cancel_requested=True)
    assert not lifecycle.requeue(generation=gen, now=timezone.now())
    tasks.reap_stale()
    gen.refresh_from_db()
    assert gen.status == "canceled"


def test_a_queued_row_asked_to_stop_is_canceled_not_enqueued_again(owner: Account) -> None:
    """Such a row (left by a reaper that queued canceled work again) is canceled, refunded."""
    gen = submit(owner)
    Generation.objects.filter(pk=gen.pk).update(
        status="in_queue", queued_at=timezone.now() - timedelta(minutes=10), cancel_requested=True
    )
    assert tasks.reap_stale().startswith("requeued 0,")
    gen.refresh_from_db()
    assert gen.status == "canceled"
    assert UsageEvent.objects.filter(generation=gen, kind="refund").count() == 1


def test_the_reaper_fails_a_job_that_keeps_killing_workers_and_refunds(owner: Account) -> None:
    gen = submit(owner)
    Generation.objects.filter(pk=gen.pk).update(
        status="in_progress",
        heartbeat_at=timezone.now() - timedelta(minutes=10),
        claim="dead",
        attempts=3,
    )
    assert tasks.reap_stale() == "requeued 0, released 0, re-armed 0 polls, failed 1"
    gen.refresh_from_db()
    assert gen.status == "failed" and gen.error_code == "worker_lost"
    assert UsageEvent.objects.filter(generation=gen, kind="refund").count() == 1


def test_the_reaper_enqueues_rows_that_never_reached_the_queue(
    owner: Account, sync_tasks: None
) -> None:
    gen = submit(owner)  # on_commit never ran in this test: the row is still pending
    Generation.objects.filter(pk=gen.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    tasks.reap_stale()
    gen.refresh_from_db()
    assert gen.status == "completed"


class _Exploding:
    name = "local"

    def render(self, spec: spec.GenerationSpec, ctx: RenderContext) -> Any:
        raise EngineError("invalid_image", "The input image could not be decoded.")


def test_an_engine_error_fails_with_its_reason_and_refunds(
    owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = submit(owner)
    monkeypatch.setattr(registry, "get_engine", lambda name: _Exploding())
    assert tasks.generation_run(gen.pk) == "failed: invalid_image"
    gen.refresh_from_db()
    assert (gen.status, gen.error_code) == ("failed", "invalid_image")
    body = owner.client().get(f"/api/v1/status/{gen.generation_id}").json()
    assert body["error"] == {
        "code": "invalid_image",
        "message": "The input image could not be decoded.",
    }
    assert owner.client().get("/api/v1/user").json()["usage"]["current_month_usage"] == 0


def test_a_cancel_request_stops_the_render_and_refunds(owner: Account) -> None:
    gen = submit(owner, duration=3)
    # A cancel arriving while the job runs: the progress write sees it and stops the engine.
    original = results.Reporter.progress

    def progress_then_cancel(self: results.Reporter, pct: float) -> None:
        Generation.objects.filter(pk=self.pk).update(cancel_requested=True)
        self.last_write = 0.0
        original(self, pct)

    results.Reporter.progress = progress_then_cancel  # type: ignore[method-assign]
    try:
        assert tasks.generation_run(gen.pk) == "canceled"
    finally:
        results.Reporter.progress = original  # type: ignore[method-assign]
    gen.refresh_from_db()
    assert gen.status == "canceled" and not gen.video
    assert UsageEvent.objects.filter(generation=gen, kind="refund").count() == 1


# --- queued work whose task the broker lost -------------------------------------------------


def _queued_long_ago(gen: Generation) -> None:
    Generation.objects.filter(pk=gen.pk).update(queued_at=timezone.now() - timedelta(minutes=5))


def _orm_tasks_for(gen: Generation) -> int:
    from django_q.models import OrmQ

    return sum(task.task["args"] == (gen.pk,) for task in OrmQ.objects.all())


def test_a_long_wait_in_the_queue_is_not_mistaken_for_a_lost_task(owner: Account) -> None:
    gen = submit(owner)  # the ORM broker: the task row commits with the generation
    _queued_long_ago(gen)
    assert tasks.reap_stale().startswith("requeued 0,")
    assert _orm_tasks_for(gen) == 1


def test_a_queued_row_whose_task_vanished_is_enqueued_again_once(owner: Account) -> None:
    from django_q.models import OrmQ

    gen = submit(owner)
    OrmQ.objects.all().delete()  # what a broker restart without persistence does
    _queued_long_ago(gen)
    assert tasks.reap_stale().startswith("requeued 1,")
    assert _orm_tasks_for(gen) == 1
    gen.refresh_from_db()
    assert gen.status == "in_queue" and gen.queued_at is not None
    assert timezone.now() - gen.queued_at < timedelta(seconds=10)
    assert tasks.reap_stale().startswith("requeued 0,")  # not again within the grace period
    assert tasks.generation_run(gen.pk) == "completed"


@pytest.fixture
def redis_broker(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Callable[[], None]]:
    """django-q2 on a real Redis started here; yields a function that restarts it (no
    persistence, as a default Redis in a container loses its lists)."""
    import shutil
    import subprocess

    from django_q.conf import Conf

    from tests.servers import free_port

    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    port = free_port()
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(tmp_path)]  # fmt: skip

    def launch() -> subprocess.Popen[bytes]:
        import redis

        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                return proc
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    procs = [launch()]

    def restart() -> None:
        procs[0].kill()
        procs[0].wait()
        procs[0] = launch()

    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{port}/0")
    try:
        yield restart
    finally:
        procs[0].kill()
        procs[0].wait()


def test_work_queued_in_redis_is_recovered_from_the_database_after_a_restart(
    owner: Account, redis_broker: Callable[[], None], settings: Any
) -> None:
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    settings.VIDEOGEN_QUEUE_AHEAD = 2  # both go to the broker (fair share lets 2 ahead)
    # Each submit commits, and its task goes to Redis after the commit.
    first, second = submit(owner), submit(owner)
    broker = get_broker(Conf.PREFIX)
    assert broker.queue_size() == 2
    _queued_long_ago(first)  # `second` was queued just now: still within its grace period

    redis_broker()  # SIGKILL and start again: the list is gone
    assert get_broker(Conf.PREFIX).queue_size() == 0
    assert tasks.reap_stale().startswith("requeued 1,")
    _queued_long_ago(second)
    assert tasks.reap_stale().startswith("requeued 1,")
    assert tasks.reap_stale().startswith("requeued 0,")  # both are in the list again
    assert get_broker(Conf.PREFIX).queue_size() == 2
