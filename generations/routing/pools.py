"""Key pools and in-flight limits of the hosted providers (CONTRACT 9).

A provider's credential setting may hold several keys (`FAL_KEY=k1,k2,k3`): a pool. Jobs are
spread over its keys, each job starting at a rotating place (its row's id) and taking the
least busy key from there. A job keeps the key it was submitted with for every poll and the
cancel: its HostedState remembers the key's fingerprint (ids.key_fingerprint), never the key.

`VIDEOGEN_PROVIDER_CONCURRENCY=fal=4,replicate=8` caps the jobs in flight per key of a
provider's pool. A job takes a slot (a `ProviderSlot` row: a unique insert of provider, key
fingerprint and slot number, so exact across processes and hosts on SQLite and PostgreSQL)
just before its submit and gives it back (deletes the row) when it leaves the provider:
result collected, failed, canceled, or moved to another provider (a generation holds one
slot at most, so taking one elsewhere gives the old one back). A job that finds no free slot
is not submitted: it waits in our queue and asks again shortly (tasks/hosted.py).

Slots whose generation is no longer in progress (finished by a path that did not give the
slot back: the reaper failing a job whose worker kept dying, an admin action) are freed by
`free_stale_slots`, which the reaper runs every minute and `acquire` runs whenever it finds
every slot taken. A hosted job whose worker died keeps its slot: it is still in flight
upstream, and the reaper re-arms its poll.

A key the provider refuses (401/403: `upstream_auth`) leaves the rotation for
VIDEOGEN_PROVIDER_KEY_COOLDOWN_S (a `ProviderKey` row, reported by /healthz by fingerprint),
and the job is tried on another key of the pool; `has_usable_key` says whether one is left.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from generations.ids import key_fingerprint
from generations.models import Generation, ProviderKey, ProviderSlot
from generations.rendering.base import EngineError
from generations.rendering.hosted import providers
from generations.rendering.hosted.base import RemoteEngine

log = logging.getLogger(__name__)

AUTH_ERROR = "upstream_auth"
MAX_REASON_CHARS = 300  # ProviderKey.reason


@dataclass(frozen=True)
class Lease:
    """The key (by fingerprint) and slot a job holds at a provider; `slot` is None where the
    provider has no limit (nothing is held then)."""

    provider: str
    fingerprint: str
    slot: int | None


def limit(provider: str) -> int | None:
    """Jobs in flight at once per key of the provider's pool; None: no limit."""
    limits: dict[str, int] = settings.VIDEOGEN_PROVIDER_CONCURRENCY
    return limits.get(provider)


def fingerprints(provider: str) -> list[str]:
    """The fingerprints of the provider's keys, in the operator's order."""
    return [key_fingerprint(key) for key in providers.keys(provider)]


def label(provider: str, fingerprint: str) -> str:
    """How a key is named to an operator: "fal key #2 (sha256:1a2b3c4d)" (its place in the
    setting, counted from 1), never the key."""
    known = fingerprints(provider)
    place = f" #{known.index(fingerprint) + 1}" if fingerprint in known else ""
    return f"{provider} key{place} ({fingerprint})"


def _retired(provider: str) -> set[str]:
    return set(
        ProviderKey.objects.filter(provider=provider, disabled_until__gt=timezone.now())
        .values_list("fingerprint", flat=True)
    )  # fmt: skip


def usable(provider: str) -> list[str]:
    """Fingerprints of the provider's keys in rotation (configured, not out of rotation)."""
    retired = _retired(provider)
    return [fp for fp in fingerprints(provider) if fp not in retired]


def has_usable_key(provider: str) -> bool:
    """Whether a job could still be submitted to this provider with one of its keys: False
    when none is configured or every one was refused (failover moves on then)."""
    return bool(usable(provider))


def client(provider: str, fingerprint: str) -> RemoteEngine:
    """The provider's client calling with the key of that fingerprint; "" (a job from
    before key pools, or not yet submitted) calls with the pool's first key. A job whose key
    was removed from the setting cannot be reached any more: upstream_auth."""
    if not fingerprint:
        return providers.engine(provider)
    for key in providers.keys(provider):
        if key_fingerprint(key) == fingerprint:
            return providers.engine(provider, key)
    raise EngineError(
        AUTH_ERROR,
        f"The {provider} key this job was submitted with ({fingerprint}) is no longer "
        "configured on this server; an operator must check the API keys.",
    )


def acquire(*, provider: str, generation: Generation) -> Lease | None:
    """A key of the provider's pool for this generation's submit and, under a limit, a free
    slot of that key. None: every slot of every usable key is taken (wait and ask again).
    Raises upstream_auth when no key of the pool is usable. Asking again while holding a
    slot at this provider answers that slot."""
    keys = usable(provider)
    if not keys:
        raise EngineError(
            AUTH_ERROR,
            f"The {provider} provider refused every key of this server's pool; an operator "
            "must check the API keys.",
        )
    start = generation.pk % len(keys)
    rotation = keys[start:] + keys[:start]
    cap = limit(provider)
    if cap is None:
        if settings.VIDEOGEN_PROVIDER_CONCURRENCY:
            release(generation=generation)  # a slot held at a provider it moved from
        return Lease(provider, rotation[0], None)
    held = ProviderSlot.objects.filter(generation=generation).first()
    if held is not None:
        if held.provider == provider and held.key in keys and held.slot < cap:
            return Lease(provider, held.key, held.slot)
        held.delete()
    for attempt in range(2):
        lease = _take_free_slot(provider, generation, rotation, cap)
        if lease is not None or attempt or not free_stale_slots(provider):
            return lease
    return None


def _take_free_slot(
    provider: str, generation: Generation, rotation: list[str], cap: int
) -> Lease | None:
    taken: dict[str, set[int]] = {fp: set() for fp in rotation}
    for key, slot in ProviderSlot.objects.filter(provider=provider).values_list("key", "slot"):
        taken.setdefault(key, set()).add(slot)
    # The least busy key first; among equals, the rotation's order.
    order = sorted(rotation, key=lambda fp: (len(taken[fp]), rotation.index(fp)))
    for fp in order:
        for slot in range(cap):
            if slot in taken[fp]:
                continue
            try:
                with transaction.atomic():
                    ProviderSlot.objects.create(
                        provider=provider, key=fp, slot=slot, generation=generation
                    )
            except IntegrityError:
                continue  # another worker took it a moment ago
            return Lease(provider, fp, slot)
    return None


def release(*, generation: Generation | int) -> int:
    """Give back the slot the generation holds (if any): how many were freed."""
    pk = generation if isinstance(generation, int) else generation.pk
    deleted, _ = ProviderSlot.objects.filter(generation_id=pk).delete()
    return deleted


def free_stale_slots(provider: str | None = None) -> int:
    """Free the slots of generations no longer in progress: how many. One indexed DELETE
    (the slot table holds at most the configured limits' sum of live rows)."""
    stale = ProviderSlot.objects.exclude(generation__status=Generation.Status.IN_PROGRESS)
    if provider is not None:
        stale = stale.filter(provider=provider)
    deleted, _ = stale.delete()
    if deleted:
        log.info("freed %d provider slots held by generations no longer in progress", deleted)
    return deleted


def in_flight(provider: str) -> int:
    """Slots of the provider taken now (all keys)."""
    return ProviderSlot.objects.filter(provider=provider).count()


def capacity(provider: str) -> int | None:
    """Slots the provider offers now: its limit times its usable keys; None: no limit."""
    cap = limit(provider)
    return None if cap is None else cap * len(usable(provider))


def retire_key(*, provider: str, fingerprint: str, reason: str) -> None:
    """Take a refused key out of rotation for VIDEOGEN_PROVIDER_KEY_COOLDOWN_S. The reason
    (the provider's refusal, quoted without any key of the pool) starts with the key's
    label, which /healthz shows."""
    for key in providers.keys(provider):
        reason = reason.replace(key, "[redacted]")
    text = f"{label(provider, fingerprint)}: {reason}"[:MAX_REASON_CHARS]
    now = timezone.now()
    until = now + timedelta(seconds=settings.VIDEOGEN_PROVIDER_KEY_COOLDOWN_S)
    values = {"disabled_at": now, "disabled_until": until, "reason": text}
    if not ProviderKey.objects.filter(provider=provider, fingerprint=fingerprint).update(**values):
        try:
            with transaction.atomic():
                ProviderKey.objects.create(provider=provider, fingerprint=fingerprint, **values)
        except IntegrityError:  # another worker retired it first
            ProviderKey.objects.filter(provider=provider, fingerprint=fingerprint).update(**values)
    log.warning("%s taken out of rotation until %s", label(provider, fingerprint), until)
