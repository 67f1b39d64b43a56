"""A worker killed mid-render: the job is found, re-run and completed, charged once.

Real processes: the ASGI server, a django-q2 cluster that is SIGKILLed while it renders, and
a fresh cluster; the reaper (normally scheduled every minute) is run by hand to save time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.servers import ROOT, free_port, manage

pytestmark = pytest.mark.e2e


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_job_whose_worker_was_killed_is_rerun_to_completion(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "VIDEOGEN_DATA_DIR": str(tmp_path),
        "VIDEOGEN_WORKERS": "1",
        "VIDEOGEN_STALE_AFTER": "2",
        "DJANGO_SETTINGS_MODULE": "videogen_site.settings",
    }
    env.pop("VIDEOGEN_Q_SYNC", None)
    manage(env, "migrate", "--noinput", "-v", "0")
    key = manage(env, "create_api_key", "--email", "k@example.com", "--create-user")
    headers = {"Authorization": f"Bearer {key.strip().splitlines()[-1]}"}
    log = (tmp_path / "log").open("w")
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "videogen_site.asgi:application",
            "--port",
            str(port),
            "--lifespan",
            "off",
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    worker = start_worker(env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(base), 60, "the web server")
        # Long enough (720p, 12 s) that the kill lands mid-render.
        job = requests.post(
            f"{base}/api/v1/generate",
            headers=headers,
            timeout=30,
            json={
                "model": "local",
                "prompt": "storm clouds",
                "duration": 12,
                "resolution": "720p",
            },
        ).json()
        status_url = f"{base}/api/v1/status/{job['generation_id']}"

        def progress() -> int:
            body = requests.get(status_url, headers=headers, timeout=10).json()
            return body["progress"] if body["status"] == "in_progress" else 0

        wait_for(lambda: progress() >= 5, 120, "the render to start")
        os.killpg(worker.pid, signal.SIGKILL)  # the whole cluster, mid-frame
        worker.wait()
        assert (
            requests.get(status_url, headers=headers, timeout=10).json()["status"] == "in_progress"
        )

        time.sleep(3)  # past VIDEOGEN_STALE_AFTER: the heartbeat is now stale
        manage(env, "shell", "-c", "from generations import tasks; print(tasks.reap_stale())")
        worker = start_worker(env, log)
        done = wait_for(
            lambda: (
                (b := requests.get(status_url, headers=headers, timeout=10).json())["status"]
                in ("completed", "failed")
                and b
            ),
            240,
            "the re-run",
        )
        assert done["status"] == "completed", done
        user = requests.get(f"{base}/api/v1/user", headers=headers, timeout=10).json()
        assert user["usage"]["current_month_usage"] == 1  # charged once, despite two runs
        attempts = manage(
            env,
            "shell",
            "-c",
            "from generations.models import Generation as G; "
            f"print(G.objects.get(generation_id='{job['generation_id']}').attempts)",
        )
        assert attempts.strip().splitlines()[-1] == "2"
    finally:
        for proc in (web, worker):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL) if proc is worker else proc.terminate()
                proc.wait(timeout=20)
        log.close()


def start_worker(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    """A django-q2 cluster in its own process group (so all its processes can be killed)."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _up(base: str) -> bool:
    try:
        return requests.get(base + "/healthz", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False
