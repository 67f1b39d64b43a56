"""The log context of a django-q2 task: its name and, for a generation's run or poll, the
generation id, on every line it logs (ops/logs.py puts them on the records). Bound by the
pre_execute / post_execute_in_worker signals (apps.py). Kept apart from logs.py, which the
logging configuration loads before the models exist."""

from __future__ import annotations

from typing import Any

from generations.models import Generation
from generations.ops.logs import generation_id, task_name

# Tasks whose first argument is a Generation's primary key.
GENERATION_TASKS = frozenset({"generation_run", "generation_poll"})


def task_started(sender: object, func: object, task: dict[str, Any], **kwargs: Any) -> None:
    name = getattr(func, "__name__", None) or str(func).rsplit(".", 1)[-1]
    task_name.set(name)
    generation_id.set(None)
    args = task.get("args") or ()
    if name in GENERATION_TASKS and args:
        try:
            found = Generation.objects.filter(pk=args[0]).values_list("generation_id", flat=True)
            generation_id.set(found.first())
        except Exception:  # a log label must never stop the task
            generation_id.set(None)


def task_finished(sender: object, **kwargs: Any) -> None:
    task_name.set(None)
    generation_id.set(None)
