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


def split_keys(raw: str) -> list[str]:
    """A provider credential setting as its pool of keys: several may be given,
    comma-separated (`FAL_KEY=k1,k2`); blanks are dropped, so ", ," is no key at all."""
    return list(dict.fromkeys(key.strip() for key in raw.split(",") if key.strip()))


def key_fingerprint(key: str) -> str:
    """How a provider key is named wherever it must be named (rows, logs, /healthz): a
    prefix of its SHA-256, never the key. Fits ProviderKey.fingerprint (16 characters)."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:8]
