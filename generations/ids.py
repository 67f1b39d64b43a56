"""Identifiers and secrets: random base62 tokens and the digest under which a secret is
stored (API keys, invitation links). No Django: any layer may use them."""

from __future__ import annotations

import hashlib
import secrets
import string

BASE62 = string.digits + string.ascii_letters


def random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def new_generation_id() -> str:
    # 24 base62 characters = 142 bits: unguessable, so the public video link is safe to share.
    return "gen_" + random_base62(24)


def new_batch_id() -> str:
    return "bat_" + random_base62(24)


def new_sequence_id() -> str:
    return "seq_" + random_base62(24)


def digest(secret: str) -> str:
    """What is stored of a secret shown once (an API key, an invitation token)."""
    return hashlib.sha256(secret.encode()).hexdigest()
