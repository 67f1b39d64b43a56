"""`/metrics`: Prometheus text exposition (format 0.0.4), written by prometheus-client.

Why the library: prometheus-client is the format's reference implementation, so escaping,
number spelling and a histogram's _bucket/_count/_sum series are right by construction
rather than ours to keep right. A custom collector (`VideogenCollector`) on a registry of its
own hands it the families and `generate_latest` writes them; only the values are ours. (It
writes each sample's labels in name order, e.g. `{engine="fal",status="failed"}`.)

Every value is read from the database or the broker at scrape time, so any web process
answers for the whole deployment (workers keep no per-process counters to scrape):
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

from generations.models import Generation, ProviderCircuit, WorkerHeartbeat
from generations.ops import health

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
        yield from _queue()
        yield _generations()
        yield _durations()
        yield from _rest()
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


def _generations() -> Metric:
    family = GaugeMetricFamily(
        "videogen_generations", "Generations by status and engine.", labels=["status", "engine"]
    )
    rows = (
        Generation.objects.values("status", "engine")
        .annotate(n=Count("id"))
        .order_by("status", "engine")
    )
    for row in rows:
        family.add_metric([row["status"], row["engine"]], row["n"])
    return family


def _durations() -> Metric:
    family = HistogramMetricFamily(
        "videogen_engine_duration_seconds",
        "Processing time (pick-up to finish) of completed generations.",
        labels=["engine"],
    )
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le_{i}": Count("id", filter=Q(took__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(DURATION_BUCKETS)
    }
    rows = (
        Generation.objects.filter(
            status=Generation.Status.COMPLETED,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .alias(took=took)
        .values("engine")
        .annotate(n=Count("id"), total=Sum("took"), **buckets)
        .order_by("engine")
    )
    for row in rows:
        # Cumulative counts per upper bound; the library writes `le` as given ("30.0", "+Inf").
        counts = [(str(float(bound)), row[f"le_{i}"]) for i, bound in enumerate(DURATION_BUCKETS)]
        total = row["total"] or timedelta(0)
        family.add_metric(
            [row["engine"]],
            [*counts, ("+Inf", row["n"])],
            sum_value=round(total.total_seconds(), 3),
        )
    return family


def _rest() -> Iterator[Metric]:
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
    purged = Generation.objects.filter(files_purged_at__isnull=False).count()
    yield GaugeMetricFamily(
        "videogen_generations_files_purged",
        "Generations whose files the retention policy deleted (records kept).",
        value=purged,
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
