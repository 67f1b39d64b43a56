"""Several routes per model: which of a job's provider routes serves it, when it moves to the
next one, and the record of every provider it tried.

A model's routes are the provider map's (rendering/hosted/providers.toml, or the operator's
VIDEOGEN_PROVIDER_MAP), in its order, narrowed to the providers whose key is set and that can
take this job (its mode; its duration, resolution and aspect ratio where the route lists
them; an end frame where the job has one). A job starts on the first; tasks/hosted.py asks
here at every step before the job is submitted upstream:

- a provider whose circuit is open (routing/breaker.py) is skipped: `skipped_open`;
- a transient failure (5xx, timeout, connection error, malformed answer) is tried again on
  the same route VIDEOGEN_FAILOVER_RETRIES times, a 429 VIDEOGEN_FAILOVER_429_RETRIES times
  (waiting its Retry-After, unless that is longer than MAX_RETRY_AFTER_S), then the job moves
  on: `failed_over`. A failure that leaves the provider's circuit open moves it at once;
- each provider is left at most once: on the last route left to it, a job retries as it
  always did, until the route's deadline; when every route left is open, it waits for the
  first cool-down to end rather than fail;
- permanent errors (a content-policy refusal, a rejected parameter: EngineError) never move
  a job: another provider would refuse it too, or bill it for the same mistake.

A job running upstream never moves (it would run, and be paid for, twice), unless the
provider itself failed the job in a way it calls retryable (`Transient.resubmit`): then it is
not running anywhere, and moves like one not yet submitted.

Every provider a job leaves or ends on is recorded in `Generation.route_attempts` as
{"provider", "outcome", "at", "detail"}: `skipped_open`, `failed_over`, then `served`,
`failed` or `canceled` on the provider it ended on. The charge is not touched: it was taken
once at admission, whatever serves the job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from generations.models import Generation
from generations.rendering.hosted import providers, routes
from generations.routing import breaker

SERVED = "served"
FAILED = "failed"
CANCELED = "canceled"
FAILED_OVER = "failed_over"
SKIPPED_OPEN = "skipped_open"
# Outcomes after which the job no longer uses that provider.
LEFT = frozenset({FAILED_OVER, SKIPPED_OPEN})
# A 429 asking us to wait longer than this moves the job on at once (when it has somewhere
# to go): another provider is likely to serve it sooner.
MAX_RETRY_AFTER_S = 60.0
RATE_LIMITED = 429
MAX_DETAIL_CHARS = 200


def job_routes(gen: Generation) -> list[routes.Route]:
    """The routes that can serve this job here, in the operator's order."""
    spec = gen.spec()
    found = []
    for route in providers.all_routes().get(gen.model, ()):
        if not providers.configured(route.provider) or spec.mode not in route.upstream:
            continue
        if route.durations and spec.duration not in route.durations:
            continue
        if route.resolutions and spec.resolution not in route.resolutions:
            continue
        if route.aspect_ratios and spec.aspect_ratio not in route.aspect_ratios:
            continue
        if spec.end_image_url and not route.takes("end_image", spec.mode):
            continue  # it would drop the end frame the user asked for
        found.append(route)
    return found


def route_on(gen: Generation) -> routes.Route | None:
    """The route of the provider the job is on (`gen.engine`), if it is still configured."""
    for route in providers.all_routes().get(gen.model, ()):
        if route.provider == gen.engine and gen.mode in route.upstream:
            return route if providers.configured(route.provider) else None
    return None


def left(attempts: Iterable[dict[str, Any]]) -> set[str]:
    """The providers a job has left (failed over from, or skipped while open)."""
    return {str(a.get("provider")) for a in attempts if a.get("outcome") in LEFT}


@dataclass(frozen=True)
class Choice:
    """Where a job not running upstream goes now. `route` None: nowhere yet; look again at
    `wait_until` (the first cool-down to end). `skipped`: providers passed over because
    their circuit is open. `probe`: the breaker's probe token when this job is the probe."""

    route: routes.Route | None
    probe: str = ""
    skipped: tuple[str, ...] = ()
    wait_until: datetime | None = None


def choose(
    gen: Generation, candidates: list[routes.Route], *, leaving: str | None = None
) -> Choice:
    """The first route of `candidates` the job has not left (nor is `leaving`) whose circuit
    lets it in."""
    gone = left(gen.route_attempts) | ({leaving} if leaving else set())
    skipped: list[str] = []
    soonest: datetime | None = None
    for route in candidates:
        if route.provider in gone:
            continue
        decision = breaker.gate(route.provider)
        if decision.allowed:
            return Choice(route, decision.probe, tuple(skipped))
        skipped.append(route.provider)
        if decision.until is not None and (soonest is None or decision.until < soonest):
            soonest = decision.until
    return Choice(None, wait_until=soonest)


def should_leave(
    *, failures: int, rate_limited: int, status: int | None, retry_after: float | None,
    circuit_open: bool,
) -> bool:  # fmt: skip
    """After a transient failure of a job not running upstream: move on now? `failures`
    and `rate_limited` count this route's failures so far, this one included."""
    if circuit_open:
        return True
    if status == RATE_LIMITED:
        if retry_after is not None and retry_after > MAX_RETRY_AFTER_S:
            return True
        return rate_limited > max(0, int(settings.VIDEOGEN_FAILOVER_429_RETRIES))
    return failures > max(0, int(settings.VIDEOGEN_FAILOVER_RETRIES))


def attempt(provider: str, outcome: str, detail: str = "") -> dict[str, str]:
    """One entry of `route_attempts`. `detail` must already be free of credentials (the
    providers' clients redact what they raise)."""
    return {
        "provider": provider,
        "outcome": outcome,
        "at": timezone.now().isoformat(timespec="seconds"),
        "detail": detail[:MAX_DETAIL_CHARS],
    }


def serving_provider(gen: Generation) -> str | None:
    """The hosted provider a generation is on (the one that served it, once done); None on
    an engine of our own, or before it started."""
    return gen.engine if gen.engine in providers.PROVIDERS else None


def public_attempts(gen: Generation) -> list[dict[str, str]]:
    """`route_attempts` as the status responses show them (the recorded keys only)."""
    keys = ("provider", "outcome", "at", "detail")
    return [{k: str(a.get(k, "")) for k in keys} for a in gen.route_attempts if isinstance(a, dict)]
