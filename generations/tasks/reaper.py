"""The reaper, run every minute by the main cluster's scheduler (migration 0002): no
generation stays in progress, or lost in a queue, forever.

- A local run whose heartbeat went stale (its worker died) is queued again, or failed with
  `worker_lost` after VIDEOGEN_MAX_ATTEMPTS runs, or canceled when a cancel was waiting for
  it.
- A hosted job whose poll was lost is re-armed (polled again), never run again: that would
  submit it to the provider twice.
- Queued rows whose task is no longer in the broker are enqueued again (brokerscan.py says
  which are still waiting); then the waiting lines are released (core/fairshare.py), in
  case no dispatcher thread is alive to do it.

It also records the worker heartbeat that /healthz reports, frees the provider slots still
held by generations no longer in progress (routing/pools.py), forgets expired
Idempotency-Key records, sends the webhook retries that are due, and moves on the sequences
whose next step was lost (core/sequences.py: stalled)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_q.conf import Conf

from generations.core import fairshare, idempotency, lifecycle, sequences, webhooks
from generations.models import Generation
from generations.ops import health
from generations.rendering import registry
from generations.rendering.hosted.state import HostedState
from generations.routing import failover, pools
from generations.tasks import brokerscan, hosted

log = logging.getLogger(__name__)


def reap_stale() -> str:
    health.record_heartbeat()  # the worker heartbeat that /healthz reports
    now = timezone.now()
    stale = now - timedelta(seconds=settings.VIDEOGEN_STALE_AFTER)
    requeued = failed = rearmed = 0
    for gen in Generation.objects.filter(
        status=Generation.Status.IN_PROGRESS, heartbeat_at__lt=stale, next_poll_at__isnull=True
    ):
        if registry.is_hosted(gen.engine):
            rearmed += _rearm_poll(gen, now)
            continue
        if gen.cancel_requested:
            # Canceled while running, and its run died before it saw the flag: stopped here,
            # as that run would have (refunded). Queued again, no run could claim it.
            lifecycle.stop(generation=gen, claim=gen.claim)
            continue
        if gen.attempts >= settings.VIDEOGEN_MAX_ATTEMPTS:
            if lifecycle.fail(
                generation=gen,
                code="worker_lost",
                message=f"The worker running this generation stopped responding "
                f"{gen.attempts} times; giving up. The charge was refunded.",
            ):
                failed += 1
            continue
        if lifecycle.requeue(generation=gen, now=now):
            fairshare.enqueue(generation=gen)
            requeued += 1
    requeued += _requeue_lost(now)
    for pk in sequences.stalled(now):
        lifecycle.advance_sequence(pk)  # a sequence's next step that was lost
    released = fairshare.release()
    pools.free_stale_slots()  # provider slots of generations no longer in progress
    idempotency.forget_expired()
    webhooks.deliver_due()
    return f"requeued {requeued}, released {released}, re-armed {rearmed} polls, failed {failed}"


def _requeue_lost(now: datetime) -> int:
    """Queued rows whose task is no longer in the broker (Redis restarted, a cluster
    SIGKILLed with tasks prefetched, a dispatcher killed between taking a row and sending
    it): enqueued again, once per grace period. (Rows still `pending` are not lost: they
    wait for their turn, core/fairshare.py.)"""
    queued = settings.VIDEOGEN_QUEUED_GRACE_S
    candidates = list(
        Generation.objects.filter(
            Q(status=Generation.Status.IN_QUEUE, queued_at__lt=now - timedelta(seconds=queued))
        ).values_list("pk", "status", "cancel_requested")
    )
    if not candidates:
        return 0
    waiting = brokerscan.waiting_generation_pks({Conf.PREFIX, settings.VIDEOGEN_GPU_CLUSTER})
    requeued = 0
    for pk, status, cancel_requested in candidates:
        if cancel_requested:
            # Queued again by an older reaper after a cancel (reap_stale no longer does
            # that): no run claims a row asked to stop, so it would hold its queue's place
            # forever. Canceled here, refunded.
            lifecycle.cancel(generation=Generation.objects.get(pk=pk))
            continue
        if status == Generation.Status.IN_QUEUE and waiting is not None and pk in waiting:
            continue  # still in line: a long backlog, not a lost task
        gen = Generation.objects.get(pk=pk)
        Generation.objects.filter(pk=pk).update(queued_at=now)
        fairshare.enqueue(generation=gen)
        requeued += 1
    if requeued:
        log.warning("re-enqueued %d generations whose task was lost", requeued)
    return requeued


def _rearm_poll(gen: Generation, now: datetime) -> int:
    state = HostedState.load(gen.engine_handle)
    state.rearmed += 1
    if state.rearmed > settings.VIDEOGEN_MAX_ATTEMPTS:
        lifecycle.fail(
            generation=gen,
            code="worker_lost",
            message=f"The worker polling this generation stopped responding {state.rearmed - 1} "
            "times; giving up. The charge was refunded.",
        )
        hosted.left_provider(gen, gen.engine, failover.FAILED)
        return 0
    return Generation.objects.filter(
        pk=gen.pk, status=Generation.Status.IN_PROGRESS, heartbeat_at=gen.heartbeat_at
    ).update(
        engine_handle={**gen.engine_handle, **state.dump()}, next_poll_at=now, heartbeat_at=now
    )
