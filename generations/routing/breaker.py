"""A circuit breaker per hosted provider, shared by every worker through the database.

    closed ──N consecutive transient failures──▶ open ──cool-down over, one caller──▶ half_open
      ▲                                           ▲                                     │
      └────────────── the probe succeeded ────────┼──────── the probe failed ───────────┘

Closed: calls go through; each transient failure (5xx, timeout, 429, a malformed answer)
adds one to `failures`, any success sets it back to 0, and the failure that reaches
VIDEOGEN_BREAKER_FAILURES opens the circuit for VIDEOGEN_BREAKER_COOLDOWN_S. Open: new work
skips the provider (routing/failover.py sends it to the next route, or waits when none is
left). Once the cool-down is over, the first caller to ask takes the probe (half_open, with
a lease until `probe_until`); everyone else keeps skipping. The probe's outcome closes the
circuit or opens it again for another cool-down; a prober that dies without reporting loses
its lease, and the next caller probes instead.

Every move is one conditional UPDATE on the provider's `ProviderCircuit` row, so two workers
never both open it, both take the probe, or both count one failure: the row is the truth
across processes and hosts. Only submissions are gated: polls of a job already running
upstream go on whatever the circuit says (leaving it would pay twice), and their outcomes
are counted like any other call's.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from generations.models import ProviderCircuit

log = logging.getLogger(__name__)

State = ProviderCircuit.State
# How long a probe may stay out before another caller may take it: longer than one provider
# call can last (rendering/hosted/base.py's CALL_TIMEOUT: 5 s to connect, 30 s to read).
PROBE_LEASE_S = 60.0
# While a probe is out, skipped work looks again this soon (a probe takes about one call).
PROBE_RECHECK_S = 2.0
# A closed circuit with no failures to forget records a success at most this often: every
# poll of every job succeeds, and one row per provider must not take a write for each.
SUCCESS_MARK_S = 30.0
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class Gate:
    """May a call go to the provider now? `probe`: this caller holds the half-open probe
    and must report its outcome with it. `until`: when refused, when to ask again."""

    allowed: bool
    probe: str = ""
    until: datetime | None = None


def threshold() -> int:
    """Consecutive failures that open a circuit; 0 turns the breaker off."""
    return max(0, int(settings.VIDEOGEN_BREAKER_FAILURES))


def cooldown() -> timedelta:
    return timedelta(seconds=max(0.0, float(settings.VIDEOGEN_BREAKER_COOLDOWN_S)))


def gate(provider: str, *, now: datetime | None = None) -> Gate:
    """Whether new work may go to `provider`; taking the probe when the cool-down is over."""
    for _ in range(3):  # a lost race for the probe reads the row again
        now = now or timezone.now()
        row = (
            ProviderCircuit.objects.filter(provider=provider)
            .values_list("state", "retry_at", "probe_until")
            .first()
        )
        if row is None or row[0] == State.CLOSED or threshold() == 0:
            return Gate(True)
        state, retry_at, probe_until = row
        if state == State.OPEN and retry_at is not None and retry_at > now:
            return Gate(False, until=retry_at)
        if state == State.HALF_OPEN and probe_until is not None and probe_until > now:
            return Gate(False, until=min(probe_until, now + timedelta(seconds=PROBE_RECHECK_S)))
        # Open past its cool-down, or a probe whose lease ran out: take the probe.
        token = uuid.uuid4().hex
        due = Q(state=State.OPEN, retry_at__lte=now) | Q(state=State.OPEN, retry_at=None)
        due |= Q(state=State.HALF_OPEN, probe_until__lte=now) | Q(
            state=State.HALF_OPEN, probe_until=None
        )
        if (
            ProviderCircuit.objects.filter(due, provider=provider)
            .filter(state=state)
            .update(
                state=State.HALF_OPEN,
                probe_claim=token,
                probe_until=now + timedelta(seconds=PROBE_LEASE_S),
            )
        ):
            log.info("circuit of %s: half-open, probing", provider)
            return Gate(True, probe=token)
        now = None
    return Gate(False, until=timezone.now() + timedelta(seconds=PROBE_RECHECK_S))


def succeeded(provider: str, *, probe: str = "") -> None:
    """The provider answered a call (a job's refusal counts: the provider is up)."""
    forget_open_providers()
    now = timezone.now()
    if probe and ProviderCircuit.objects.filter(
        provider=provider, state=State.HALF_OPEN, probe_claim=probe
    ).update(
        state=State.CLOSED,
        failures=0,
        retry_at=None,
        probe_claim="",
        probe_until=None,
        last_success_at=now,
    ):
        log.warning("circuit of %s: closed (the probe succeeded)", provider)
        return
    # Closed: forget the failures so far. Open or half-open: only the probe decides.
    mark_before = now - timedelta(seconds=SUCCESS_MARK_S)
    worth_a_write = Q(failures__gt=0) | Q(last_success_at=None) | Q(last_success_at__lt=mark_before)
    ProviderCircuit.objects.filter(worth_a_write, provider=provider, state=State.CLOSED).update(
        failures=0, last_success_at=now
    )


def failed(provider: str, error: str, *, probe: str = "") -> bool:
    """A call failed transiently. True when the circuit is open after it (this failure
    opened it, or the probe failed and reopened it)."""
    forget_open_providers()
    now = timezone.now()
    error = error[:MAX_ERROR_CHARS]
    reopen = {
        "state": State.OPEN,
        "opened_at": now,
        "retry_at": now + cooldown(),
        "probe_claim": "",
        "probe_until": None,
        "opened_count": F("opened_count") + 1,
    }
    failure = {"failures": F("failures") + 1, "last_error": error, "last_failure_at": now}
    if probe and ProviderCircuit.objects.filter(
        provider=provider, state=State.HALF_OPEN, probe_claim=probe
    ).update(**failure, **reopen):
        log.warning("circuit of %s: open again for %s (the probe failed: %s)", provider,
                    cooldown(), error)  # fmt: skip
        return True
    ProviderCircuit.objects.get_or_create(provider=provider)
    ProviderCircuit.objects.filter(provider=provider).update(**failure)
    limit = threshold()
    if limit and ProviderCircuit.objects.filter(
        provider=provider, state=State.CLOSED, failures__gte=limit
    ).update(**reopen):
        log.warning("circuit of %s: open for %s after %d consecutive failures (last: %s)",
                    provider, cooldown(), limit, error)  # fmt: skip
        return True
    return is_open(provider)


def is_open(provider: str) -> bool:
    """Open or half-open: new work skips the provider (but for its one probe)."""
    return (
        threshold() > 0
        and ProviderCircuit.objects.filter(provider=provider).exclude(state=State.CLOSED).exists()
    )


# open_providers' answer is reused this long in a process: estimates ask per submit item.
OPEN_SET_TTL_S = 1.0
_open_set: tuple[float, frozenset[str]] = (0.0, frozenset())


def forget_open_providers() -> None:
    """Drop open_providers' cached answer (a state change here; a test's fresh database)."""
    global _open_set  # noqa: PLW0603
    _open_set = (0.0, frozenset())


def open_providers() -> frozenset[str]:
    """The providers whose circuit is open or half-open now, as estimates see them (read
    at most once a second per process; the step itself asks the row each time)."""
    global _open_set  # noqa: PLW0603  (a per-process cache of one value)
    read_at, found = _open_set
    if time.monotonic() - read_at < OPEN_SET_TTL_S:
        return found
    if threshold() <= 0:
        found = frozenset()
    else:
        rows = ProviderCircuit.objects.exclude(state=State.CLOSED).values_list(
            "provider", flat=True
        )
        found = frozenset(rows)
    _open_set = (time.monotonic(), found)
    return found
