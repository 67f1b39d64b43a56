"""Every write goes through here: views, API handlers, tasks and commands call these."""

from __future__ import annotations

import contextvars
import dataclasses
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from generations import apikeys, catalog, quotas, safety, webhooks
from generations.dblock import sqlite_write_lock
from generations.engines import diffusers_config
from generations.errors import ApiError
from generations.media import fetch, images
from generations.models import (
    DEFAULT_PLAN_NAME,
    ApiKey,
    Generation,
    IdempotencyRecord,
    Invitation,
    Membership,
    Plan,
    Team,
    UsageEvent,
    User,
)
from generations.prepared import PreparedQuery
from generations.specs import DATA_URL_MARK, GenerationSpec, shorten_image_url

log = logging.getLogger(__name__)

# The Idempotency-Key record of the create request being handled (api/idempotency.py): the
# generation it makes is linked to it in the same transaction.
idempotency_record: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "idempotency_record", default=None
)

# How often last_used_at is written: a write per request would serialise the API on SQLite.
LAST_USED_RESOLUTION_S = 60
INVITE_TOKEN_CHARS = 32
INVITE_VALID_FOR = timedelta(days=7)
MANAGERS = (Membership.Role.OWNER, Membership.Role.ADMIN)
# Viewers see the team's work; everyone else may generate and make keys.
CREATORS = (*MANAGERS, Membership.Role.MEMBER)


# --- users and teams ----------------------------------------------------------------------


def user_create(
    *, email: str, password: str | None = None, name: str = "", staff: bool = False
) -> User:
    user = User.objects.create_user(email, password, name=name, is_staff=staff, is_superuser=staff)
    team_personal_get(user=user)
    return user


def team_personal_get(*, user: User) -> Team:
    """The user's personal team, created on first need (also for `createsuperuser` users)."""
    membership = (
        Membership.objects.select_related("team").filter(user=user, team__personal=True).first()
    )
    if membership:
        return membership.team
    with transaction.atomic():
        team = Team.objects.create(
            name=f"{user.name or user.email.split('@')[0]}'s team", personal=True
        )
        Membership.objects.create(team=team, user=user, role=Membership.Role.OWNER)
    return team


# --- API keys -----------------------------------------------------------------------------


def api_key_create(
    *, team: Team, user: User, name: str = "", test: bool = False
) -> tuple[ApiKey, str]:
    """Returns the key row and the raw secret, which is never stored and shown only once."""
    require_role(team=team, user=user, roles=CREATORS, action="creating API keys")
    raw = apikeys.generate(test=test)
    key = ApiKey.objects.create(
        team=team,
        user=user,
        name=name,
        prefix=raw[: len(apikeys.LIVE_PREFIX)],
        last4=raw[-4:],
        digest=apikeys.digest(raw),
        is_test=test,
    )
    return key, raw


def api_key_revoke(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=timezone.now())


# Every API request makes this lookup: compiled once (see prepared.py).
_KEY_BY_DIGEST = PreparedQuery(
    lambda digest: ApiKey.objects.select_related("team", "team__plan", "user").filter(
        digest=digest
    ),
    digest="\x00digest",
)


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
    if not apikeys.is_well_formed(raw):
        raise ApiError(401, "invalid_api_key", "The API key is malformed (check for a typo).")
    key = _KEY_BY_DIGEST.first(digest=apikeys.digest(raw))
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


# --- generations --------------------------------------------------------------------------


@dataclass(frozen=True)
class InputImage:
    data: bytes
    extension: str


def input_image_load(image_url: str) -> InputImage:
    """Fetch (SSRF-safe) or decode the client's image and check it is an image we accept.

    Runs in the request so that a bad image is a 400 naming `image_url`, not a failed job."""
    try:
        if image_url[:5].lower() == DATA_URL_MARK:
            data = fetch.parse_data_url(image_url, max_bytes=settings.VIDEOGEN_MAX_IMAGE_BYTES)
        else:
            data = fetch.fetch_image_bytes(
                image_url,
                max_bytes=settings.VIDEOGEN_MAX_IMAGE_BYTES,
                timeout=settings.VIDEOGEN_FETCH_TIMEOUT,
                allow_hosts=fetch.parse_allow_hosts(settings.VIDEOGEN_FETCH_ALLOW_HOSTS),
            )
        images.load_image(data)  # decodes fully: bombs and truncated files fail here
    except (fetch.FetchError, images.ImageError) as exc:
        raise ApiError(400, exc.code, exc.message, "image_url") from None
    return InputImage(
        data=data, extension=images.image_extension(images.sniff_format(data) or "PNG")
    )


def generation_create(
    *,
    team: Team,
    user: User,
    spec: GenerationSpec,
    api_key: ApiKey | None = None,
    source: str = "api",
    input_image: InputImage | None = None,
    remixed_from: Generation | None = None,
    webhook_url: str = "",
    public_base: str = "",
) -> tuple[Generation, int]:
    """Reserve usage, save the row and enqueue it atomically. Returns (generation, usage)."""
    require_role(team=team, user=user, roles=CREATORS, action="generating videos")
    if spec.enable_safety_checker:
        verdict = safety.screen_text(spec.prompt, spec.audio_prompt)
        if verdict.blocked:
            raise ApiError(
                400,
                "content_policy",
                f"The prompt was refused by the safety checker ({verdict.category}).",
                "prompt",
            )
    test_mode = bool(api_key and api_key.is_test)
    month = quotas.current_month()
    model = catalog.get_model(spec.model)
    assert model is not None  # build_spec checked it
    if model.premium and not test_mode and not team.plan.premium_allowed:
        raise ApiError(
            403,
            "premium_not_allowed",
            f"Model {model.key!r} is a premium model and this team's plan "
            f"({team.plan.name}) does not include premium models.",
            "model",
        )
    cost = Decimal(0) if test_mode else catalog.credits_for(model, spec.duration, spec.resolution)
    values = dataclasses.asdict(spec) | {"image_url": shorten_image_url(spec.image_url)}
    gen = Generation(
        team=team, user=user, api_key=api_key, source=source, test_mode=test_mode,
        remixed_from=remixed_from, webhook_url=webhook_url, public_base=public_base[:300],
        **values,
    )  # fmt: skip
    if input_image is not None:
        # Written before the transaction: the writer lock is held only for the rows.
        gen.input_image.save(
            f"{gen.generation_id}{input_image.extension}",
            ContentFile(input_image.data),
            save=False,
        )
    charged = Decimal(0) if test_mode else quotas.charge_for(team, cost)
    try:
        with sqlite_write_lock(), transaction.atomic():
            gen.save()
            record = idempotency_record.get()
            if record is not None:
                IdempotencyRecord.objects.filter(pk=record).update(generation=gen)
            if not test_mode:
                UsageEvent.objects.create(
                    team=team,
                    user=user,
                    api_key=api_key,
                    generation=gen,
                    kind=UsageEvent.Kind.CHARGE,
                    units=1,
                    credits=charged,
                    month=month,
                    model=spec.model,
                )
            if _queue_is_in_this_database():
                # The queue row commits with the generation: one write transaction, and no
                # moment where a saved generation has no task.
                generation_enqueue(generation=gen)
            else:
                transaction.on_commit(lambda: _enqueue_after_commit(gen))
            # Last: the usage rows every submit of this team contends for are locked from
            # here to the commit only (a refusal rolls back everything above).
            if test_mode:
                usage = quotas.month_usage(team, month)
            else:
                usage = quotas.reserve(team, user, month, charged).usage
    except BaseException:
        if gen.input_image:
            gen.input_image.delete(save=False)  # refused (e.g. 429): no orphan file
        raise
    return gen, usage


def _enqueue_after_commit(gen: Generation) -> None:
    """The generation is saved and charged: a broker that is down now (Redis restarting)
    must not turn that into an error. The row stays `pending` and the reaper enqueues it
    once the broker answers again (tasks.reap_stale, VIDEOGEN_PENDING_GRACE_S)."""
    try:
        generation_enqueue(generation=gen)
    except Exception:
        log.warning(
            "the broker refused generation %s; it stays pending and is enqueued again later",
            gen.generation_id,
            exc_info=True,
        )


def _queue_is_in_this_database() -> bool:
    from django_q.conf import Conf

    return bool(Conf.ORM) and not Conf.SYNC


def generation_enqueue(*, generation: Generation) -> None:
    """Hand the generation to the workers. Safe to call twice: the run claims the row.

    Diffusers jobs go to the GPU cluster's queue; everything else to the main cluster's,
    named explicitly so that a call made inside a GPU worker does not land in its queue."""
    from django_q.conf import Conf
    from django_q.tasks import async_task

    model = catalog.get_model(generation.model)
    engine = (
        catalog.engine_name_for(model, test_mode=generation.test_mode, mode=generation.mode)
        if model
        else None
    )
    gpu = engine == diffusers_config.ENGINE_NAME
    async_task(
        "generations.tasks.generation_run",
        generation.pk,
        task_name=f"generation {generation.generation_id}",
        group="generations",
        cluster=settings.VIDEOGEN_GPU_CLUSTER if gpu else Conf.PREFIX,
    )
    now = timezone.now()
    Generation.objects.filter(pk=generation.pk, status=Generation.Status.PENDING).update(
        status=Generation.Status.IN_QUEUE, queued_at=now
    )
    if generation.status == Generation.Status.PENDING:
        generation.status, generation.queued_at = Generation.Status.IN_QUEUE, now


def generation_refund(*, generation: Generation, note: str = "") -> bool:
    """Give back the charge of a generation that did not complete. Exactly once."""
    with transaction.atomic():
        charge = UsageEvent.objects.filter(
            generation=generation, kind=UsageEvent.Kind.CHARGE
        ).first()
        if charge is None:
            return False
        if UsageEvent.objects.filter(generation=generation, kind=UsageEvent.Kind.REFUND).exists():
            return False
        UsageEvent.objects.create(
            team_id=charge.team_id,
            user_id=charge.user_id,
            api_key_id=charge.api_key_id,
            generation=generation,
            kind=UsageEvent.Kind.REFUND,
            units=-1,
            credits=-charge.credits,
            month=charge.month,
            model=charge.model,
            note=note[:200],
        )
        quotas.release(charge.team_id, charge.user_id, charge.month, charge.credits)
    return True


def generation_settle(*, generation: Generation) -> None:
    """Record that a charged generation was delivered (a ledger row; nothing more moves)."""
    charge = UsageEvent.objects.filter(generation=generation, kind=UsageEvent.Kind.CHARGE).first()
    if charge is not None:
        UsageEvent.objects.get_or_create(
            generation=generation,
            kind=UsageEvent.Kind.SETTLE,
            defaults={"team_id": charge.team_id, "user_id": charge.user_id,
                      "api_key_id": charge.api_key_id, "units": 0, "credits": 0,
                      "month": charge.month, "model": charge.model},
        )  # fmt: skip


def generation_fail(
    *, generation: Generation, code: str, message: str, claim: str | None = None
) -> bool:
    """Mark failed (only from a non-final state, and only by the claim holder if given)."""
    rows = Generation.objects.filter(pk=generation.pk).exclude(status__in=Generation.FINAL_STATUSES)
    if claim is not None:
        rows = rows.filter(claim=claim)
    now = timezone.now()
    with transaction.atomic():  # the status and its refund: both or neither
        if not rows.update(
            status=Generation.Status.FAILED,
            next_poll_at=None,
            error_code=code[:40],
            error_message=message,
            finished_at=now,
            started_at=generation.started_at or now,
        ):
            return False
        generation_refund(generation=generation, note=f"failed: {code}")
        webhooks.notify(generation)
    return True


def generation_cancel(*, generation: Generation) -> bool:
    """Cancel a generation that has not finished: a queued one never starts, a running one
    stops at its next frame (the worker sees the flag). The charge is refunded either way.
    False when it was already final."""
    now = timezone.now()
    waiting = [Generation.Status.PENDING, Generation.Status.IN_QUEUE]
    with transaction.atomic():  # the status and its refund: both or neither
        if Generation.objects.filter(pk=generation.pk, status__in=waiting).update(
            status=Generation.Status.CANCELED, cancel_requested=True, finished_at=now
        ):
            generation_refund(generation=generation, note="canceled")
            webhooks.notify(generation)
            return True
    # Running: the worker finishes the cancel (status, refund) when it notices the flag.
    running = Generation.objects.filter(pk=generation.pk, status=Generation.Status.IN_PROGRESS)
    if not running.update(cancel_requested=True):
        return False
    # Waiting on a provider: poll now, so the cancel reaches it without waiting for backoff.
    running.filter(next_poll_at__isnull=False).update(next_poll_at=now)
    return True


def generation_again(
    *,
    generation: Generation,
    user: User,
    api_key: ApiKey | None = None,
    source: str = "dashboard",
    prompt: str | None = None,
) -> Generation:
    """A new generation with the same request (same seed and input image): a retry after
    a failure, or, with a new prompt, a remix (recorded as remixed from the original)."""
    from generations.tasks import spec_for

    image = None
    if generation.input_image:
        with generation.input_image.open("rb") as fh:
            image = InputImage(
                data=fh.read(), extension="." + generation.input_image.name.rsplit(".", 1)[-1]
            )
    spec = spec_for(generation)
    if prompt is not None:
        spec = dataclasses.replace(spec, prompt=prompt)
    gen, _ = generation_create(
        team=generation.team, user=user, api_key=api_key, spec=spec, source=source,
        input_image=image, remixed_from=generation if prompt is not None else None,
    )  # fmt: skip
    return gen


def api_key_regenerate(*, key: ApiKey) -> tuple[ApiKey, str]:
    """Revoke a key and make a new one with the same name, team and kind."""
    with transaction.atomic():
        api_key_revoke(key=key)
        return api_key_create(team=key.team, user=key.user, name=key.name, test=key.is_test)


SHARE_TOKEN_CHARS = 22  # 131 bits: the link is the only credential of a shared page


def generation_share(*, generation: Generation) -> str:
    """Make (or keep) the public page of a finished generation; returns its token."""
    from generations.models import random_base62

    if generation.share_token:
        return generation.share_token
    token = random_base62(SHARE_TOKEN_CHARS)
    Generation.objects.filter(pk=generation.pk, share_token=None).update(
        share_token=token, shared_at=timezone.now()
    )
    generation.refresh_from_db(fields=["share_token", "shared_at"])
    assert generation.share_token is not None
    return generation.share_token


def generation_unshare(*, generation: Generation) -> None:
    Generation.objects.filter(pk=generation.pk).update(share_token=None, shared_at=None)
    generation.share_token = None


def generation_delete(*, generation: Generation) -> None:
    """Remove a generation and its files. A job still running is canceled first."""
    if not generation.is_final:
        generation_cancel(generation=generation)
    for name in ("video", "poster", "preview", "spritesheet", "input_image"):
        stored = getattr(generation, name)
        if stored:
            stored.delete(save=False)
    generation.delete()


def team_gallery_set(*, team: Team, public: bool) -> None:
    """Publish (or hide) the team's gallery of shared videos at /g/<slug>."""
    from django.utils.text import slugify

    from generations.models import random_base62

    if public and not team.gallery_slug:
        team.gallery_slug = f"{slugify(team.name)[:24] or 'team'}-{random_base62(8).lower()}"
    team.gallery_public = public
    team.save(update_fields=["gallery_public", "gallery_slug"])


def team_set_plan_limits(*, team: Team, **limits: object) -> Plan:
    """Change one team's limits. A plan shared with other teams is not edited: the team
    gets its own copy first."""
    plan = team.plan
    if plan.teams.exclude(pk=team.pk).exists() or plan.name == DEFAULT_PLAN_NAME:
        plan = Plan.objects.create(
            name=f"{team.name} (custom {team.code.hex[:8]})",
            monthly_limit=plan.monthly_limit,
            premium_allowed=plan.premium_allowed,
            member_monthly_cap=plan.member_monthly_cap,
            requests_per_minute=plan.requests_per_minute,
        )
        team.plan = plan
        team.save(update_fields=["plan"])
    for name, value in limits.items():
        setattr(plan, name, value)
    plan.save()
    return plan


def team_grant_credits(*, team: Team, amount: Decimal, note: str = "") -> None:
    """Add credits (an admin action); a team without credits starts paying in credits."""
    with transaction.atomic():
        updated = Team.objects.filter(pk=team.pk, credits__isnull=False).update(
            credits=F("credits") + amount
        )
        if not updated:
            Team.objects.filter(pk=team.pk).update(credits=amount)
        UsageEvent.objects.create(
            team=team, kind=UsageEvent.Kind.GRANT, units=0, credits=amount,
            month=quotas.current_month(), model="", note=note[:200],
        )  # fmt: skip
    team.refresh_from_db(fields=["credits"])


# --- teams --------------------------------------------------------------------------------


def membership_get(*, team: Team, user: User) -> Membership | None:
    return Membership.objects.filter(team=team, user=user).first()


def require_role(*, team: Team, user: User, roles: tuple[str, ...], action: str) -> Membership:
    membership = membership_get(team=team, user=user)
    if membership is None or membership.role not in roles:
        raise ApiError(403, "forbidden", f"Your role on this team does not allow {action}.")
    return membership


def team_create(*, name: str, owner: User) -> Team:
    with transaction.atomic():
        team = Team.objects.create(name=name.strip()[:100] or "Untitled team")
        Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    return team


def invitation_create(
    *, team: Team, email: str, role: str, invited_by: User
) -> tuple[Invitation, str]:
    """Returns the invitation and the raw token for the link (sent by e-mail, not stored)."""
    from generations.models import random_base62

    require_role(team=team, user=invited_by, roles=MANAGERS, action="inviting people")
    if role not in Membership.Role.values:
        raise ApiError(400, "invalid_parameter", "Unknown role.", "role")
    if role == Membership.Role.OWNER:
        require_role(team=team, user=invited_by, roles=(Membership.Role.OWNER,),
                     action="inviting owners")  # fmt: skip
    token = random_base62(INVITE_TOKEN_CHARS)
    invitation = Invitation.objects.create(
        team=team,
        email=email.strip().lower(),
        role=role,
        token_digest=apikeys.digest(token),
        invited_by=invited_by,
        expires_at=timezone.now() + INVITE_VALID_FOR,
    )
    return invitation, token


def invitation_find(token: str) -> Invitation | None:
    """A usable invitation for this token: not accepted and not expired."""
    return (
        Invitation.objects.select_related("team")
        .filter(token_digest=apikeys.digest(token), accepted_at=None, expires_at__gt=timezone.now())
        .first()
    )


def invitation_accept(*, token: str, user: User) -> Membership:
    invitation = invitation_find(token)
    if invitation is None:
        raise ApiError(404, "invalid_invitation", "This invitation is invalid, used or expired.")
    with transaction.atomic():
        # Single use: only the first accept flips accepted_at.
        if not Invitation.objects.filter(pk=invitation.pk, accepted_at=None).update(
            accepted_at=timezone.now(), accepted_by=user
        ):
            raise ApiError(404, "invalid_invitation", "This invitation was already used.")
        membership, created = Membership.objects.get_or_create(
            team=invitation.team, user=user, defaults={"role": invitation.role}
        )
    return membership


def membership_remove(*, team: Team, user: User, by: User) -> None:
    """Remove a member (managers) or leave (yourself). A team always keeps an owner."""
    target = membership_get(team=team, user=user)
    if target is None:
        raise ApiError(404, "not_found", "Not a member of this team.")
    if user != by:
        actor = require_role(team=team, user=by, roles=MANAGERS, action="removing members")
        if target.role == Membership.Role.OWNER and actor.role != Membership.Role.OWNER:
            raise ApiError(403, "forbidden", "Only an owner can remove an owner.")
    if team.personal and target.role == Membership.Role.OWNER:
        raise ApiError(403, "forbidden", "You cannot leave your personal team.")
    owners = Membership.objects.filter(team=team, role=Membership.Role.OWNER)
    if target.role == Membership.Role.OWNER and owners.count() == 1:
        raise ApiError(403, "forbidden", "A team needs an owner: make someone else owner first.")
    with transaction.atomic():
        target.delete()
        # Their keys for this team stop working with their membership.
        ApiKey.objects.filter(team=team, user=user, revoked_at=None).update(
            revoked_at=timezone.now()
        )


def membership_set_role(*, team: Team, user: User, role: str, by: User) -> None:
    actor = require_role(team=team, user=by, roles=MANAGERS, action="changing roles")
    if role not in Membership.Role.values:
        raise ApiError(400, "invalid_parameter", "Unknown role.", "role")
    target = membership_get(team=team, user=user)
    if target is None:
        raise ApiError(404, "not_found", "Not a member of this team.")
    if Membership.Role.OWNER in (role, target.role) and actor.role != Membership.Role.OWNER:
        raise ApiError(403, "forbidden", "Only an owner can make or unmake owners.")
    if (
        target.role == Membership.Role.OWNER
        and role != Membership.Role.OWNER
        and Membership.objects.filter(team=team, role=Membership.Role.OWNER).count() == 1
    ):
        raise ApiError(403, "forbidden", "A team needs an owner.")
    Membership.objects.filter(pk=target.pk).update(role=role)
