"""Threads that repeat a small database job in every worker process (the poll dispatcher,
the GPU cluster's heartbeat): started once per process, surviving any failed round.

A round that finds the database unreachable says so once, in one line, and the next round
tries again on a fresh connection; any other failure is logged with its traceback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections, connection

from generations.errors import DATABASE_DOWN

log = logging.getLogger(__name__)

_started: set[str] = set()
_lock = threading.Lock()
_database_down: set[str] = set()


def run_round(name: str, step: Callable[[], object]) -> bool:
    """One round of `step` with Django's connection hygiene; False if it failed."""
    try:
        close_old_connections()
        step()
    except DATABASE_DOWN as exc:
        if name not in _database_down:
            log.warning("%s: the database is unreachable (%s)", name, exc)
            _database_down.add(name)
        connection.close()  # reconnect next round
        return False
    except Exception:
        log.exception("%s: round failed", name)
        connection.close()
        return False
    _database_down.discard(name)
    return True


def start_once(name: str, step: Callable[[], object], interval_s: float) -> None:
    """A daemon thread running `step` every `interval_s`; a second call is a no-op."""
    with _lock:
        if name in _started:
            return
        _started.add(name)

    def loop() -> None:
        while True:
            run_round(name, step)
            threading.Event().wait(interval_s)

    threading.Thread(target=loop, name=f"videogen-{name.replace(' ', '-')}", daemon=True).start()
