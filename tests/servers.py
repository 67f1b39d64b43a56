"""Real processes for the end-to-end tests: the production server command and workers,
started on loopback, waited for, and stopped (their whole process group) afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    return done.stdout


def web_command(port: int, *extra: str) -> list[str]:
    """The production web server (uvicorn, as the README deploys it) on a loopback port."""
    return [sys.executable, "-m", "uvicorn", "videogen_site.asgi:application", "--host",
            "127.0.0.1", "--port", str(port), "--no-access-log", *extra]  # fmt: skip


def worker_command() -> list[str]:
    """One main worker cluster."""
    return [sys.executable, str(ROOT / "manage.py"), "qcluster"]


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process in a session of its own (so that stopping it stops its children too),
    appending its output to `log`."""
    with log.open("a") as out:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until `base`/healthz answers 200; the log says why if the process died or hung."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"{base} did not start:\n" + log.read_text()[-5000:])
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, SIGKILL if it is still there 20 s later."""
    with_group = proc.poll() is None
    if with_group:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[str]:
    """`manage.py serve` (web server and worker, as `make run`) on a free port: its base URL."""
    port = free_port()
    server = start([sys.executable, str(ROOT / "manage.py"), "serve", "--port", str(port)],
                   env, log)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, server, log)
        yield base
    finally:
        stop(server)


@contextmanager
def provider_site(
    data_dir: Path, email: str, provider_env: dict[str, str], *setup: str
) -> Iterator[dict[str, str]]:
    """A served site whose hosted providers are the fakes `provider_env` points at: migrated,
    with one API key (and `setup`, Python run in `manage.py shell` first). Polls are quick."""
    env = {
        **os.environ,
        "VIDEOGEN_DATA_DIR": str(data_dir),
        "VIDEOGEN_WORKERS": "2",
        "DJANGO_SETTINGS_MODULE": "videogen_site.settings",
        "VIDEOGEN_POLL_FIRST_S": "0.2",
        "VIDEOGEN_POLL_MAX_S": "1",
        **provider_env,
    }
    env.pop("VIDEOGEN_Q_SYNC", None)
    manage(env, "migrate", "--noinput", "-v", "0")
    raw_key = manage(env, "create_api_key", "--email", email, "--create-user")
    for code in setup:
        manage(env, "shell", "-c", code)
    log = data_dir / "server.log"
    with serving(env, log) as base:
        yield {"base": base, "key": raw_key.strip().splitlines()[-1], "log": str(log)}
