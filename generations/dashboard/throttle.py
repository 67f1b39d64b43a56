"""Login throttling: failed sign-ins counted in the cache, per account and address.

After VIDEOGEN_LOGIN_MAX_FAILURES failures for one account from one address within
VIDEOGEN_LOGIN_LOCKOUT_S seconds, that pair is refused (even with the right password) until
the window ends; one address spraying many accounts is stopped at four times that. Counting
per account *and* address means a stranger cannot lock the owner out from elsewhere. The
cache is the project's (Redis when REDIS_URL is set), so every web process shares counts.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

# One address may fail this many times the per-account limit, across accounts.
ADDRESS_FACTOR = 4


def _keys(username: str, address: str) -> tuple[str, str]:
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:{account}:{address}", f"login-fail-ip:{address}"


def client_address(request: HttpRequest) -> str:
    # REMOTE_ADDR, not X-Forwarded-For (anyone can send that header); behind a proxy the
    # server sets REMOTE_ADDR from it (uvicorn --proxy-headers --forwarded-allow-ips).
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def locked_for(request: HttpRequest, username: str) -> int:
    """Seconds until this account may be tried again from this address; 0 when it may."""
    now = time.time()
    limit = settings.VIDEOGEN_LOGIN_MAX_FAILURES
    waits = []
    for key, cap in zip(
        _keys(username, client_address(request)), (limit, limit * ADDRESS_FACTOR), strict=True
    ):
        value = cache.get(key)
        if isinstance(value, tuple) and int(value[0]) >= cap:
            waits.append(max(1, math.ceil(float(value[1]) - now)))
    return max(waits, default=0)


def record_failure(request: HttpRequest, username: str) -> None:
    """Count one failure; the window starts at the first failure and is not extended."""
    window = settings.VIDEOGEN_LOGIN_LOCKOUT_S
    now = time.time()
    for key in _keys(username, client_address(request)):
        # (count, window end): a get/set pair is not atomic, but losing a count under a
        # race only lets an attacker one guess more, never locks anyone out wrongly.
        value = cache.get(key)
        if isinstance(value, tuple) and float(value[1]) > now:
            count, ends = int(value[0]) + 1, float(value[1])
        else:
            count, ends = 1, now + window
        cache.set(key, (count, ends), timeout=max(1, math.ceil(ends - now)))


def record_success(request: HttpRequest, username: str) -> None:
    cache.delete(_keys(username, client_address(request))[0])


def lockout_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return (
        "Too many failed sign-in attempts for this account from your address. "
        f"Try again in {minutes} {unit}, or reset your password."
    )
