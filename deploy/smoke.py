"""`make deploy-smoke`: the image, run as production runs it, makes one video.

Starts a throwaway PostgreSQL and Redis on loopback (tests/dbservers.py, as the fault tests
and the load bench do), then the image's `migrate` job, a `web` and a `worker` container on
the host's network with the embedded `local` engine, and a data folder they share. Makes an
API key with `manage create_api_key`, waits for /healthz, runs the image's own health check
(`podman healthcheck run`), submits one generation (`POST /api/v1/generate`), polls
`GET /api/v1/status/<id>` until it completes, downloads `GET /api/v1/video/<id>` and checks
it is an MP4 (an `ftyp` box first). Removes everything it made, whatever happened. Needs
root (PostgreSQL runs as `postgres`, podman rootful), podman, and the image (`make image`).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import dbservers  # noqa: E402 - the repository root is on the path only now
from tests.servers import free_port  # noqa: E402

PODMAN = ["podman", "--runtime", os.environ.get("PODMAN_RUNTIME", "runc")]
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]
# As compose.yaml and the chart run it: a read-only root (podman mounts a tmpfs on /tmp),
# no capabilities, no privilege escalation.
HARDENED = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
IMAGE_UID = 10001  # the image's `videogen` user (deploy/Containerfile)
READY_TIMEOUT_S = 60
RENDER_TIMEOUT_S = 300
BODY = {
    "model": "local",
    "prompt": "A calm ocean at sunset",
    "duration": 2,
    "resolution": "480p",
    "aspect_ratio": "16:9",
    "seed": 42,
}


def log(message: str) -> None:
    print(f"deploy-smoke: {message}", flush=True)


def http(
    method: str, url: str, key: str = "", body: dict[str, Any] | None = None
) -> tuple[int, bytes]:
    headers = {"Host": "localhost"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Smoke:
    def __init__(self, image: str) -> None:
        self.image = image
        self.tag = f"videogen-smoke-{os.getpid()}"
        self.work = Path(tempfile.mkdtemp(prefix="videogen-smoke-"))
        self.data = self.work / "data"
        self.data.mkdir()
        os.chown(self.data, IMAGE_UID, IMAGE_UID)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.containers: list[str] = []
        self.secret = secrets.token_urlsafe(50)
        self.pg: dbservers.Postgres | None = None
        self.redis: dbservers.Redis | None = None

    def env(self) -> list[str]:
        assert self.pg is not None and self.redis is not None
        values = {
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis.url,
            "SECRET_KEY": self.secret,
            "ALLOWED_HOSTS": "localhost,127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "1",
            "VIDEOGEN_WORKERS": "1",
        }
        return [arg for name, value in values.items() for arg in ("-e", f"{name}={value}")]

    def podman_run(self, *args: str, detach: str = "") -> str:
        name = [f"--name={self.tag}-{detach}"] if detach else ["--rm"]
        command = [
            *PODMAN, "run", *(["-d"] if detach else []), *name, *ULIMITS, *HARDENED,
            "--network", "host", "-v", f"{self.data}:/data:Z", *self.env(), self.image, *args,
        ]  # fmt: skip
        if detach:
            self.containers.append(f"{self.tag}-{detach}")
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        return done.stdout

    def run(self) -> None:
        started = time.monotonic()
        self.pg = dbservers.Postgres()
        self.redis = dbservers.Redis(self.work)
        log(f"PostgreSQL on {self.pg.port}, Redis on {self.redis.port}")
        self.podman_run("migrate")
        log("migrate done")
        key = self.podman_run(
            "manage", "create_api_key", "--email", "smoke@example.com", "--create-user"
        ).split()[-1]
        self.podman_run("web", detach="web")
        self.podman_run("worker", detach="worker")
        self.wait_healthy()
        subprocess.run([*PODMAN, "healthcheck", "run", f"{self.tag}-web"], check=True)
        log("the image's health check passes")
        status, answer = http("POST", f"{self.base}/api/v1/generate", key, BODY)
        if status != 200:
            raise SystemExit(f"generate answered {status}: {answer[:500]!r}")
        gen_id = json.loads(answer)["generation_id"]
        log(f"submitted {gen_id}")
        self.wait_completed(gen_id, key)
        status, video = http("GET", f"{self.base}/api/v1/video/{gen_id}")
        if status != 200 or video[4:8] != b"ftyp":
            raise SystemExit(f"video answered {status}, first bytes {video[:12]!r}: not an MP4")
        log(f"video: {len(video)} bytes, an MP4 (ftyp); {time.monotonic() - started:.1f} s in all")

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                status, answer = http("GET", f"{self.base}/healthz")
                if status == 200:
                    log(f"/healthz: {json.loads(answer)['status']}")
                    return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"/healthz not 200 after {READY_TIMEOUT_S} s")
            time.sleep(0.5)

    def wait_completed(self, gen_id: str, key: str) -> None:
        deadline = time.monotonic() + RENDER_TIMEOUT_S
        while time.monotonic() < deadline:
            status, answer = http("GET", f"{self.base}/api/v1/status/{gen_id}", key)
            state = json.loads(answer).get("status") if status == 200 else None
            if state == "completed":
                log("completed")
                return
            if state in ("failed", "canceled"):
                raise SystemExit(f"{gen_id} {state}: {answer[:500]!r}")
            time.sleep(1)
        raise SystemExit(f"{gen_id} not completed after {RENDER_TIMEOUT_S} s")

    def dump_logs(self) -> None:
        for name in self.containers:
            done = subprocess.run([*PODMAN, "logs", "--tail", "40", name],
                                  capture_output=True, text=True)  # fmt: skip
            print(f"--- {name}\n{done.stdout}{done.stderr}", file=sys.stderr)

    def close(self) -> None:
        for name in self.containers:
            subprocess.run([*PODMAN, "rm", "-f", "-t", "5", name], capture_output=True)
        if self.redis is not None:
            self.redis.kill()
        if self.pg is not None:
            self.pg.close()
        shutil.rmtree(self.work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="one video through the image")
    parser.add_argument("--image", default=os.environ.get("IMAGE", "localhost/videogen:latest"))
    args = parser.parse_args()
    why = dbservers.missing()
    if why:
        raise SystemExit(f"deploy-smoke: {why}")
    if shutil.which("podman") is None:
        raise SystemExit("deploy-smoke: podman is not installed (make image installs it)")
    smoke = Smoke(args.image)
    try:
        smoke.run()
    except BaseException:
        smoke.dump_logs()
        raise
    finally:
        smoke.close()


if __name__ == "__main__":
    main()
