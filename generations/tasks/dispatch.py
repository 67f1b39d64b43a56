"""The dispatcher thread of each main-cluster worker: due polls, and the fair-share release
of waiting generations (core/fairshare.py says how work is handed out).

Due polls: how a remote job's next poll is scheduled without any worker waiting for it.

django-q2 has no delayed tasks (its scheduler wakes twice a minute at best), so the delay
lives on the row: `Generation.next_poll_at`. Each worker process runs a small dispatcher
thread that, about twice a second, looks for rows whose poll is due, takes each one with a
conditional UPDATE (so two dispatchers never enqueue the same poll) and enqueues
`generations.tasks.generation_poll`. The poll task does one short call to the provider and
writes the next `next_poll_at` (exponential backoff with jitter), or finishes the job.

If an enqueued poll is lost (a broker restart), the row has no `next_poll_at` and its
heartbeat goes stale: the reaper re-arms it (see tasks.reap_stale).
"""

from __future__ import annotations

import logging
import random
from typing import Any

from django.conf import settings
from django.utils import timezone

from generations.core import fairshare
from generations.models import Generation
from generations.ops import background

log = logging.getLogger(__name__)

DISPATCH_INTERVAL_S = 0.5
BATCH = 50


def backoff_delay(polls: int, retry_after: float | None = None) -> float:
    """Seconds until the next poll: doubling from the first delay up to the cap, with
    "equal jitter" (half fixed, half random) so that many jobs submitted together do not
    poll the provider in lockstep; never sooner than the provider's Retry-After."""
    first, cap = float(settings.VIDEOGEN_POLL_FIRST_S), float(settings.VIDEOGEN_POLL_MAX_S)
    ceiling = min(cap, first * 2.0 ** min(polls, 20))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def dispatch_due() -> int:
    """Enqueue the polls that are due; how many were enqueued."""
    from django_q.conf import Conf
    from django_q.tasks import async_task

    now = timezone.now()
    due = list(
        Generation.objects.filter(next_poll_at__lte=now, status=Generation.Status.IN_PROGRESS)
        .order_by("next_poll_at")
        .values_list("pk", "next_poll_at", "claim")[:BATCH]
    )
    sent = 0
    for pk, at, claim in due:
        # Taking it: only the dispatcher whose UPDATE matches enqueues. The heartbeat write
        # keeps the reaper away while the poll is in the queue. Polls go to the main
        # cluster's queue, never behind renders on a GPU cluster.
        if Generation.objects.filter(pk=pk, next_poll_at=at).update(
            next_poll_at=None, heartbeat_at=now
        ):
            async_task(
                "generations.tasks.generation_poll", pk, claim, group="polls",
                task_name=f"poll {pk} {now.timestamp():.3f}", cluster=Conf.PREFIX,
            )  # fmt: skip
            sent += 1
    return sent


def dispatch_tick() -> int:
    """One round of this process's dispatcher thread: due polls, then the waiting lines
    (core/fairshare.py); how many tasks it enqueued."""
    return dispatch_due() + fairshare.release()


def start_dispatcher(**kwargs: Any) -> None:
    """Start this process's dispatcher thread (once). Connected to django-q2's post_spawn:
    every worker process runs one, so polls go on as long as any worker is alive."""
    from django_q.conf import Conf

    if Conf.SYNC:
        return  # tasks run inline (tests): nothing runs in the background
    if Conf.CLUSTER_NAME != Conf.PREFIX:
        return  # a GPU cluster's workers render; the main cluster's workers poll
    background.start_once("dispatcher", dispatch_tick, DISPATCH_INTERVAL_S)
