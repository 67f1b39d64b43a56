"""Which generations still have a run waiting in the django-q2 broker.

A queued generation's task can vanish without a trace: Redis restarted without persistence,
or a worker cluster SIGKILLed after its pusher took tasks off the Redis list (the Redis broker
has no acknowledgements). The row still says `in_queue`. The reaper (tasks.reap_stale) asks
this module which queued rows have a task in the broker and re-enqueues the others; a row
whose task sits in a live cluster's memory may be enqueued twice, which is harmless (a run
claims its row with a conditional UPDATE, so the second run finds nothing to do)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.core.signing import BadSignature

from generations.core.fairshare import RUN_TASK


def _payloads(cluster: str) -> Iterator[str | bytes] | None:
    """The queued task payloads of one cluster's queue; None for a broker we cannot list."""
    from django_q.brokers import get_broker
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis

    broker = get_broker(cluster)
    payloads: list[str | bytes]
    if isinstance(broker, Redis):
        payloads = broker.connection.lrange(broker.list_key, 0, -1)
    elif isinstance(broker, ORM):
        payloads = list(
            broker.connection.filter(key=broker.list_key).values_list("payload", flat=True)
        )
    else:
        return None
    return iter(payloads)


def waiting_generation_pks(clusters: Iterable[str]) -> set[int] | None:
    """Primary keys of the generations with a run task in these clusters' queues; None when
    the broker cannot be listed (then every lost-looking row is re-enqueued)."""
    from django_q.signing import SignedPackage

    pks: set[int] = set()
    for cluster in clusters:
        payloads = _payloads(cluster)
        if payloads is None:
            return None
        for payload in payloads:
            try:
                task = SignedPackage.loads(payload)
            except (BadSignature, ValueError, TypeError):
                continue
            if not isinstance(task, dict) or task.get("func") != RUN_TASK:
                continue
            args = task.get("args") or ()
            if args and isinstance(args[0], int):
                pks.add(args[0])
    return pks
