"""API key format: `vg_live_` / `vg_test_` + 32 random base62 + a 6-character checksum.

The checksum (CRC32, base62) lets us reject mistyped or made-up keys without a database
query, and lets secret scanners recognise our keys. Only a SHA-256 digest is stored."""

from __future__ import annotations

import hashlib
import hmac
import zlib

from generations.models import BASE62, random_base62

LIVE_PREFIX = "vg_live_"
TEST_PREFIX = "vg_test_"
RANDOM_CHARS = 32  # 190 bits of entropy: a fast hash is enough, no key stretching needed
CHECKSUM_CHARS = 6
KEY_LENGTH = len(LIVE_PREFIX) + RANDOM_CHARS + CHECKSUM_CHARS


def _checksum(body: str) -> str:
    value = zlib.crc32(body.encode())
    chars = []
    for _ in range(CHECKSUM_CHARS):
        value, rem = divmod(value, 62)
        chars.append(BASE62[rem])
    return "".join(reversed(chars))


def generate(*, test: bool) -> str:
    prefix = TEST_PREFIX if test else LIVE_PREFIX
    body = random_base62(RANDOM_CHARS)
    return prefix + body + _checksum(prefix + body)


def is_well_formed(raw: str) -> bool:
    if len(raw) != KEY_LENGTH or not raw.startswith((LIVE_PREFIX, TEST_PREFIX)):
        return False
    head, check = raw[:-CHECKSUM_CHARS], raw[-CHECKSUM_CHARS:]
    if any(c not in BASE62 for c in raw[len(LIVE_PREFIX) :]):
        return False
    return hmac.compare_digest(_checksum(head), check)


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
