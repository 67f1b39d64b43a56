"""Exports (CONTRACT 6): another form of a finished video or sequence, an animated GIF, a
WebM (VP9) or a seamless loop, made by a worker on first request and kept beside it.

`export_request` answers what is there: the ready export, or a pending one (queued now, or
queued again when its worker went silent), or a failed one with its reason."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.conf import Conf
from django_q.tasks import async_task

from generations.errors import ApiError
from generations.models import Export, Generation, Sequence
from generations.vocabulary import Status

FORMATS = tuple(Export.Format.values)
# The job that makes an export (tasks/shots.py), named like the run task.
EXPORT_TASK = "generations.tasks.export_make"
# A pending export whose worker has not finished in this long is queued again.
EXPORT_STALE_S = 600
# What a 202 tells the client to wait before asking again (seconds).
RETRY_AFTER_S = 2


def export_request(
    *, generation: Generation | None = None, sequence: Sequence | None = None, fmt: str
) -> Export:
    """The export of this video in `fmt`, queued on first request."""
    if fmt not in FORMATS:
        raise ApiError(
            400, "invalid_parameter", f"`format` must be one of {', '.join(FORMATS)}.", "format"
        )
    owner: dict[str, Generation | Sequence | None] = (
        {"generation": generation} if generation is not None else {"sequence": sequence}
    )
    status = (generation or sequence).status  # type: ignore[union-attr]
    if status != Status.COMPLETED:
        raise ApiError(409, "not_completed", "Only a finished video can be exported.")
    found = Export.objects.filter(format=fmt, **owner).first()
    if found is None:
        try:
            with transaction.atomic():
                found = Export.objects.create(format=fmt, **owner)
        except IntegrityError:  # another request made it first
            return Export.objects.get(format=fmt, **owner)
        transaction.on_commit(lambda: _enqueue(found.pk))
        return found
    stale = timezone.now() - timedelta(seconds=EXPORT_STALE_S)
    again = Export.objects.filter(pk=found.pk, state=Export.State.PENDING).filter(
        Q(started_at__isnull=True, created_at__lt=stale) | Q(started_at__lt=stale)
    )
    if again.update(created_at=timezone.now(), started_at=None):
        transaction.on_commit(lambda: _enqueue(found.pk))
    return found


def _enqueue(pk: int) -> None:
    async_task(EXPORT_TASK, pk, task_name=f"export {pk}", group="exports", cluster=Conf.PREFIX)


def export_start(export: Export) -> bool:
    """A worker takes the export (False: already made, or failed)."""
    return bool(
        Export.objects.filter(pk=export.pk, state=Export.State.PENDING).update(
            started_at=timezone.now()
        )
    )


def export_done(export: Export, *, name: str, size: int) -> None:
    Export.objects.filter(pk=export.pk).update(
        state=Export.State.READY, file=name, size=size, finished_at=timezone.now()
    )


def export_failed(export: Export, message: str) -> None:
    Export.objects.filter(pk=export.pk).update(
        state=Export.State.FAILED, error_message=message[:2000], finished_at=timezone.now()
    )
