"""A writer lock for SQLite shared by every thread and process on this machine.

SQLite allows one writer at a time. A writer that finds the database locked is put to sleep
by SQLite's busy handler in growing steps (1, 2, 5 ... 100 ms), so under a burst of
submissions a waiter often sleeps long after the lock was freed: the p99 of a submit was
over 500 ms at 16 concurrent clients. Queueing the hot write transaction on a file lock
instead wakes the next writer the moment the previous one commits. PostgreSQL needs none of
this: there the lock is a no-op."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import IO

from django.db import connections

_threads = threading.Lock()


@cache
def _lock_file(path: str) -> IO[bytes]:
    return open(path, "ab")  # noqa: SIM115  (held for the life of the process)


@contextmanager
def sqlite_write_lock(using: str = "default") -> Iterator[None]:
    if connections[using].vendor != "sqlite":
        yield
        return
    name = str(connections[using].settings_dict["NAME"])
    # flock() excludes other processes (per open file); the thread lock, other threads.
    with _threads:
        if "mode=memory" in name or name == ":memory:":
            yield  # an in-memory database (tests) lives in this process only
            return
        handle = _lock_file(name + ".write-lock")
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
