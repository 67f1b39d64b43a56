"""Every status transition of a generation, with its effect on the ledger.

A generation's status moves only here. Each move is one conditional UPDATE from the statuses
its transition may leave (TRANSITIONS), so two processes racing for the same row never both
win; a move that charges or gives back usage records that in the same transaction, so that a
process killed in between leaves either both or neither. The final events go to webhooks
from the same transaction (queued on commit).

    pending ──queue──▶ in_queue ──claim──▶ in_progress ──complete──▶ completed (settle)
       │  ▲───hold────────┘▲  │                 │  │
       │                   └──┼──requeue────────┘  ├──fail──▶ failed   (refund)
       └──cancel──────────────┴──────▶ canceled ◀──┘stop      (refund)

`pending` is a team's waiting line, held in the database; `queue` is the fair-share
dispatcher (core/fairshare.py) handing a row to the broker, and `hold` puts it back when the
broker refused it.

`fail` may also end a generation that never started (a model that disappeared); `claim`
also takes back an in_progress row whose run went silent (its heartbeat is stale).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.conf import Conf
from django_q.tasks import async_task

from generations.core import quotas, webhooks
from generations.models import Generation, UsageEvent
from generations.routing import prices
from generations.vocabulary import FINAL_STATUSES, WAITING_STATUSES, Status

log = logging.getLogger(__name__)

LIVE_STATUSES = frozenset(Status) - FINAL_STATUSES
# The job that moves a sequence on when one of its shots becomes final (tasks/shots.py):
# named, not imported, like the dispatcher's run task.
SEQUENCE_TASK = "generations.tasks.sequence_advance"


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[Status]
    target: Status
    ledger: str  # "" (none), "settle" or "refund": written in the same transaction


QUEUE = Transition("queue", frozenset({Status.PENDING}), Status.IN_QUEUE, "")
CLAIM = Transition(
    "claim", frozenset(WAITING_STATUSES | {Status.IN_PROGRESS}), Status.IN_PROGRESS, ""
)
REQUEUE = Transition("requeue", frozenset({Status.IN_PROGRESS}), Status.IN_QUEUE, "")
COMPLETE = Transition("complete", frozenset({Status.IN_PROGRESS}), Status.COMPLETED, "settle")
FAIL = Transition("fail", LIVE_STATUSES, Status.FAILED, "refund")
CANCEL = Transition("cancel", frozenset(WAITING_STATUSES), Status.CANCELED, "refund")
STOP = Transition("stop", LIVE_STATUSES, Status.CANCELED, "refund")
HOLD = Transition("hold", frozenset({Status.IN_QUEUE}), Status.PENDING, "")
TRANSITIONS = (QUEUE, CLAIM, REQUEUE, COMPLETE, FAIL, CANCEL, STOP, HOLD)


def _leaving(transition: Transition, pk: int) -> Q:
    return Q(pk=pk, status__in=transition.sources)


# --- moves ---------------------------------------------------------------------------------


def mark_queued(*, generation: Generation) -> bool:
    """pending -> in_queue: the dispatcher takes the row to hand it to the broker (only one
    dispatcher wins it). Also a no-op for a row already queued (the reaper's re-enqueue)."""
    now = timezone.now()
    taken = Generation.objects.filter(_leaving(QUEUE, generation.pk)).update(
        status=QUEUE.target, queued_at=now
    )
    if taken and generation.status == Status.PENDING:
        generation.status, generation.queued_at = QUEUE.target, now
    return bool(taken)


def hold(*, generation: Generation) -> bool:
    """in_queue -> pending: the broker refused the task (Redis down), so the row goes back
    to its team's waiting line, where the dispatcher finds it again."""
    held = Generation.objects.filter(_leaving(HOLD, generation.pk)).update(
        status=HOLD.target, queued_at=None
    )
    if held:
        generation.status, generation.queued_at = HOLD.target, None
    return bool(held)


def claim(pk: int) -> str | None:
    """Take the row for a run (pending or queued, or in progress with a stale heartbeat);
    the run's token, or None when another run owns it, it was canceled or it ran out of
    attempts. The token is the run's proof of ownership in every later write."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.VIDEOGEN_STALE_AFTER)
    token = uuid.uuid4().hex
    claimable = Q(status__in=WAITING_STATUSES) | Q(
        status=Status.IN_PROGRESS, heartbeat_at__lt=stale
    )
    taken = (
        Generation.objects.filter(_leaving(CLAIM, pk), claimable, cancel_requested=False)
        .filter(attempts__lt=settings.VIDEOGEN_MAX_ATTEMPTS)
        .update(
            status=CLAIM.target,
            claim=token,
            started_at=now,
            heartbeat_at=now,
            progress=0,
            attempts=F("attempts") + 1,
        )
    )
    return token if taken else None


def requeue(*, generation: Generation, now: datetime) -> bool:
    """in_progress -> in_queue for a run that went silent, conditional on nobody having
    touched the row since the reaper looked at it, and on no cancel waiting for it (a run
    never claims a row asked to stop: queued, it would wait forever)."""
    return bool(
        Generation.objects.filter(
            _leaving(REQUEUE, generation.pk),
            heartbeat_at=generation.heartbeat_at,
            cancel_requested=False,
        ).update(status=REQUEUE.target, queued_at=now, claim="")
    )


def complete(*, generation: Generation, claim: str, **results: object) -> bool:
    """in_progress -> completed with the stored results, and the charge settled, by the run
    holding the claim; False when it lost the claim or the row was canceled meanwhile."""
    with transaction.atomic():
        done = Generation.objects.filter(_leaving(COMPLETE, generation.pk), claim=claim).update(
            status=COMPLETE.target,
            next_poll_at=None,
            progress=100,
            finished_at=timezone.now(),
            **results,
        )
        if done:
            settle(generation=generation)
            _final(generation)
    return bool(done)


def fail(*, generation: Generation, code: str, message: str, claim: str | None = None) -> bool:
    """Mark failed (only from a live status, and only by the claim holder if given), with
    the charge refunded."""
    rows = Generation.objects.filter(_leaving(FAIL, generation.pk))
    if claim is not None:
        rows = rows.filter(claim=claim)
    now = timezone.now()
    with transaction.atomic():
        if not rows.update(
            status=FAIL.target,
            next_poll_at=None,
            error_code=code[:40],
            error_message=message,
            finished_at=now,
            started_at=generation.started_at or now,
        ):
            return False
        refund(generation=generation, note=f"failed: {code}")
        _final(generation)
    return True


def cancel(*, generation: Generation) -> bool:
    """Cancel a generation that has not finished: a queued one never starts, a running one
    stops at its next frame (its run sees the flag and calls `stop`). The charge is refunded
    either way. False when it was already final."""
    now = timezone.now()
    with transaction.atomic():
        if Generation.objects.filter(_leaving(CANCEL, generation.pk)).update(
            status=CANCEL.target, cancel_requested=True, finished_at=now
        ):
            refund(generation=generation, note="canceled")
            _final(generation)
            return True
    running = Generation.objects.filter(pk=generation.pk, status=Status.IN_PROGRESS)
    if not running.update(cancel_requested=True):
        return False
    # Waiting on a provider: poll now, so the cancel reaches it without waiting for backoff.
    running.filter(next_poll_at__isnull=False).update(next_poll_at=now)
    return True


def stop(*, generation: Generation, claim: str) -> bool:
    """A run saw the cancel flag (or lost its claim to it): canceled, refunded."""
    with transaction.atomic():
        updated = Generation.objects.filter(
            _leaving(STOP, generation.pk), claim=claim, cancel_requested=True
        ).update(status=STOP.target, finished_at=timezone.now(), next_poll_at=None)
        if updated:
            refund(generation=generation, note="canceled")
            _final(generation)
    return bool(updated)


def _final(generation: Generation) -> None:
    """The events of a generation that just became final, queued in its transaction: its
    own, and its batch's when it was the batch's last item."""
    webhooks.notify(generation)
    if generation.batch_id is not None:
        webhooks.notify_batch_if_done(generation.batch_id)
    if generation.sequence_id is not None:
        sequence_id = generation.sequence_id
        transaction.on_commit(lambda: advance_sequence(sequence_id))


def advance_sequence(sequence_pk: int) -> None:
    """After a shot became final: its sequence starts its next shot, stitches, or fails.
    A broker that refuses leaves it to the reaper (it finds sequences that stand still)."""
    try:
        async_task(SEQUENCE_TASK, sequence_pk, task_name=f"sequence {sequence_pk}",
                   group="sequences", cluster=Conf.PREFIX)  # fmt: skip
    except Exception:
        log.warning("the broker refused sequence %s's next step; the reaper retries it",
                    sequence_pk, exc_info=True)  # fmt: skip


# --- the ledger ----------------------------------------------------------------------------


def refund(*, generation: Generation, note: str = "") -> bool:
    """Give back the charge of a generation that did not complete. Exactly once."""
    with transaction.atomic():
        charge = UsageEvent.objects.filter(
            generation=generation, kind=UsageEvent.Kind.CHARGE
        ).first()
        if charge is None:
            return False
        if UsageEvent.objects.filter(generation=generation, kind=UsageEvent.Kind.REFUND).exists():
            return False
        UsageEvent.objects.create(
            team_id=charge.team_id,
            user_id=charge.user_id,
            api_key_id=charge.api_key_id,
            generation=generation,
            kind=UsageEvent.Kind.REFUND,
            units=-1,
            credits=-charge.credits,
            usd=-charge.usd,
            provider=charge.provider,
            month=charge.month,
            model=charge.model,
            note=note[:200],
        )
        quotas.release(charge.team_id, charge.user_id, charge.month, charge.credits)
        quotas.spend_adjust(charge.team_id, charge.month, -charge.usd)
        # Nothing was delivered: it cost nothing (a provider that bills failed jobs is not
        # modelled; see docs/providers.md).
        Generation.objects.filter(pk=generation.pk, cost_usd__isnull=True).update(
            cost_usd=Decimal(0), cost_source=prices.PRICE_TABLE
        )
    return True


def settle(*, generation: Generation) -> None:
    """Record that a charged generation was delivered: a ledger row with the difference
    between its cost and its estimate (so its rows sum to its cost), by the provider that
    served it, and the month's spend moved by as much. The cost is the one the run
    recorded (tasks/hosted.py: billed, or the price table's on the serving route); a
    generation without one (engines of our own) cost its estimate, which is $0 there."""
    charge = UsageEvent.objects.filter(generation=generation, kind=UsageEvent.Kind.CHARGE).first()
    if charge is None:
        return
    row = Generation.objects.values("cost_usd", "engine").get(pk=generation.pk)
    cost = row["cost_usd"]
    if cost is None:
        cost = charge.usd
        Generation.objects.filter(pk=generation.pk).update(
            cost_usd=cost, cost_source=prices.PRICE_TABLE
        )
    delta = prices.usd(cost - charge.usd)
    _, created = UsageEvent.objects.get_or_create(
        generation=generation,
        kind=UsageEvent.Kind.SETTLE,
        defaults={"team_id": charge.team_id, "user_id": charge.user_id,
                  "api_key_id": charge.api_key_id, "units": 0, "credits": 0, "usd": delta,
                  "provider": row["engine"] or charge.provider, "month": charge.month,
                  "model": charge.model},
    )  # fmt: skip
    if created:
        quotas.spend_adjust(charge.team_id, charge.month, delta)
