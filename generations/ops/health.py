"""`/healthz`: is this web process able to do its job, and is a worker alive behind it?

Critical checks (any failing one answers 503, so a load balancer stops sending traffic):
the database, the django-q2 broker and the media storage. The worker heartbeat is reported
but is not critical: without a worker the web still accepts and queues jobs (the database
row is the truth and the queue is recovered), and taking every web process out of rotation
because the workers are down would turn a worker outage into a full outage. A stale or
missing heartbeat makes the status "degraded" with 200; alert on that (or on the
`videogen_worker_heartbeat_age_seconds` metric). So does a hosted provider's open circuit
breaker (`providers`: each provider's circuit state), also never critical, and a provider
key out of rotation: while one is, a `provider_keys` check lists it by fingerprint (the
pool's other keys still serve, so it is not critical either).

The checks are cheap: one trivial query each for the database and an ORM broker, a PING
with a short timeout for Redis, and a write/read/delete of a tiny object through the
storage at most every STORAGE_PROBE_INTERVAL_S per process (in between, the last result).
Errors name the exception class only: messages of database and Redis errors can carry host
names or credentials, and this endpoint is public. The full error goes to the log.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, partial
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.db.utils import IntegrityError
from django.utils import timezone

from generations.models import ProviderCircuit, ProviderKey, WorkerHeartbeat
from generations.ops import background

log = logging.getLogger(__name__)

# Redis: how long a PING may take before the broker counts as down.
BROKER_TIMEOUT_S = 2.0
# The storage round-trip (3 requests on S3) runs at most this often per process.
STORAGE_PROBE_INTERVAL_S = 30.0
STORAGE_PROBE_DIR = "healthz"


@dataclass
class Check:
    ok: bool
    critical: bool
    latency_ms: float
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": self.ok,
            "critical": self.critical,
            "latency_ms": self.latency_ms,
        }
        if self.error:
            body["error"] = self.error
        return body | self.detail


def _timed(critical: bool, probe: Callable[[], dict[str, Any] | None]) -> Check:
    started = time.perf_counter()
    try:
        detail = probe() or {}
    except Exception as exc:
        log.warning("health check %s failed", probe.__name__, exc_info=True)
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        return Check(False, critical, elapsed, f"{type(exc).__name__} (see the server log)")
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    error = detail.pop("error", None)
    return Check(error is None, critical, elapsed, error, detail)


# --- database --------------------------------------------------------------------------------


def check_database() -> dict[str, Any] | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


# --- broker ----------------------------------------------------------------------------------


@cache
def _redis_client() -> Any:
    import redis

    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=BROKER_TIMEOUT_S,
        socket_connect_timeout=BROKER_TIMEOUT_S,
    )


def check_broker() -> dict[str, Any] | None:
    if settings.Q_CLUSTER.get("redis"):
        _redis_client().ping()
        return {"kind": "redis"}
    from django_q.models import OrmQ

    alias = str(settings.Q_CLUSTER.get("orm", "default"))
    OrmQ.objects.using(alias).filter(pk=0).exists()
    return {"kind": "orm"}


# --- storage ---------------------------------------------------------------------------------

_storage_lock = threading.Lock()
_storage_last: tuple[float, dict[str, Any]] | None = None


def _storage_round_trip() -> dict[str, Any]:
    """Write, read back and delete a tiny object: works for local files and S3 alike."""
    payload = uuid.uuid4().hex.encode()
    name = default_storage.save(
        f"{STORAGE_PROBE_DIR}/probe-{payload.decode()}.txt", ContentFile(payload)
    )
    try:
        with default_storage.open(name, "rb") as fh:
            if fh.read() != payload:
                return {"error": "the probe object read back differs from what was written"}
    finally:
        default_storage.delete(name)
    return {}


def check_storage() -> dict[str, Any] | None:
    global _storage_last
    now = time.monotonic()
    with _storage_lock:
        if _storage_last is not None and now - _storage_last[0] < STORAGE_PROBE_INTERVAL_S:
            return dict(_storage_last[1], checked_s_ago=round(now - _storage_last[0], 1))
    try:
        result = _storage_round_trip()
    except Exception as exc:
        log.warning("storage probe failed", exc_info=True)
        result = {"error": f"{type(exc).__name__} (see the server log)"}
    result["backend"] = default_storage.__class__.__name__
    with _storage_lock:
        _storage_last = (time.monotonic(), dict(result))
    return result


def forget_storage_probe() -> None:
    """Tests: the next check probes the storage again."""
    global _storage_last
    with _storage_lock:
        _storage_last = None


# --- worker heartbeat ------------------------------------------------------------------------


def main_cluster() -> str:
    return str(settings.Q_CLUSTER["name"])


def record_heartbeat(cluster: str | None = None) -> None:
    """Called by the reaper, which the main cluster's scheduler runs every minute: a fresh
    beat proves scheduler, broker and a worker all work, end to end."""
    cluster = cluster or main_cluster()
    now = timezone.now()
    host = f"{socket.gethostname()}:{os.getpid()}"[:200]
    if WorkerHeartbeat.objects.filter(cluster=cluster).update(beat_at=now, host=host):
        return
    try:
        WorkerHeartbeat.objects.create(cluster=cluster, beat_at=now, host=host)
    except IntegrityError:  # another worker created it first
        WorkerHeartbeat.objects.filter(cluster=cluster).update(beat_at=now, host=host)


def heartbeat_age(cluster: str | None = None, now: datetime | None = None) -> float | None:
    beat = (
        WorkerHeartbeat.objects.filter(cluster=cluster or main_cluster())
        .values_list("beat_at", flat=True)
        .first()
    )
    if beat is None:
        return None
    return max(0.0, ((now or timezone.now()) - beat).total_seconds())


def check_worker(cluster: str | None = None) -> dict[str, Any] | None:
    cluster = cluster or main_cluster()
    age = heartbeat_age(cluster)
    max_age = settings.VIDEOGEN_HEARTBEAT_MAX_AGE
    detail: dict[str, Any] = {"cluster": cluster, "max_age_s": max_age}
    if age is None:
        return detail | {"age_s": None, "error": "no heartbeat yet (is a worker running?)"}
    detail["age_s"] = round(age, 1)
    if age > max_age:
        detail["error"] = f"last heartbeat {age:.0f} s ago"
    return detail


# A GPU cluster's workers spend minutes on one render, so a scheduled task would wait behind
# them: instead each worker process beats from a thread of its own, this often.
GPU_BEAT_INTERVAL_S = 30


def beat_once(cluster: str) -> bool:
    """One heartbeat for `cluster` from this process; False while the database is away."""
    return background.run_round("gpu heartbeat", partial(record_heartbeat, cluster))


def start_gpu_heartbeat(**kwargs: Any) -> None:
    """Connected to django-q2's post_spawn: in the worker processes of a cluster other than
    the main one (the GPU cluster), a thread that records its heartbeat; /healthz reports it
    as `gpu_worker` when VIDEOGEN_DIFFUSERS_MODELS is set. Alive while the process is, busy
    or not; a killed or hung-at-start cluster goes stale."""
    from django_q.conf import Conf

    if Conf.SYNC or Conf.CLUSTER_NAME == Conf.PREFIX:
        return  # the main cluster beats from the reaper
    cluster = str(Conf.CLUSTER_NAME)
    background.start_once("gpu heartbeat", partial(record_heartbeat, cluster), GPU_BEAT_INTERVAL_S)


# --- provider keys out of rotation ------------------------------------------------------

# The most keys out of rotation the check lists (it counts them all).
MAX_KEYS_LISTED = 20


def check_provider_keys() -> dict[str, Any] | None:
    """Keys of the providers' pools that a provider refused (routing/pools.py), out of
    rotation until their cool-down ends: named by fingerprint ("fal key #2 (sha256:...)",
    the label that starts each reason), never by the key. Not critical: the other keys
    of a pool, or other providers, still serve."""
    now = timezone.now()
    rows = ProviderKey.objects.filter(disabled_until__gt=now).order_by("provider", "disabled_at")
    listed = [
        {"provider": row.provider, "key": row.fingerprint, "reason": row.reason,
         "until": row.disabled_until.isoformat()}
        for row in rows[:MAX_KEYS_LISTED]
    ]  # fmt: skip
    detail: dict[str, Any] = {"out_of_rotation": listed}
    if listed:
        count = rows.count()
        detail["error"] = f"{count} provider key{'s' if count != 1 else ''} out of rotation"
    return detail


# --- provider circuits -----------------------------------------------------------------------


def check_providers() -> dict[str, Any] | None:
    """Each hosted provider's circuit breaker (routing/breaker.py), read from its row: not
    ok while one is open or probing (jobs skip that provider, to the next route or a wait),
    but never critical: the web still takes jobs, and other providers may serve them."""
    circuits: dict[str, Any] = {}
    for row in ProviderCircuit.objects.order_by("provider"):
        circuits[row.provider] = {
            "state": row.state,
            "failures": row.failures,
            "opened_count": row.opened_count,
            "retry_at": row.retry_at.isoformat() if row.retry_at else None,
        }
    detail: dict[str, Any] = {"circuits": circuits}
    down = sorted(p for p, c in circuits.items() if c["state"] != ProviderCircuit.State.CLOSED)
    if down:
        detail["error"] = f"circuit open: {', '.join(down)}"
    return detail


# --- all of them -----------------------------------------------------------------------------


def run_checks() -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for /healthz."""
    checks = {
        "database": _timed(True, check_database),
        "broker": _timed(True, check_broker),
        "storage": _timed(True, check_storage),
    }
    workers = {"worker": main_cluster()}
    if settings.VIDEOGEN_DIFFUSERS_MODELS:  # a GPU cluster is part of this deployment
        workers["gpu_worker"] = settings.VIDEOGEN_GPU_CLUSTER
    for name, cluster in workers.items():
        if checks["database"].ok:
            checks[name] = _timed(False, partial(check_worker, cluster))
        else:
            checks[name] = Check(False, False, 0.0, "unknown: the database is unreachable")
    if checks["database"].ok:
        checks["providers"] = _timed(False, check_providers)
        keys = _timed(False, check_provider_keys)
        if not keys.ok:  # listed while a key is out of rotation (or the check broke)
            checks["provider_keys"] = keys
    else:
        checks["providers"] = Check(False, False, 0.0, "unknown: the database is unreachable")
    critical_ok = all(c.ok for c in checks.values() if c.critical)
    if not critical_ok:
        status = "unhealthy"
    elif all(c.ok for c in checks.values()):
        status = "ok"
    else:
        status = "degraded"
    body = {
        "status": status,
        "ok": critical_ok,
        "checks": {name: check.as_json() for name, check in checks.items()},
    }
    return (200 if critical_ok else 503), body
