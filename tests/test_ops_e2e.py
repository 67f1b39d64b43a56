"""Operations across real processes: the web reports the worker's heartbeat (written by the
reaper in the worker cluster), metrics and JSON logs with request ids from a running server."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.servers import manage, serving

pytestmark = pytest.mark.e2e
# The worker's scheduler looks at schedules about every 30 s; the reaper is due at once.
HEARTBEAT_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("ops-data")
    env = {
        **os.environ,
        "VIDEOGEN_DATA_DIR": str(data_dir),
        "VIDEOGEN_WORKERS": "1",
        "LOG_FORMAT": "json",
        # Its INFO lines (quiet by default) show that the worker's logging is JSON too.
        "VIDEOGEN_Q_LOG_LEVEL": "INFO",
        "DJANGO_SETTINGS_MODULE": "videogen_site.settings",
    }
    env.pop("VIDEOGEN_Q_SYNC", None)
    manage(env, "migrate", "--noinput", "-v", "0")
    raw_key = manage(env, "create_api_key", "--email", "ops@example.com", "--create-user")
    log_path = data_dir / "server.log"
    with serving(env, log_path) as base:
        yield {"base": base, "key": raw_key.strip().splitlines()[-1], "log": str(log_path)}


def json_log(site: dict[str, str]) -> list[dict[str, object]]:
    lines = Path(site["log"]).read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_healthz_turns_ok_when_the_worker_has_beaten(site: dict[str, str]) -> None:
    deadline = time.monotonic() + HEARTBEAT_TIMEOUT_S
    while True:
        response = requests.get(site["base"] + "/healthz", timeout=10)
        assert response.status_code == 200
        body = response.json()
        if body["status"] == "ok":
            break
        assert body["status"] == "degraded", body
        assert time.monotonic() < deadline, (
            f"no heartbeat: {body}\n" + Path(site["log"]).read_text()
        )
        time.sleep(1)
    checks = body["checks"]
    assert all(checks[name]["ok"] for name in ("database", "broker", "storage", "worker"))
    assert checks["worker"]["age_s"] < 180


def test_metrics_are_served_to_loopback(site: dict[str, str]) -> None:
    response = requests.get(site["base"] + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'videogen_queue_depth{cluster="videogen"}' in response.text
    assert 'videogen_queue_depth{cluster="gpu"}' in response.text


def test_request_ids_come_back_and_are_in_the_json_log(site: dict[str, str]) -> None:
    api = requests.get(
        site["base"] + "/api/v1/models",
        headers={"Authorization": f"Bearer {site['key']}", "X-Request-ID": "e2e-api-1"},
        timeout=10,
    )
    assert api.headers["X-Request-ID"] == "e2e-api-1"
    page = requests.get(
        site["base"] + "/no-such-page", headers={"X-Request-ID": "e2e-page-404"}, timeout=10
    )
    assert page.status_code == 404 and page.headers["X-Request-ID"] == "e2e-page-404"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [e for e in json_log(site) if e.get("request_id") == "e2e-page-404"]
        if found:
            break
        time.sleep(0.2)
    assert found and found[0]["logger"] == "django.request"
    assert {"time", "level", "logger", "message", "request_id"} <= set(found[0])
    # The worker's and the server's own lines are JSON as well.
    loggers = {e["logger"] for e in json_log(site)}
    assert {"django-q", "uvicorn.error"} <= loggers
