"""`/metrics`: Prometheus text exposition (format 0.0.4), written by prometheus-client.

Why the library: prometheus-client is the format's reference implementation, so escaping,
number spelling and a histogram's _bucket/_count/_sum series are right by construction
rather than ours to keep right. A custom collector (`VideogenCollector`) on a registry of its
own hands it the families and `generate_latest` writes them; only the values are ours. (It
writes each sample's labels in name order, e.g. `{engine="fal",status="failed"}`.)

Every value is read from the database or the broker, so any web process answers for the
whole deployment (workers keep no per-process counters to scrape); the series over every
finished generation come from a snapshot the worker refreshes each minute (below), the rest
at scrape time:
- `videogen_queue_depth{cluster}`: tasks waiting in each django-q2 queue;
- `videogen_generations{status,engine}`: generations by state and engine (one GROUP BY);
- `videogen_engine_duration_seconds{engine}`: a histogram of processing time (pick-up to
  finish) of completed generations, cumulative over the rows kept (one GROUP BY);
- `videogen_remote_polls_due`, `videogen_worker_heartbeat_age_seconds{cluster}`,
  `videogen_generations_files_purged`, `videogen_broker_up`;
- `videogen_provider_circuit_state{provider,state}` (1 for the state each provider's circuit
  breaker is in), `videogen_provider_circuit_failures{provider}` and the counter
  `videogen_provider_circuit_opened_total{provider}` (routing/breaker.py).

Access (`metrics_allowed`): with VIDEOGEN_METRICS_TOKEN set, only `Authorization: Bearer
<token>`; without it, only direct (not proxied) requests from loopback or private addresses.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from generations.models import Generation, MetricsSnapshot, ProviderCircuit, WorkerHeartbeat
from generations.ops import health
from generations.vocabulary import FINAL_STATUSES, NOT_FINAL_STATUSES

log = logging.getLogger(__name__)

# The type prometheus_client's own `choose_encoder` sends with `generate_latest`'s default
# output; its CONTENT_TYPE_LATEST says version=1.0.0 (UTF-8 names), which we do not need.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Upper bounds (seconds) of the engine duration histogram: seconds for remote engines and
# short local clips, up to hours for long clips on a GPU.
DURATION_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
# A request that came through a proxy says so in one of these; the proxy's loopback
# address then proves nothing about the client.
_PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
# Where a scraper inside the deployment connects from (RFC 1918 and unique-local IPv6);
# `is_private` alone would also admit documentation and other reserved ranges.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def metrics_allowed(request: HttpRequest) -> bool:
    token = settings.VIDEOGEN_METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )
    if any(request.headers.get(name) for name in _PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback or any(address in net for net in PRIVATE_NETWORKS)


def clusters() -> list[str]:
    alt = settings.Q_CLUSTER.get("ALT_CLUSTERS") or {}
    return [health.main_cluster(), *sorted(alt)]  # type: ignore[call-overload]


def queue_depths() -> dict[str, int]:
    """Tasks waiting (not yet taken by a worker) in each cluster's queue."""
    names = clusters()
    if settings.Q_CLUSTER.get("redis"):
        client = health._redis_client()
        return {name: int(client.llen(name)) for name in names}
    from django_q.models import OrmQ

    alias = str(settings.Q_CLUSTER.get("orm", "default"))
    rows = (
        OrmQ.objects.using(alias)
        .filter(key__in=names, lock__lte=timezone.now())
        .values("key")
        .annotate(n=Count("id"))
    )
    depths = dict.fromkeys(names, 0)
    depths.update({row["key"]: row["n"] for row in rows})
    return depths


class VideogenCollector(Collector):
    """Computes every family anew from the database and the broker on each scrape (there is
    no per-process state to keep in prometheus_client's own Gauge/Histogram objects)."""

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        heavy, age = heavy_series()
        yield from _queue()
        yield _generations(heavy)
        yield _durations(heavy)
        yield from _rest(heavy)
        yield GaugeMetricFamily(
            "videogen_metrics_snapshot_age_seconds",
            "Age of the snapshot the finished generations' series come from (-1: computed "
            "by this scrape, no worker refreshes it).",
            value=-1 if age is None else round(age, 1),
        )
        yield from _circuits()
        yield GaugeMetricFamily(
            "videogen_metrics_scrape_seconds",
            "Time taken to compute these metrics.",
            value=round(time.perf_counter() - started, 4),
        )


def _queue() -> Iterator[Metric]:
    up = ("videogen_broker_up", "1 when the django-q2 broker answered.")
    try:
        depths = queue_depths()
    except Exception:
        log.warning("metrics: the broker did not answer", exc_info=True)
        yield GaugeMetricFamily(*up, value=0)
        return
    yield GaugeMetricFamily(*up, value=1)
    queue = GaugeMetricFamily(
        "videogen_queue_depth", "Tasks waiting in each django-q2 queue.", labels=["cluster"]
    )
    for name, depth in depths.items():
        queue.add_metric([name], depth)
    yield queue


def _generations(heavy: dict[str, Any]) -> Metric:
    """Generations still on their way, counted now (few rows, through the status indexes),
    and finished ones from the snapshot."""
    family = GaugeMetricFamily(
        "videogen_generations", "Generations by status and engine.", labels=["status", "engine"]
    )
    live = (
        Generation.objects.filter(status__in=NOT_FINAL_STATUSES)
        .values_list("status", "engine")
        .annotate(n=Count("id"))
        .order_by()
    )
    rows = [*live, *(tuple(row) for row in heavy["finished"])]
    for status, engine, n in sorted(rows):
        family.add_metric([status, engine], n)
    return family


def _durations(heavy: dict[str, Any]) -> Metric:
    family = HistogramMetricFamily(
        "videogen_engine_duration_seconds",
        "Processing time (pick-up to finish) of completed generations.",
        labels=["engine"],
    )
    for engine, count, total, buckets in heavy["durations"]:
        # Cumulative counts per upper bound; the library writes `le` as given ("30.0", "+Inf").
        counts = [
            (str(float(bound)), n) for bound, n in zip(DURATION_BUCKETS, buckets, strict=True)
        ]
        family.add_metric([engine], [*counts, ("+Inf", count)], sum_value=total)
    return family


# --- the snapshot of the heavy series -----------------------------------------------------------
# Finished generations by status and engine, the duration histogram and the purged count are
# GROUP BYs over every row: the worker computes them once a minute (tasks.refresh_metrics,
# scheduled by migration 0019) into a MetricsSnapshot row that every scrape reads. A snapshot
# older than this (no worker running it) is not used: the scrape computes them itself.
SNAPSHOT = "generations"
SNAPSHOT_MAX_AGE_S = 300


def compute_heavy() -> dict[str, Any]:
    """One pass over the finished generations: counts by status and engine, the duration
    histogram of completed ones, and how many had their files purged."""
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    timed = Q(status=Generation.Status.COMPLETED, started_at__isnull=False,
              finished_at__isnull=False)  # fmt: skip
    buckets = {
        f"le_{i}": Count("id", filter=timed & Q(took__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(DURATION_BUCKETS)
    }
    rows = (
        Generation.objects.filter(status__in=FINAL_STATUSES)
        .alias(took=took)
        .values("status", "engine")
        .annotate(
            n=Count("id"),
            timed=Count("id", filter=timed),
            total=Sum("took", filter=timed),
            purged=Count("id", filter=Q(files_purged_at__isnull=False)),
            **buckets,
        )  # fmt: skip
        .order_by("status", "engine")
    )
    heavy: dict[str, Any] = {"finished": [], "durations": [], "purged": 0}
    for row in rows:
        heavy["finished"].append([row["status"], row["engine"], row["n"]])
        heavy["purged"] += row["purged"]
        if row["timed"]:
            heavy["durations"].append([
                row["engine"], row["timed"],
                round((row["total"] or timedelta(0)).total_seconds(), 3),
                [row[f"le_{i}"] for i in range(len(DURATION_BUCKETS))],
            ])  # fmt: skip
    heavy["durations"].sort()
    return heavy


def refresh_snapshot() -> float:
    """Compute the heavy series and keep them for the scrapes; the seconds it took."""
    started = time.perf_counter()
    body = compute_heavy()
    took = time.perf_counter() - started
    MetricsSnapshot.objects.update_or_create(
        name=SNAPSHOT, defaults={"body": body, "computed_at": timezone.now(), "took_s": took}
    )
    return took


def heavy_series() -> tuple[dict[str, Any], float | None]:
    """The heavy series and the age of the snapshot they come from (None: computed now)."""
    row = MetricsSnapshot.objects.filter(name=SNAPSHOT).first()
    if row is not None:
        age = (timezone.now() - row.computed_at).total_seconds()
        if 0 <= age <= SNAPSHOT_MAX_AGE_S:
            return row.body, age
    return compute_heavy(), None


def _rest(heavy: dict[str, Any]) -> Iterator[Metric]:
    now = timezone.now()
    due = Generation.objects.filter(
        status=Generation.Status.IN_PROGRESS, next_poll_at__lte=now
    ).count()
    yield GaugeMetricFamily(
        "videogen_remote_polls_due", "Remote jobs whose next poll is due.", value=due
    )
    heartbeats = GaugeMetricFamily(
        "videogen_worker_heartbeat_age_seconds",
        "Seconds since each worker cluster last ran the reaper.",
        labels=["cluster"],
    )
    for cluster, beat_at in WorkerHeartbeat.objects.values_list("cluster", "beat_at"):
        heartbeats.add_metric([cluster], round(max(0.0, (now - beat_at).total_seconds()), 1))
    yield heartbeats
    yield GaugeMetricFamily(
        "videogen_generations_files_purged",
        "Generations whose files the retention policy deleted (records kept).",
        value=heavy["purged"],
    )


def _circuits() -> Iterator[Metric]:
    """Each hosted provider's circuit breaker, from its ProviderCircuit row (one query)."""
    states = GaugeMetricFamily(
        "videogen_provider_circuit_state",
        "1 for the state each hosted provider's circuit breaker is in (closed, open, "
        "half_open), 0 for the others.",
        labels=["provider", "state"],
    )
    failures = GaugeMetricFamily(
        "videogen_provider_circuit_failures",
        "Consecutive transient failures each hosted provider's circuit counts.",
        labels=["provider"],
    )
    opened = CounterMetricFamily(
        "videogen_provider_circuit_opened",
        "Times each hosted provider's circuit breaker opened.",
        labels=["provider"],
    )
    rows = ProviderCircuit.objects.order_by("provider").values_list(
        "provider", "state", "failures", "opened_count"
    )
    for provider, state, count, times in rows:
        for choice in ProviderCircuit.State.values:
            states.add_metric([provider, choice], 1 if state == choice else 0)
        failures.add_metric([provider], count)
        opened.add_metric([provider], times)
    yield states
    yield failures
    yield opened


# A registry of our own: the library's global one would add this process's python_* and
# process_* metrics, which say nothing about the deployment and differ between web processes.
REGISTRY = CollectorRegistry()
REGISTRY.register(VideogenCollector())


def render() -> str:
    return generate_latest(REGISTRY).decode()
