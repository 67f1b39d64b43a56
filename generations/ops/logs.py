"""Structured logs: a request id (and, in tasks, a generation id) on every log line.

The ids live in context variables, so they follow the work wherever it runs: through the
async middleware into the view, into `sync_to_async` threads and into the API's DB threads
(generations/dbthreads.py copies the context). A filter on the console handler copies them
onto each record, and `LOG_FORMAT=json` writes one JSON object per line.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import pythonjsonlogger.core
import pythonjsonlogger.json

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


# The keys every JSON line starts with, in this order: LogRecord attributes, renamed.
_JSON_FIELDS = ("asctime", "levelname", "name", "message", "request_id", "generation_id", "task")
_JSON_RENAMES = {
    "asctime": "time",
    "levelname": "level",
    "name": "logger",
    "exc_info": "exception",
    "stack_info": "stack",
}
# Written only when set (the context filter puts them on every record, mostly as None).
_JSON_OPTIONAL = ("generation_id", "task")


class JsonFormatter(pythonjsonlogger.json.JsonFormatter):
    """One JSON object per line: time, level, logger, message, request_id (+ generation_id,
    task, exception and stack where there is one), then the record's `extra=` fields.

    Why the library: python-json-logger already turns a record's `extra=` fields (and a dict
    logged as the message) into JSON keys, with an encoder for dates, enums, dataclasses and
    exceptions; ours dropped them. This subclass only fixes our key names and their order,
    and keeps the dotted path settings.LOGGING names."""

    def __init__(self) -> None:
        super().__init__(
            list(_JSON_FIELDS),
            rename_fields=_JSON_RENAMES,
            # An `extra=` key never replaces one of ours (e.g. extra={"level": ...}). Django
            # puts its HttpRequest on django.request and django.server records: its repr
            # carries the query string (an invite token on /accounts/signup/?invite=...),
            # which our lines never held; its status_code still comes through. uvicorn's
            # `color_message` is the message again with terminal colour codes.
            reserved_attrs=[
                *pythonjsonlogger.core.RESERVED_ATTRS,
                *_JSON_RENAMES.values(),
                "request",
                "color_message",
            ],
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # ISO 8601 in UTC with milliseconds, as ever (logging's own is local time, no zone).
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        for key in _JSON_OPTIONAL:
            if not log_data.get(key):
                log_data.pop(key, None)
        return log_data
