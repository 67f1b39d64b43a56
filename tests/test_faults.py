"""When the database or the broker goes away under a running site: clear 503s (never a 500),
nothing half-made, and everything carries on once they are back. The same faults against
real PostgreSQL and Redis processes are in tests/test_e2e_faults.py."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError, connections
from django.test import Client
from django.utils import timezone
from django_q.conf import Conf

from generations import tasks
from generations.core import lifecycle
from generations.models import Generation, UsageEvent
from generations.rendering import registry
from generations.tasks import results, run
from tests.conftest import Account
from tests.servers import free_port

BODY = {"model": "local", "prompt": "a lighthouse at dusk", "duration": 1, "resolution": "480p"}


def _database_goes_away(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every new query fails to reach the server, as with PostgreSQL stopped."""

    def unreachable(self: Any) -> None:
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed')

    monkeypatch.setattr(type(connections["default"]), "ensure_connection", unreachable)


@pytest.mark.django_db(transaction=True)
def test_while_the_database_is_down_every_surface_answers_503_then_recovers(
    owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = Client(
        raise_request_exception=False, headers={"Authorization": f"Bearer {owner.raw_key}"}
    )
    browser = Client(raise_request_exception=False)
    browser.force_login(owner.user)
    with monkeypatch.context() as outage:
        _database_goes_away(outage)
        for path in ("/api/v1/generations", "/v1/videos"):
            answer = api.get(path)
            assert answer.status_code == 503, path
            assert answer["Retry-After"] == "5"
            error = answer.json()["error"]
            assert error["code"] == "database_unavailable"
            assert "Retry in a few seconds" in error["message"]
        submit = api.post("/api/v1/generate", BODY, content_type="application/json")
        assert submit.status_code == 503
        page = browser.get("/generations/")
        assert page.status_code == 503 and b"Briefly unavailable" in page.content
        assert api.get("/healthz").status_code == 503
    # Back: no restart, no manual step.
    assert api.get("/api/v1/generations").status_code == 200
    assert browser.get("/generations/").status_code == 200
    assert api.post("/api/v1/generate", BODY, content_type="application/json").status_code == 200
    assert Generation.objects.count() == 1  # the refused submit left nothing behind


def test_a_submit_while_the_broker_is_down_is_kept_and_queued_once_it_is_back(
    owner: Account, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:

    orm, redis = Conf.ORM, Conf.REDIS
    monkeypatch.setattr(Conf, "ORM", None)  # Redis, and nothing listens on its port
    monkeypatch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{free_port()}/0")
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner.client().post("/api/v1/generate", BODY)
    assert answer.status_code == 200  # saved and charged: the broker is the workers' problem
    gen = Generation.objects.get(generation_id=answer.json()["generation_id"])
    assert gen.status == "pending"
    assert UsageEvent.objects.filter(generation=gen, kind="charge").count() == 1

    monkeypatch.setattr(Conf, "ORM", orm)  # the broker is back
    monkeypatch.setattr(Conf, "REDIS", redis)
    # It waited in its team's line; the next dispatcher round (here the reaper's) hands it over.
    assert tasks.reap_stale().startswith("requeued 0, released 1,")
    assert tasks.generation_run(gen.pk) == "completed"
    assert UsageEvent.objects.filter(generation=gen, kind="charge").count() == 1


def test_while_the_cache_is_down_the_api_serves_uncounted_and_logins_refuse(
    owner: Account, settings: Any
) -> None:
    """Redis restarting: API keys (unguessable) keep working without rate-limit headers;
    password logins, whose throttle guards guessable secrets, get a 503 rather than a free
    run at guessing."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    answer = owner.client().get("/api/v1/user")
    assert answer.status_code == 200 and "X-RateLimit-Remaining" not in answer
    login = Client(raise_request_exception=False).post(
        "/accounts/login/", {"username": owner.user.email, "password": "wrong"}
    )
    assert login.status_code == 503 and login["Retry-After"] == "5"


class _RendersThroughAnOutage:
    """The local engine, with the database gone for the first part of the render."""

    name = "local"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.local = registry.get_engine("local")

    def render(self, spec: Any, ctx: Any) -> Any:
        with self.monkeypatch.context() as outage:
            _database_goes_away(outage)
            for pct in (10, 20, 30):
                ctx.progress(pct)  # must not raise: the render goes on
                time.sleep(results.PROGRESS_INTERVAL_S)
        return self.local.render(spec, ctx)


@pytest.mark.django_db(transaction=True)
def test_a_render_carries_on_through_a_database_blip(
    owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = Generation.objects.get(
        generation_id=owner.client().post("/api/v1/generate", BODY).json()["generation_id"]
    )
    engine = _RendersThroughAnOutage(monkeypatch)
    monkeypatch.setattr(registry, "get_engine", lambda name: engine)
    assert tasks.generation_run(gen.pk) == "completed"
    gen.refresh_from_db()
    assert gen.status == "completed" and gen.attempts == 1
    kinds = sorted(UsageEvent.objects.filter(generation=gen).values_list("kind", flat=True))
    assert kinds == ["charge", "settle"]


def test_a_run_that_cannot_store_its_result_is_left_to_the_reaper_not_failed(
    owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = Generation.objects.get(
        generation_id=owner.client().post("/api/v1/generate", BODY).json()["generation_id"]
    )

    def unreachable(*args: Any, **kwargs: Any) -> str:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(run, "store_result", unreachable)
    with pytest.raises(OperationalError):
        tasks.generation_run(gen.pk)
    gen.refresh_from_db()
    assert gen.status == "in_progress" and not gen.error_code  # neither failed nor refunded
    assert not UsageEvent.objects.filter(generation=gen, kind="refund").exists()


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (no `except Exception`, no cleanup)."""


def test_a_worker_killed_while_settling_leaves_the_run_to_do_again_not_half_done(
    owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by tests/test_e2e_faults.py: a kill between marking the row completed and
    writing the ledger's settle row left a delivered video that was never settled."""
    gen = Generation.objects.get(  # queued: nothing runs the queue until the test does
        generation_id=owner.client().post("/api/v1/generate", BODY).json()["generation_id"]
    )
    monkeypatch.setattr(Conf, "SYNC", True)  # the reaper's re-run happens inline below
    real_settle = lifecycle.settle

    def killed_mid_settle(**kwargs: Any) -> None:
        raise _Killed

    monkeypatch.setattr(lifecycle, "settle", killed_mid_settle)
    with pytest.raises(_Killed):
        tasks.generation_run(gen.pk)
    gen.refresh_from_db()
    assert gen.status == "in_progress" and not gen.video  # completed and settled, or neither
    kinds = list(UsageEvent.objects.filter(generation=gen).values_list("kind", flat=True))
    assert kinds == ["charge"]

    monkeypatch.setattr(lifecycle, "settle", real_settle)
    Generation.objects.filter(pk=gen.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    tasks.reap_stale()  # sync mode: the run happens again right here
    gen.refresh_from_db()
    assert gen.status == "completed" and gen.attempts == 2
    kinds = sorted(UsageEvent.objects.filter(generation=gen).values_list("kind", flat=True))
    assert kinds == ["charge", "settle"]
