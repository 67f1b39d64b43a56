"""Request rates: a fixed one-minute window per API key, counted in Django's cache, and the
rate-limit headers every API response carries. The counter itself, and the per-address limit
of the checks that need no key, live in web/ratelimit.py (the dashboard counts with it too)."""

from __future__ import annotations

from generations.errors import ApiError
from generations.models import ApiKey
from generations.web.ratelimit import RATE_WINDOW_S as RATE_WINDOW_S
from generations.web.ratelimit import RateLimit as RateLimit
from generations.web.ratelimit import count, warn_uncounted, window_now
from generations.web.ratelimit import rate_limit_address as rate_limit_address


# Kept hand-written on purpose: a fixed one-minute window counted in Django's cache (one
# count for every process through Redis, in one round trip there: web/ratelimit.count)
# that fails open; that is all it needs. django-ratelimit counts the same way but is keyed
# on an HttpRequest, and its RATELIMIT_FAIL_OPEN covers only a count the cache did not
# return: a Redis refusing connections raises through it, so we would wrap it just as we
# wrap our own counter.
def rate_limit_take(key: ApiKey) -> RateLimit | None:
    """Count one request for this key in the current fixed one-minute window.

    The counter lives in the cache: Redis when REDIS_URL is set, so that every web process
    shares it; otherwise each process counts on its own. While the cache cannot be reached
    (Redis restarting) requests are let through uncounted and without rate-limit headers:
    keys cannot be guessed, so the limit is about fairness, and the API stays up. (Login
    throttling, which guards guessable passwords, fails closed instead: a 503.)"""
    limit = key.team.plan.requests_per_minute
    window, reset = window_now()
    name = f"vg:rl:{key.pk}:{window}"
    try:
        used = count(name)
    except Exception:
        warn_uncounted()
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
