"""/metrics: Prometheus text format from the database and the broker, for whoever may see it."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_q.models import OrmQ
from prometheus_client.parser import text_string_to_metric_families

from generations import tasks
from generations.models import Generation
from tests.conftest import Account
from tests.ops_helpers import clone, submit_and_render

SAMPLE = re.compile(r'^([a-z_]+)(\{(?:[a-z_]+="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf)$')
LABEL = re.compile(r'[a-z_]+="(?:[^"\\]|\\.)*"')


def samples(text: str) -> dict[str, float]:
    """Each sample's value under `name{labels}`, its labels in name order: the order a series
    is written in means nothing to Prometheus (prometheus_client sorts them)."""
    found = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not exposition format: {line!r}"
        labels = sorted(LABEL.findall(match.group(2) or ""))
        key = match.group(1) + ("{" + ",".join(labels) + "}" if labels else "")
        found[key] = float(match.group(3))
    return found


def scrape(**headers: str) -> Any:
    return Client(REMOTE_ADDR="127.0.0.1").get("/metrics", headers=headers)


@pytest.mark.django_db
def test_it_counts_generations_by_status_and_engine_and_times_the_engines(
    owner: Account, sync_tasks: None, django_capture_on_commit_callbacks: Any
) -> None:
    done = submit_and_render(owner, django_capture_on_commit_callbacks)
    clone(done, took_s=45, engine="fal")
    clone(done, took_s=400, engine="fal")
    clone(done, status=Generation.Status.FAILED, engine="fal")
    clone(done, status=Generation.Status.IN_QUEUE, engine="", started_at=None, finished_at=None)

    response = scrape()
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    got = samples(response.content.decode())
    assert got['videogen_generations{engine="local",status="completed"}'] == 1
    assert got['videogen_generations{engine="fal",status="completed"}'] == 2
    assert got['videogen_generations{engine="fal",status="failed"}'] == 1
    assert got['videogen_generations{engine="",status="in_queue"}'] == 1

    fal = 'videogen_engine_duration_seconds_bucket{engine="fal",le="%s"}'
    assert got[fal % "30.0"] == 0
    assert got[fal % "60.0"] == 1
    assert got[fal % "300.0"] == 1
    assert got[fal % "600.0"] == 2
    assert got[fal % "+Inf"] == 2
    assert got['videogen_engine_duration_seconds_count{engine="fal"}'] == 2
    assert got['videogen_engine_duration_seconds_sum{engine="fal"}'] == pytest.approx(445)
    assert got['videogen_engine_duration_seconds_count{engine="local"}'] == 1


@pytest.mark.django_db
def test_it_reports_queue_depth_per_cluster_polls_due_and_the_heartbeat(
    owner: Account, sync_tasks: None, django_capture_on_commit_callbacks: Any
) -> None:
    now = timezone.now()
    OrmQ.objects.create(key="videogen", payload="x", lock=now - timedelta(seconds=1))
    OrmQ.objects.create(key="videogen", payload="y", lock=now - timedelta(seconds=1))
    OrmQ.objects.create(key="gpu", payload="z", lock=now - timedelta(seconds=1))
    OrmQ.objects.create(key="videogen", payload="taken", lock=now + timedelta(minutes=5))
    done = submit_and_render(owner, django_capture_on_commit_callbacks)
    clone(done, status=Generation.Status.IN_PROGRESS, engine="fal",
          next_poll_at=now - timedelta(seconds=1))  # fmt: skip
    tasks.reap_stale()  # also beats
    got = samples(scrape().content.decode())
    assert got['videogen_queue_depth{cluster="videogen"}'] == 2
    assert got['videogen_queue_depth{cluster="gpu"}'] == 1
    assert got["videogen_broker_up"] == 1
    assert got["videogen_remote_polls_due"] == 1
    assert 0 <= got['videogen_worker_heartbeat_age_seconds{cluster="videogen"}'] < 5
    assert got["videogen_generations_files_purged"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.9", "::1"])
def test_without_a_token_loopback_and_private_addresses_may_scrape(address: str) -> None:
    assert Client(REMOTE_ADDR=address).get("/metrics").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["203.0.113.7", "8.8.8.8", "2001:4860::1"])
def test_without_a_token_public_addresses_get_a_404(address: str) -> None:
    assert Client(REMOTE_ADDR=address).get("/metrics").status_code == 404


@pytest.mark.django_db
def test_without_a_token_a_proxied_request_is_refused_even_from_loopback() -> None:
    # A reverse proxy on the same host connects from 127.0.0.1 for everyone.
    assert scrape(**{"X-Forwarded-For": "203.0.113.7"}).status_code == 404
    assert scrape(Forwarded="for=203.0.113.7").status_code == 404


@pytest.mark.django_db
def test_with_a_token_only_the_bearer_of_it_may_scrape(settings: Any) -> None:
    settings.VIDEOGEN_METRICS_TOKEN = "s3cret-metrics-token"
    assert scrape().status_code == 404  # loopback alone is no longer enough
    assert scrape(Authorization="Bearer wrong").status_code == 401
    ok = Client(REMOTE_ADDR="203.0.113.7").get(
        "/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"}
    )
    assert ok.status_code == 200 and b"videogen_generations" in ok.content
    assert b"s3cret" not in ok.content


@pytest.mark.django_db
def test_a_broker_that_is_down_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    from generations.ops import metrics

    def down() -> dict[str, int]:
        raise ConnectionError("redis://:password@redis.internal")

    monkeypatch.setattr(metrics, "queue_depths", down)
    response = scrape()
    assert response.status_code == 200
    assert samples(response.content.decode())["videogen_broker_up"] == 0
    assert b"password" not in response.content


@pytest.mark.django_db
def test_every_family_keeps_its_name_type_and_help() -> None:
    # Read back with prometheus_client's own parser: what a scraper sees, family by family.
    text = scrape().content.decode()
    assert text.endswith("\n")
    families = {f.name: (f.type, f.documentation) for f in text_string_to_metric_families(text)}
    assert families == {
        "videogen_broker_up": ("gauge", "1 when the django-q2 broker answered."),
        "videogen_queue_depth": ("gauge", "Tasks waiting in each django-q2 queue."),
        "videogen_generations": ("gauge", "Generations by status and engine."),
        "videogen_engine_duration_seconds": (
            "histogram",
            "Processing time (pick-up to finish) of completed generations.",
        ),
        "videogen_remote_polls_due": ("gauge", "Remote jobs whose next poll is due."),
        "videogen_worker_heartbeat_age_seconds": (
            "gauge",
            "Seconds since each worker cluster last ran the reaper.",
        ),
        "videogen_generations_files_purged": (
            "gauge",
            "Generations whose files the retention policy deleted (records kept).",
        ),
        "videogen_provider_circuit_state": (
            "gauge",
            "1 for the state each hosted provider's circuit breaker is in (closed, open, "
            "half_open), 0 for the others.",
        ),
        "videogen_provider_circuit_failures": (
            "gauge",
            "Consecutive transient failures each hosted provider's circuit counts.",
        ),
        "videogen_provider_circuit_opened": (
            "counter",
            "Times each hosted provider's circuit breaker opened.",
        ),
        "videogen_metrics_scrape_seconds": ("gauge", "Time taken to compute these metrics."),
        "videogen_metrics_snapshot_age_seconds": (
            "gauge",
            "Age of the snapshot the finished generations' series come from (-1: computed by "
            "this scrape, no worker refreshes it).",
        ),
    }
