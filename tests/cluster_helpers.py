"""A cluster of real processes on PostgreSQL and Redis servers of a test module's own
(tests/dbservers.py): uvicorn web processes and django-q2 worker clusters, that a test may
SIGKILL and start again; and what the tests read straight from the database (statuses,
the ledger). Used by tests/test_e2e_faults.py and tests/test_e2e_fairshare.py."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import dbservers
from tests.servers import free_port, manage, start, wait_ready, web_command, worker_command

# Modules that start PostgreSQL and Redis of their own: CI's second pass runs them.
OWN_SERVERS = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="runs in CI's PostgreSQL + Redis pass (with servers of its own)",
    ),
    pytest.mark.skipif(dbservers.missing() is not None, reason=str(dbservers.missing())),
]
DONE_WITHIN_S = 420  # the reaper runs every minute: a few of its rounds


@dataclass
class Row:
    generation_id: str
    status: str
    attempts: int
    charges: int
    settles: int
    refunds: int


class Cluster:
    def __init__(self, env: dict[str, str], log: Path, pg: dbservers.Postgres,
                 redis: dbservers.Redis, *, webs: int = 2, workers: int = 2) -> None:  # fmt: skip
        self.env, self.log, self.pg, self.redis = env, log, pg, redis
        self.web_ports = [free_port() for _ in range(webs)]
        self.bases = [f"http://127.0.0.1:{port}" for port in self.web_ports]
        self.web: list[subprocess.Popen[bytes] | None] = [None] * webs
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * workers

    # --- processes ------------------------------------------------------------------------

    def start_web(self, n: int) -> None:
        proc = self.web[n] = start(web_command(self.web_ports[n]), self.env, self.log)
        wait_ready(self.bases[n], proc, self.log)

    def start_worker(self, n: int) -> None:
        self.workers[n] = start(worker_command(), self.env, self.log)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, no goodbyes
            proc.wait()

    def kill_web(self, n: int) -> None:
        self._kill(self.web[n])

    def kill_worker(self, n: int) -> None:
        self._kill(self.workers[n])

    def close(self) -> None:
        for proc in self.web + self.workers:
            self._kill(proc)

    # --- what the tests look at --------------------------------------------------------------

    def account(self, email: str) -> str:
        out = manage(self.env, "create_api_key", "--email", email, "--create-user",
                     "--monthly-limit", "100000")  # fmt: skip
        return out.strip().splitlines()[-1]

    def sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.pg.url, connect_timeout=5) as conn:
            return list(conn.execute(query, params).fetchall())

    def rows(self, email: str) -> list[Row]:
        """Every generation of this user, with its ledger, straight from the database."""
        return [Row(*r) for r in self.sql(
            "SELECT g.generation_id, g.status, g.attempts,"
            " (SELECT count(*) FROM generations_usageevent u"
            "   WHERE u.generation_id = g.id AND u.kind = 'charge'),"
            " (SELECT count(*) FROM generations_usageevent u"
            "   WHERE u.generation_id = g.id AND u.kind = 'settle'),"
            " (SELECT count(*) FROM generations_usageevent u"
            "   WHERE u.generation_id = g.id AND u.kind = 'refund')"
            " FROM generations_generation g JOIN generations_user us ON us.id = g.user_id"
            " WHERE us.email = %s", email)]  # fmt: skip

    def wait_completed(self, email: str, expected: int) -> list[Row]:
        deadline = time.monotonic() + DONE_WITHIN_S
        while True:
            rows = self.rows(email)
            bad = [r for r in rows if r.status in ("failed", "canceled")]
            assert not bad, f"{bad}\n{self.tail()}"
            if len(rows) == expected and all(r.status == "completed" for r in rows):
                return rows
            statuses = sorted(r.status for r in rows)
            assert time.monotonic() < deadline, f"{len(rows)} rows: {statuses}\n{self.tail()}"
            time.sleep(1)

    def count(self, status: str) -> int:
        return int(self.sql("SELECT count(*) FROM generations_generation WHERE status = %s",
                            status)[0][0])  # fmt: skip

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def assert_each_charged_once(rows: list[Row]) -> None:
    """One charge and one settle per generation, no refund."""
    ledger = {(r.charges, r.settles, r.refunds) for r in rows}
    assert ledger == {(1, 1, 0)}, [
        r for r in rows if (r.charges, r.settles, r.refunds) != (1, 1, 0)
    ]


def cluster_env(data_dir: Path, pg: dbservers.Postgres, redis: dbservers.Redis,
                **extra: str) -> dict[str, str]:  # fmt: skip
    """The processes' environment: these servers, this data folder, a real (not sync)
    broker, local storage; `extra` on top."""
    env = {
        **os.environ,
        "DATABASE_URL": pg.url,
        "REDIS_URL": redis.url,
        "VIDEOGEN_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "videogen_site.settings",
        **extra,
    }
    env.pop("VIDEOGEN_Q_SYNC", None)
    env.pop("VIDEOGEN_STORAGE_URL", None)
    return env
