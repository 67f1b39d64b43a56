"""Request rates counted in Django's cache, in fixed one-minute windows, and the rate-limit
headers a counted response carries: per API key for the API (api/ratelimit.py), and per
client address for the checks anyone may ask for without a key (a video's provenance, on
both surfaces)."""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed
from django.dispatch import receiver

from generations.errors import ApiError

log = logging.getLogger(__name__)

RATE_WINDOW_S = 60


@dataclass(frozen=True)
class _SharedRedis:
    client: redis.Redis
    keys: BaseCache  # names the counters as Django's cache does (prefix, version)


@functools.cache
def _shared_redis() -> _SharedRedis | None:
    """The cache's Redis, through one client per process; None when the cache is another.

    Django's cache handler keeps a backend per async context, and so, under ASGI, a new one
    per request: each request would open a fresh connection to Redis (a TCP connect and four
    commands of handshake, ~2 ms of CPU, more than the rest of an authenticated read). The
    counters are used on every API request, so they keep one pool for the process."""
    backend = caches.create_connection(DEFAULT_CACHE_ALIAS)
    if not isinstance(backend, RedisCache):
        return None
    servers = settings.CACHES[DEFAULT_CACHE_ALIAS]["LOCATION"]  # parsed as Django does
    first = re.split("[;,]", servers)[0] if isinstance(servers, str) else servers[0]
    return _SharedRedis(client=redis.Redis.from_url(first), keys=backend)


@receiver(setting_changed)
def _cache_settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        _shared_redis.cache_clear()


def count(name: str) -> int:
    """One more in the counter `name` of the current window; the count so far."""
    shared = _shared_redis()
    if shared is not None:
        # One round trip, atomic: the counter is made with its expiry when missing (it can
        # never be left without one), then incremented. The same key and integer value as
        # the cache's add() and incr() make.
        pipe = shared.client.pipeline(transaction=True)
        pipe.set(shared.keys.make_key(name), 0, ex=RATE_WINDOW_S + 5, nx=True)
        pipe.incr(shared.keys.make_key(name))
        return int(pipe.execute()[1])
    if cache.add(name, 1, timeout=RATE_WINDOW_S + 5):
        return 1
    try:
        return int(cache.incr(name))
    except ValueError:  # expired between add and incr
        cache.add(name, 1, timeout=RATE_WINDOW_S + 5)
        return 1


_last_warning = 0.0


def warn_uncounted() -> None:
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


def window_now() -> tuple[int, int]:
    """The current window's number and the seconds until it ends."""
    now = time.time()
    window = int(now // RATE_WINDOW_S)
    return window, max(1, math.ceil((window + 1) * RATE_WINDOW_S - now))


def rate_limit_address(address: str, *, scope: str, limit: int) -> RateLimit | None:
    """Count one request from a client address for an endpoint that needs no key (a verify
    check, `POST /api/v1/verify` or the dashboard's `/verify/check`, which share the scope):
    the same fixed window as a key's, failing open the same way (api/ratelimit.py says why)."""
    window, reset = window_now()
    try:
        used = count(f"vg:rl:{scope}:{address}:{window}")
    except Exception:
        warn_uncounted()
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
