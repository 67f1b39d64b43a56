"""Writes about people and teams: users, personal and shared teams, roles, invitations."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from generations.errors import ApiError
from generations.ids import digest, random_base62
from generations.models import ApiKey, Invitation, Membership, Team, User

INVITE_TOKEN_CHARS = 32
INVITE_VALID_FOR = timedelta(days=7)
MANAGERS = (Membership.Role.OWNER, Membership.Role.ADMIN)
# Viewers see the team's work; everyone else may generate and make keys.
CREATORS = (*MANAGERS, Membership.Role.MEMBER)


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
        token_digest=digest(token),
        invited_by=invited_by,
        expires_at=timezone.now() + INVITE_VALID_FOR,
    )
    return invitation, token


def invitation_find(token: str) -> Invitation | None:
    """A usable invitation for this token: not accepted and not expired."""
    return (
        Invitation.objects.select_related("team")
        .filter(token_digest=digest(token), accepted_at=None, expires_at__gt=timezone.now())
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
