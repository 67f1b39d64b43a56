"""Run the ASGI web server (uvicorn) and, unless told otherwise, one django-q2 worker.

With local diffusers pipelines configured (VIDEOGEN_DIFFUSERS_MODELS) it also runs the GPU
cluster (`Q_CLUSTER_NAME=gpu manage.py qcluster`), which alone takes their jobs.
`make run` uses this. Ctrl-C stops them all; if one exits, the others are stopped too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

STOP_GRACE_S = 10


class Command(BaseCommand):
    help = "Serve the site with uvicorn and run a worker beside it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1"))
        )
        parser.add_argument("--no-worker", action="store_true", help="web server only")

    def handle(self, *args: Any, **options: Any) -> None:
        web = [
            sys.executable, "-m", "uvicorn", "videogen_site.asgi:application",
            "--host", options["host"], "--port", str(options["port"]),
            "--workers", str(options["web_workers"]),
            "--no-access-log", "--lifespan", "off",
            "--timeout-graceful-shutdown", str(STOP_GRACE_S),
        ]  # fmt: skip
        children = [subprocess.Popen(web)]
        if not options["no_worker"]:
            manage = str(settings.BASE_DIR / "manage.py")
            children.append(subprocess.Popen([sys.executable, manage, "qcluster"]))
            if settings.VIDEOGEN_DIFFUSERS_MODELS:
                # Diffusers jobs wait in the GPU cluster's queue: without this cluster they
                # would never run. Its workers load the pipelines; this process never does.
                gpu_env = {**os.environ, "Q_CLUSTER_NAME": settings.VIDEOGEN_GPU_CLUSTER}
                children.append(subprocess.Popen([sys.executable, manage, "qcluster"], env=gpu_env))
                self.stdout.write(
                    f"GPU cluster: {settings.VIDEOGEN_GPU_WORKERS} worker(s) for "
                    f"{', '.join(sorted({k for k, _ in settings.VIDEOGEN_DIFFUSERS_MODELS}))}"
                )
        self.stdout.write(f"videogen on http://{options['host']}:{options['port']}/ (Ctrl-C stops)")

        def forward(signum: int, _frame: object) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        interrupted = False
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            interrupted = True  # the terminal sent SIGINT to the children as well
        finally:
            self._stop(children)
        if interrupted:
            # Ctrl-C is how one stops it: a clean exit, whatever code the children chose for
            # SIGINT (django-q's cluster exits 1), so `make run` ends without "Error 1".
            self.stdout.write("videogen stopped.")
            return
        codes = [child.returncode for child in children]
        if any(code not in (0, -signal.SIGINT, -signal.SIGTERM, None) for code in codes):
            sys.exit(1)

    def _stop(self, children: list[subprocess.Popen[bytes]]) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
