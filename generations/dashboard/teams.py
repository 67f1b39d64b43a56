"""Teams: the list (and creating one), the team switcher, a team's page, its member
management (invite, change a role, remove or leave: one POST URL each) and accepting an
invitation."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generations.core import accounts
from generations.dashboard.access import (
    current_team,
    current_team_set,
    membership_or_404,
    request_user,
    same_site_path,
)
from generations.dashboard.confirm import ask_first
from generations.errors import ApiError
from generations.models import Membership, Team, User


@login_required
@require_http_methods(["GET", "POST"])
def teams(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        before = current_team(request)
        team = accounts.team_create(name=request.POST.get("name", ""), owner=request_user(request))
        current_team_set(request, team)
        messages.info(
            request,
            f"Created {team.name}. You now work in it: what you generate, History and the "
            f"Gallery are {team.name}'s. {before.name}'s generations are where they were; "
            "switch back with the team menu at the top.",
        )
        return redirect("team", code=team.code)
    memberships = Membership.objects.filter(user=request_user(request)).select_related(
        "team", "team__plan"
    )
    return render(
        request,
        "teams.html",
        {"memberships": memberships.order_by("team__name"), "current": current_team(request)},
    )


@login_required
@require_POST
def team_switch(request: HttpRequest) -> HttpResponse:
    membership = membership_or_404(request, request.POST.get("team", ""))
    current_team_set(request, membership.team)
    messages.info(request, f"Now working in {membership.team.name}.")
    return redirect(same_site_path(request, request.POST.get("next")) or "generate")


def _render_team(
    request: HttpRequest, mine: Membership, *, invite_link: str | None = None
) -> HttpResponse:
    members = (
        Membership.objects.filter(team=mine.team).select_related("user").order_by("user__email")
    )
    pending = mine.team.invitations.filter(accepted_at=None, expires_at__gt=timezone.now())
    return render(
        request,
        "team.html",
        {
            "team": mine.team,
            "mine": mine,
            "members": members,
            "roles": Membership.Role.choices,
            "pending": pending,
            "invite_link": invite_link,
            "can_manage": mine.role in accounts.MANAGERS,
        },
    )


@login_required
@require_GET
def team(request: HttpRequest, code: uuid.UUID) -> HttpResponse:
    return _render_team(request, membership_or_404(request, code))


@login_required
@require_POST
def team_invite(request: HttpRequest, code: uuid.UUID) -> HttpResponse:
    """Invite someone by e-mail. The page is rendered here rather than redirected to: the
    link is shown this once, and is never put in the session or a URL."""
    mine = membership_or_404(request, code)
    invite_link = None
    try:
        invitation, token = accounts.invitation_create(
            team=mine.team,
            email=request.POST.get("email", ""),
            role=request.POST.get("role", Membership.Role.MEMBER),
            invited_by=request_user(request),
        )
        invite_link = request.build_absolute_uri(f"/invite/{token}")
        send_mail(
            f"Join {mine.team.name} on videogen",
            f"{request_user(request).email} invites you to {mine.team.name} as "
            f"{invitation.role}.\n\nAccept within 7 days: {invite_link}\n",
            None,
            [invitation.email],
        )
    except ApiError as exc:
        messages.error(request, exc.message)
    except ValueError:  # send_mail refuses an address with a line break (message as before)
        messages.error(request, "No such member.")
    return _render_team(request, mine, invite_link=invite_link)


def _member(user_id: int) -> User | None:
    return User.objects.filter(pk=user_id).first()


def _member_change(
    request: HttpRequest, code: uuid.UUID, user_id: int, change: Callable[[Team, User], None]
) -> tuple[Membership, User | None]:
    """`change` applied to a member of the team (a service call that checks the actor's
    role); (my membership, the member), or None for the member when it was refused, the
    reason in a message."""
    mine = membership_or_404(request, code)
    target = _member(user_id)
    if target is None:
        messages.error(request, "No such member.")
        return mine, None
    try:
        change(mine.team, target)
    except ApiError as exc:
        messages.error(request, exc.message)
        return mine, None
    return mine, target


@login_required
@require_POST
def team_member_role(request: HttpRequest, code: uuid.UUID, user_id: int) -> HttpResponse:
    role = request.POST.get("role", "")
    mine, _ = _member_change(
        request, code, user_id,
        lambda team, user: accounts.membership_set_role(
            team=team, user=user, role=role, by=request_user(request)
        ),
    )  # fmt: skip
    return redirect("team", code=mine.team.code)


@login_required
@require_POST
def team_member_remove(request: HttpRequest, code: uuid.UUID, user_id: int) -> HttpResponse:
    """Remove a member (managers), or leave the team (yourself: back to the team list)."""
    actor = request_user(request)
    mine = membership_or_404(request, code)
    target = _member(user_id)
    if target is not None:
        question = (
            f"Leave {mine.team.name}? You lose access to its generations, and your keys "
            "for it are revoked."
            if target == actor
            else f"Remove {target.email} from {mine.team.name}? Their keys for it are revoked."
        )
        asked = ask_first(request, question, "Leave team" if target == actor else "Remove")
        if asked is not None:
            return asked
    mine, removed = _member_change(
        request, code, user_id,
        lambda team, user: accounts.membership_remove(team=team, user=user, by=actor),
    )  # fmt: skip
    if removed is not None and removed == request.user:
        current_team_set(request, None)
        messages.info(request, f"You left {mine.team.name}.")
        return redirect("teams")
    return redirect("team", code=mine.team.code)


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    found = accounts.invitation_find(token)
    if found is None:
        return render(request, "invitation.html", {"invalid": True}, status=404)
    if request.method == "POST" and request.user.is_authenticated:
        membership = accounts.invitation_accept(token=token, user=request_user(request))
        current_team_set(request, membership.team)
        messages.success(request, f"You joined {membership.team.name}.")
        return redirect("generate")
    return render(request, "invitation.html", {"invitation": found, "token": token})
