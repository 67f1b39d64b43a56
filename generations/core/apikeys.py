"""API keys: their format, and every write about them (create, revoke, regenerate) and the
lookup every API request makes.

Format: `vg_live_` / `vg_test_` + 32 random base62 + a 6-character checksum. The checksum
(CRC32, base62) lets us reject mistyped or made-up keys without a database query, and lets
secret scanners recognise our keys. Only a SHA-256 digest is stored."""

from __future__ import annotations

import hmac
import zlib

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from generations.core.accounts import CREATORS, require_role
from generations.db.prepared import PreparedQuery
from generations.errors import ApiError
from generations.ids import BASE62, digest, random_base62
from generations.models import ApiKey, Membership, Team, User

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


# How often last_used_at is written: a write per request would serialise the API on SQLite.
LAST_USED_RESOLUTION_S = 60


def api_key_create(
    *, team: Team, user: User, name: str = "", test: bool = False
) -> tuple[ApiKey, str]:
    """Returns the key row and the raw secret, which is never stored and shown only once."""
    require_role(team=team, user=user, roles=CREATORS, action="creating API keys")
    raw = generate(test=test)
    key = ApiKey.objects.create(
        team=team,
        user=user,
        name=name,
        prefix=raw[: len(LIVE_PREFIX)],
        last4=raw[-4:],
        digest=digest(raw),
        is_test=test,
    )
    return key, raw


def api_key_revoke(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=timezone.now())


def api_key_regenerate(*, key: ApiKey) -> tuple[ApiKey, str]:
    """Revoke a key and make a new one with the same name, team and kind."""
    with transaction.atomic():
        api_key_revoke(key=key)
        return api_key_create(team=key.team, user=key.user, name=key.name, test=key.is_test)


# Every API request makes this lookup: compiled once (see db/prepared.py).
# The key with its team, plan and user, and the user's role on that team (a submit checks
# it: one query fewer than reading the membership apart; None when not a member).
_KEY_BY_DIGEST = PreparedQuery(
    lambda digest: (
        ApiKey.objects.select_related("team", "team__plan", "user")
        .annotate(
            member_role=Subquery(
                Membership.objects.filter(
                    team_id=OuterRef("team_id"), user_id=OuterRef("user_id")
                ).values("role")[:1]
            )
        )
        .filter(digest=digest)
    ),
    digest="\x00digest",
)


def member_role(key: ApiKey) -> str | None:
    """The role of the key's user on its team as read with the key by
    api_key_authenticate; None for a key read otherwise (or a user no longer a member)."""
    role = getattr(key, "member_role", None)
    return role if isinstance(role, str) else None


def api_key_authenticate(header: str | None) -> ApiKey:
    """The key for an `Authorization: Bearer ...` header, or ApiError(401) saying why not."""
    if not header:
        raise ApiError(
            401, "missing_api_key", "Send your API key as `Authorization: Bearer <key>`."
        )
    scheme, _, raw = header.strip().partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw:
        raise ApiError(401, "invalid_authorization", "Use the form `Authorization: Bearer <key>`.")
    if not is_well_formed(raw):
        raise ApiError(401, "invalid_api_key", "The API key is malformed (check for a typo).")
    key = _KEY_BY_DIGEST.first(digest=digest(raw))
    if key is None:
        raise ApiError(401, "invalid_api_key", "The API key is not known to this server.")
    if key.revoked_at is not None:
        raise ApiError(401, "revoked_api_key", "This API key has been revoked.")
    if not key.user.is_active:
        raise ApiError(401, "inactive_user", "The owner of this API key is deactivated.")
    now = timezone.now()
    if (
        key.last_used_at is None
        or (now - key.last_used_at).total_seconds() > LAST_USED_RESOLUTION_S
    ):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
