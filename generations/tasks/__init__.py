"""The jobs: django-q2 entry points, and the work behind them in this package.

The broker calls these functions by their dotted names (`generations.tasks.generation_run`):
tasks already queued and the schedules that migrations 0002, 0012 and 0019 created name them, so
they stay here, and stay thin. Each hands over to the module that does the work: run.py (a
generation's run), hosted.py (one step of a job at a hosted provider), reaper.py (the minute
sweep), dispatch.py (the thread that enqueues due polls); they reload the row and check its
state before acting. The jobs sit beside the API and the dashboard at the top of the layers:
the broker drives them as HTTP drives the surfaces, and they call down into generations/core.
"""

from __future__ import annotations

from django.conf import settings

from generations.core import webhooks
from generations.models import Generation
from generations.ops import metrics, retention
from generations.tasks import audio, hosted, reaper, run, shots


def generation_run(pk: int) -> str:
    """Run a generation: claim its row, render it here or start it at a provider."""
    return run.generation_run(pk)


def generation_poll(pk: int, claim: str) -> str:
    """One step of a hosted job (enqueued by dispatch.dispatch_due when its poll is due)."""
    gen = Generation.objects.select_related("team").filter(pk=pk).first()
    if gen is None or gen.status != Generation.Status.IN_PROGRESS or gen.claim != claim:
        return "skipped: no longer ours"
    if audio.in_phase(gen):
        return audio.step(gen)  # the video is done: its audio step (tasks/audio.py)
    return hosted.step(gen)


def sequence_advance(pk: int) -> str:
    """A shot of this sequence became final: start the next, stitch, or fail it."""
    return shots.sequence_advance(pk)


def export_make(pk: int) -> str:
    """Make an export (GIF, WebM, loop) asked for the first time."""
    return shots.export_make(pk)


def reap_stale() -> str:
    """Every minute (migration 0002): stale runs, lost tasks, lost polls (see reaper.py)."""
    return reaper.reap_stale()


def refresh_metrics() -> str:
    """Every minute (migration 0019): the heavy series of /metrics (ops/metrics.py)."""
    return f"metrics snapshot computed in {metrics.refresh_snapshot():.3f} s"


def webhook_deliver(pk: int) -> str:
    return webhooks.deliver(pk)


def purge_expired_media() -> str:
    """Runs daily (migration 0012): the retention policy, when VIDEOGEN_RETENTION_DAYS is set;
    and, always, the sweep of media files no generation names."""
    orphans = retention.sweep_orphans()
    swept = f"; {orphans.files} orphaned files deleted"
    days = settings.VIDEOGEN_RETENTION_DAYS
    if not days:
        return "retention off: files are kept forever" + swept
    report = retention.purge_media(older_than_days=days)
    return f"purged {report.files} files of {report.generations} generations" + swept
