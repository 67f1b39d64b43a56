"""Run ORM code for async views on a few long-lived threads that keep their DB connections.

Under ASGI, Django runs each request's sync code on a fresh thread, so every request opens a
new database connection (for SQLite that also means re-reading the schema: about 1 ms, more
than the queries of a status call). API handlers instead run here, on a fixed pool whose
threads keep their connection between requests, with the same hygiene Django applies per
request: a connection with errors, a broken one, or one older than its age limit is closed
and reopened."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")

# How long a pool thread keeps one connection before it is recycled.
CONNECTION_MAX_AGE_S = 300


@cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=settings.VIDEOGEN_API_DB_THREADS, thread_name_prefix="videogen-db"
    )


def _with_connection_hygiene(func: Callable[[], R]) -> R:
    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()
    try:
        return func()
    finally:
        for conn in connections.all(initialized_only=True):
            if conn.connection is None:
                continue
            broken = conn.errors_occurred and not conn.is_usable()
            if broken or conn.in_atomic_block:
                conn.close()
            else:
                # CONN_MAX_AGE=0 (right for per-request threads) would close it next time.
                conn.close_at = time.monotonic() + CONNECTION_MAX_AGE_S
                conn.errors_occurred = False


async def run_in_db_thread(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    if settings.VIDEOGEN_API_DB_THREADS <= 0:
        # Tests: stay on the caller's thread and connection (and its open test transaction).
        return await sync_to_async(func, thread_sensitive=True)(*args, **kwargs)
    call = partial(func, *args, **kwargs)
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), context.run, _with_connection_hygiene, call)
