"""Request rates: a fixed one-minute window per API key, counted in Django's cache, and the
rate-limit headers every API response carries."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.core.cache import cache

from generations.errors import ApiError
from generations.models import ApiKey

log = logging.getLogger(__name__)

RATE_WINDOW_S = 60


def _count(name: str) -> int:
    if cache.add(name, 1, timeout=RATE_WINDOW_S + 5):
        return 1
    try:
        return int(cache.incr(name))
    except ValueError:  # expired between add and incr
        cache.add(name, 1, timeout=RATE_WINDOW_S + 5)
        return 1


_last_warning = 0.0


def _warn_uncounted() -> None:
    global _last_warning
    if time.monotonic() - _last_warning > RATE_WINDOW_S:
        _last_warning = time.monotonic()
        log.warning("rate limits are not counted: the cache is unreachable", exc_info=True)


@dataclass(frozen=True)
class RateLimit:
    limit: int
    remaining: int
    reset: int  # seconds until the window resets

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
            # draft-ietf-httpapi-ratelimit-headers: the policy and the current state.
            "RateLimit-Policy": f'"default";q={self.limit};w={RATE_WINDOW_S}',
            "RateLimit": f'"default";r={self.remaining};t={self.reset}',
        }


# Kept hand-written on purpose: a fixed one-minute window counted with cache.add/incr in
# Django's cache (one count for every process through Redis) that fails open; that is all
# it needs. django-ratelimit counts the same way but is keyed on an HttpRequest, and its
# RATELIMIT_FAIL_OPEN covers only a count the cache did not return: a Redis refusing
# connections raises through it, so we would wrap it just as we wrap our own counter.
def rate_limit_take(key: ApiKey) -> RateLimit | None:
    """Count one request for this key in the current fixed one-minute window.

    The counter lives in the cache: Redis when REDIS_URL is set, so that every web process
    shares it; otherwise each process counts on its own. While the cache cannot be reached
    (Redis restarting) requests are let through uncounted and without rate-limit headers:
    keys cannot be guessed, so the limit is about fairness, and the API stays up. (Login
    throttling, which guards guessable passwords, fails closed instead: a 503.)"""
    limit = key.team.plan.requests_per_minute
    now = time.time()
    window = int(now // RATE_WINDOW_S)
    reset = max(1, math.ceil((window + 1) * RATE_WINDOW_S - now))
    name = f"vg:rl:{key.pk}:{window}"
    try:
        used = _count(name)
    except Exception:
        _warn_uncounted()
        return None
    state = RateLimit(limit=limit, remaining=max(0, limit - used), reset=reset)
    if used > limit:
        raise ApiError(
            429,
            "rate_limit_exceeded",
            f"Too many requests: {limit} per minute for this key. Retry in {reset} s.",
            rate_limit=state,
        )
    return state


def rate_limit_address(address: str, *, scope: str, limit: int) -> RateLimit | None:
    """rate_limit_take for an endpoint that needs no key (`/api/v1/verify`): counted per
    client address and scope, in the same fixed window, failing open the same way."""
    now = time.time()
    window = int(now // RATE_WINDOW_S)
    reset = max(1, math.ceil((window + 1) * RATE_WINDOW_S - now))
    try:
        used = _count(f"vg:rl:{scope}:{address}:{window}")
    except Exception:
        _warn_uncounted()
        return None
    state = RateLimit(limit=limit, remaining=max(0, limit - used), reset=reset)
    if used > limit:
        raise ApiError(
            429,
            "rate_limit_exceeded",
            f"Too many checks: {limit} per minute from one address. Retry in {reset} s.",
            rate_limit=state,
        )
    return state
