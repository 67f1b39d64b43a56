"""/healthz: database, broker, storage and the worker heartbeat, as load balancers see it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone

from generations import tasks
from generations.models import WorkerHeartbeat
from generations.ops import health


@pytest.fixture(autouse=True)
def _fresh_storage_probe() -> Iterator[None]:
    health.forget_storage_probe()
    yield
    health.forget_storage_probe()


def get(**headers: str) -> Any:
    return Client().get("/healthz", headers=headers)


@pytest.mark.django_db
def test_it_answers_200_but_degraded_before_any_worker_has_run() -> None:
    response = get()
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["ok"] is True
    checks = body["checks"]
    assert set(checks) == {"database", "broker", "storage", "worker", "providers"}
    assert checks["providers"]["ok"] is True and checks["providers"]["critical"] is False
    assert checks["providers"]["circuits"] == {}  # no provider has failed yet
    for name in ("database", "broker", "storage"):
        assert checks[name]["ok"] is True and checks[name]["critical"] is True
        assert isinstance(checks[name]["latency_ms"], float)
    assert checks["broker"]["kind"] == "orm"
    assert checks["worker"] == {
        "ok": False, "critical": False, "latency_ms": checks["worker"]["latency_ms"],
        "error": "no heartbeat yet (is a worker running?)", "cluster": "videogen",
        "max_age_s": 180, "age_s": None,
    }  # fmt: skip
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_it_is_ok_once_the_reaper_has_beaten() -> None:
    tasks.reap_stale()
    body = get().json()
    assert body["status"] == "ok"
    assert body["checks"]["worker"]["ok"] is True
    assert 0 <= body["checks"]["worker"]["age_s"] < 5


@pytest.mark.django_db
def test_a_stale_heartbeat_is_degraded_not_unavailable(settings: Any) -> None:
    settings.VIDEOGEN_HEARTBEAT_MAX_AGE = 60
    WorkerHeartbeat.objects.create(cluster="videogen", beat_at=timezone.now() - timedelta(hours=1))
    response = get()
    assert response.status_code == 200
    worker = response.json()["checks"]["worker"]
    assert response.json()["status"] == "degraded"
    assert worker["ok"] is False and worker["error"].startswith("last heartbeat 3600 s ago")


@pytest.mark.django_db
def test_with_local_gpu_models_the_gpu_cluster_has_a_heartbeat_of_its_own(settings: Any) -> None:
    settings.VIDEOGEN_DIFFUSERS_MODELS = [("wan-25", "/models/wan")]
    tasks.reap_stale()  # the main cluster beats; the GPU cluster has not yet
    body = get().json()
    assert body["status"] == "degraded"
    gpu = body["checks"]["gpu_worker"]
    assert gpu["cluster"] == "gpu" and gpu["ok"] is False and gpu["critical"] is False
    assert health.beat_once("gpu")  # what each GPU worker process's thread does
    body = get().json()
    assert body["status"] == "ok" and body["checks"]["gpu_worker"]["age_s"] < 5


@pytest.mark.django_db
def test_two_reapers_share_one_heartbeat_row() -> None:
    health.record_heartbeat()
    health.record_heartbeat()
    assert WorkerHeartbeat.objects.count() == 1


@pytest.mark.django_db
def test_the_storage_probe_writes_reads_and_deletes_a_real_object(settings: Any) -> None:
    body = get().json()
    assert body["checks"]["storage"]["backend"] == "FileSystemStorage"
    # Nothing is left behind.
    assert default_storage.listdir(health.STORAGE_PROBE_DIR)[1] == []


@pytest.mark.django_db
def test_an_unwritable_storage_answers_503_without_details(
    settings: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError("/secret/path/on/the/server is not writable")

    monkeypatch.setattr(default_storage, "save", broken)
    response = get()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy" and body["ok"] is False
    assert body["checks"]["storage"]["error"] == "PermissionError (see the server log)"
    assert "secret" not in response.content.decode()


@pytest.mark.django_db
def test_the_storage_result_is_reused_between_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = health._storage_round_trip

    def counted() -> dict[str, Any]:
        calls.append(1)
        return real()

    monkeypatch.setattr(health, "_storage_round_trip", counted)
    get()
    second = get().json()["checks"]["storage"]
    assert len(calls) == 1 and "checked_s_ago" in second


@pytest.mark.django_db
def test_a_broken_database_answers_503(monkeypatch: pytest.MonkeyPatch) -> None:
    def down() -> None:
        raise RuntimeError("could not connect to server at db.internal:5432 password=hunter2")

    monkeypatch.setattr(health, "check_database", down)
    response = get()
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["error"] == "RuntimeError (see the server log)"
    assert body["checks"]["worker"]["error"] == "unknown: the database is unreachable"
    assert "hunter2" not in response.content.decode()


@pytest.mark.django_db
def test_a_redis_broker_that_does_not_answer_is_503_within_the_timeout(settings: Any) -> None:
    import socket
    import time

    # A listener that accepts and never answers: the PING must time out, not hang.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    settings.REDIS_URL = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": settings.REDIS_URL}
    health._redis_client.cache_clear()
    try:
        started = time.monotonic()
        response = get()
        assert time.monotonic() - started < health.BROKER_TIMEOUT_S + 2
    finally:
        health._redis_client.cache_clear()
        server.close()
    assert response.status_code == 503
    broker = response.json()["checks"]["broker"]
    assert broker["ok"] is False and broker["error"] == "TimeoutError (see the server log)"
