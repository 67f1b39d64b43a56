"""`/metrics`: Prometheus text exposition (format 0.0.4), written by hand.

Every value is read from the database or the broker at scrape time, so any web process
answers for the whole deployment (workers keep no per-process counters to scrape):
- `videogen_queue_depth{cluster}`: tasks waiting in each django-q2 queue;
- `videogen_generations{status,engine}`: generations by state and engine (one GROUP BY);
- `videogen_engine_duration_seconds{engine}`: a histogram of processing time (pick-up to
  finish) of completed generations, cumulative over the rows kept (one GROUP BY);
- `videogen_remote_polls_due`, `videogen_worker_heartbeat_age_seconds{cluster}`,
  `videogen_generations_files_purged`, `videogen_broker_up`.

Access (`metrics_allowed`): with VIDEOGEN_METRICS_TOKEN set, only `Authorization: Bearer
<token>`; without it, only direct (not proxied) requests from loopback or private addresses.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest
from django.utils import timezone

from generations.models import Generation, WorkerHeartbeat
from generations.ops import health

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
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


def _label(value: object) -> str:
    text = str(value).replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return f'"{text}"'


def _labels(**labels: object) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f"{k}={_label(v)}" for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: object) -> None:
        self.lines.append(f"{name}{_labels(**labels)} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


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


def _write_queue(out: _Writer) -> None:
    try:
        depths = queue_depths()
    except Exception:
        log.warning("metrics: the broker did not answer", exc_info=True)
        out.family("videogen_broker_up", "gauge", "1 when the django-q2 broker answered.")
        out.sample("videogen_broker_up", 0)
        return
    out.family("videogen_broker_up", "gauge", "1 when the django-q2 broker answered.")
    out.sample("videogen_broker_up", 1)
    out.family("videogen_queue_depth", "gauge", "Tasks waiting in each django-q2 queue.")
    for name, depth in depths.items():
        out.sample("videogen_queue_depth", depth, cluster=name)


def _write_generations(out: _Writer) -> None:
    out.family("videogen_generations", "gauge", "Generations by status and engine.")
    rows = (
        Generation.objects.values("status", "engine")
        .annotate(n=Count("id"))
        .order_by("status", "engine")
    )
    for row in rows:
        out.sample("videogen_generations", row["n"], status=row["status"], engine=row["engine"])


def _write_durations(out: _Writer) -> None:
    name = "videogen_engine_duration_seconds"
    out.family(name, "histogram", "Processing time (pick-up to finish) of completed generations.")
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
        for i, bound in enumerate(DURATION_BUCKETS):
            out.sample(f"{name}_bucket", row[f"le_{i}"], engine=row["engine"], le=float(bound))
        out.sample(f"{name}_bucket", row["n"], engine=row["engine"], le="+Inf")
        total = row["total"] or timedelta(0)
        out.sample(f"{name}_sum", round(total.total_seconds(), 3), engine=row["engine"])
        out.sample(f"{name}_count", row["n"], engine=row["engine"])


def _write_rest(out: _Writer) -> None:
    now = timezone.now()
    out.family("videogen_remote_polls_due", "gauge", "Remote jobs whose next poll is due.")
    due = Generation.objects.filter(
        status=Generation.Status.IN_PROGRESS, next_poll_at__lte=now
    ).count()
    out.sample("videogen_remote_polls_due", due)
    out.family(
        "videogen_worker_heartbeat_age_seconds",
        "gauge",
        "Seconds since each worker cluster last ran the reaper.",
    )
    for cluster, beat_at in WorkerHeartbeat.objects.values_list("cluster", "beat_at"):
        age = max(0.0, (now - beat_at).total_seconds())
        out.sample("videogen_worker_heartbeat_age_seconds", round(age, 1), cluster=cluster)
    out.family(
        "videogen_generations_files_purged",
        "gauge",
        "Generations whose files the retention policy deleted (records kept).",
    )
    purged = Generation.objects.filter(files_purged_at__isnull=False).count()
    out.sample("videogen_generations_files_purged", purged)


def render() -> str:
    started = time.perf_counter()
    out = _Writer()
    _write_queue(out)
    _write_generations(out)
    _write_durations(out)
    _write_rest(out)
    out.family("videogen_metrics_scrape_seconds", "gauge", "Time taken to compute these metrics.")
    out.sample("videogen_metrics_scrape_seconds", round(time.perf_counter() - started, 4))
    return out.text()
