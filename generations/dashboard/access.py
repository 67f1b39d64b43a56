"""Who is asking and in which team: the current team (the team switcher's choice, else the
personal team) and the lookups of a team's things that answer 404 to everyone else."""

from __future__ import annotations

import uuid

from django.http import Http404, HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from generations.core import accounts
from generations.models import Generation, Membership, Team, User

# The session key holding the code of the team the user switched to.
CURRENT_TEAM_KEY = "videogen_team"


def request_user(request: HttpRequest) -> User:
    """The logged-in user (every caller is behind login_required)."""
    assert isinstance(request.user, User)
    return request.user


def current_team(request: HttpRequest) -> Team:
    """The team the user works in (chosen with the team switcher), else their personal one."""
    code = request.session.get(CURRENT_TEAM_KEY)
    if code:
        membership = (
            Membership.objects.select_related("team", "team__plan")
            .filter(user=request_user(request), team__code=code)
            .first()
        )
        if membership is not None:
            return membership.team
        # Left or removed since: forget the choice rather than fail every page.
        request.session.pop(CURRENT_TEAM_KEY, None)
    return accounts.team_personal_get(user=request_user(request))


def team_generation_or_404(request: HttpRequest, generation_id: str) -> Generation:
    """The generation if it belongs to the user's team; anyone else gets a 404."""
    gen = Generation.objects.filter(team=current_team(request), generation_id=generation_id).first()
    if gen is None:
        raise Http404("No such generation")
    return gen


def membership_or_404(request: HttpRequest, code: object) -> Membership:
    """The user's membership of the team with this code; a 404 when they are not in it."""
    try:
        uuid.UUID(str(code))
    except ValueError:
        raise Http404("No such team") from None
    membership = (
        Membership.objects.select_related("team")
        .filter(user=request_user(request), team__code=str(code))
        .first()
    )
    if membership is None:
        raise Http404("No such team")
    return membership


def same_site_path(request: HttpRequest, target: str | None) -> str | None:
    """`target` when it is a path on this site (a `next` to go back to), else None: never
    a redirect to another host, whatever its spelling (//evil, /\\evil, https:evil)."""
    if not target or not target.startswith("/"):
        return None
    if not url_has_allowed_host_and_scheme(target, allowed_hosts=None, require_https=False):
        return None
    return target
