"""PostgreSQL and Redis servers of a test's own, on loopback, that the test may stop, kill and
start again (tests/test_e2e_faults.py). Needs Debian's postgresql and redis-server packages
(`.ci/run` installs them) and root, to run PostgreSQL as the `postgres` user."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers import free_port


def missing() -> str | None:
    """Why these servers cannot be run here; None when they can."""
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return "PostgreSQL is not installed (.ci/run installs Debian's postgresql)"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (.ci/run installs it)"
    if os.geteuid() != 0:
        return "PostgreSQL is run as the postgres user, which needs root"
    return None


class Postgres:
    """A throwaway cluster: fsync off, trust auth, one database named `videogen`."""

    def __init__(self) -> None:
        self.bin = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
        # Not under pytest's tmp_path: its folders are private to root.
        self.root = Path(tempfile.mkdtemp(prefix="videogen-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/videogen"
        subprocess.run(["install", "-d", "-o", "postgres", "-m", "700", str(self.data)], check=True)
        self._as_postgres("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                          "-E", "UTF8")  # fmt: skip
        self.start()
        self._as_postgres("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                          "videogen")  # fmt: skip

    def create_database(self, name: str) -> str:
        """Another database on this server; its URL."""
        self._as_postgres("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                          name)  # fmt: skip
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _as_postgres(self, tool: str, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / tool), *args],
                       check=True, capture_output=True, timeout=120)  # fmt: skip

    def start(self) -> None:
        options = (f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c max_connections=200")  # fmt: skip
        self._as_postgres("pg_ctl", "-D", str(self.data), "-l", str(self.data / "log"), "-w",
                          "-o", options, "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`fast`: clients are disconnected and open transactions rolled back, as when an
        operator restarts the server; `immediate`: as a crash."""
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class Redis:
    """redis-server without persistence (the default of many containers): a restart loses
    every list in it, the broker's queue included."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no", "--dir", str(root)]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def client(self) -> object:
        import redis

        return redis.Redis(port=self.port, socket_timeout=2)

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
