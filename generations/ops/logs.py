"""Structured logs: a request id (and, in tasks, a generation id) on every log line.

The ids live in context variables, so they follow the work wherever it runs: through the
async middleware into the view, into `sync_to_async` threads and into the API's DB threads
(generations/dbthreads.py copies the context). A filter on the console handler copies them
onto each record, and `LOG_FORMAT=json` writes one JSON object per line.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept when it is this shape (what proxies and tracing tools send);
# anything else is replaced, so a client cannot write arbitrary text into our logs.
_WELL_FORMED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

request_id: ContextVar[str | None] = ContextVar("videogen_request_id", default=None)
generation_id: ContextVar[str | None] = ContextVar("videogen_generation_id", default=None)
task_name: ContextVar[str | None] = ContextVar("videogen_task_name", default=None)


def request_id_for(incoming: str | None) -> str:
    """The client's (or proxy's) id when well-formed, else a fresh one."""
    if incoming and _WELL_FORMED.match(incoming):
        return incoming
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Puts the current request id, generation id and task name on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.generation_id = generation_id.get()
        record.task = task_name.get()
        return True


class PlainFormatter(logging.Formatter):
    """The human format, with `[request id]` or `[generation id]` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = [
            str(value)
            for value in (
                getattr(record, "request_id", None),
                getattr(record, "generation_id", None),
            )
            if value
        ]
        return f"[{' '.join(tags)}] {line}" if tags else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (+ generation_id,
    task and exception where there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key in ("generation_id", "task"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
