"""Who is asking and in which team: the current team (the team switcher's choice, else the
personal team) and the lookups of a team's things that answer 404 to everyone else."""

from __future__ import annotations

import uuid
from typing import TypeVar

from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.utils.functional import SimpleLazyObject
from django.utils.http import url_has_allowed_host_and_scheme

from generations.core import accounts
from generations.models import Batch, Generation, Membership, Sequence, Team, User

# The session key holding the code of the team the user switched to.
CURRENT_TEAM_KEY = "videogen_team"
# What a team owns and a page shows by its id.
Owned = TypeVar("Owned", Generation, Batch, Sequence)


def request_user(request: HttpRequest) -> User:
    """The logged-in user (every caller is behind login_required)."""
    assert isinstance(request.user, User)
    return request.user


def current_team(request: HttpRequest) -> Team:
    """The team the user works in (chosen with the team switcher), else their personal one;
    looked up once per request (the view and the header's switcher both ask)."""
    cached = getattr(request, "_videogen_team", None)
    if cached is not None:
        assert isinstance(cached, Team)
        return cached
    team: Team | None = None
    code = request.session.get(CURRENT_TEAM_KEY)
    if code:
        membership = (
            Membership.objects.select_related("team", "team__plan")
            .filter(user=request_user(request), team__code=code)
            .first()
        )
        if membership is not None:
            team = membership.team
        else:
            # Left or removed since: forget the choice rather than fail every page.
            request.session.pop(CURRENT_TEAM_KEY, None)
    if team is None:
        team = accounts.team_personal_get(user=request_user(request))
    request._videogen_team = team  # type: ignore[attr-defined]
    return team


def current_team_set(request: HttpRequest, team: Team | None) -> None:
    """Work in `team` from now on (None: the personal team)."""
    if team is None:
        request.session.pop(CURRENT_TEAM_KEY, None)
    else:
        request.session[CURRENT_TEAM_KEY] = str(team.code)
    request._videogen_team = team  # type: ignore[attr-defined]


def team_generation_or_404(request: HttpRequest, generation_id: str) -> Generation:
    """The generation if it belongs to one of the user's teams; anyone else gets a 404.

    One of another of the user's teams than the current one (a link from before a switch,
    or shared by a teammate) is theirs as much: the user is switched to its team, and told
    so, so that what they see next (History, the Gallery, Generate) is that team's."""
    return _in_my_teams_or_404(
        request, Generation.objects.filter(generation_id=generation_id), "generation"
    )


def team_batch_or_404(request: HttpRequest, batch_id: str) -> Batch:
    """The batch if it belongs to one of the user's teams (switching to that team, as
    team_generation_or_404 does); anyone else gets a 404."""
    return _in_my_teams_or_404(
        request, Batch.objects.filter(batch_id=batch_id).select_related("pick"), "batch"
    )


def team_sequence_or_404(request: HttpRequest, sequence_id: str) -> Sequence:
    """The sequence if it belongs to one of the user's teams (switching to that team, as
    team_generation_or_404 does); anyone else gets a 404."""
    return _in_my_teams_or_404(
        request, Sequence.objects.filter(sequence_id=sequence_id), "sequence"
    )


def can_create(request: HttpRequest, team: Team) -> bool:
    """Whether the user's role on `team` lets them make things (members and up; viewers
    look): which actions a page offers. The services check the role again."""
    membership = accounts.membership_get(team=team, user=request_user(request))
    return membership is not None and membership.role in accounts.CREATORS


def _in_my_teams_or_404(request: HttpRequest, rows: QuerySet[Owned], what: str) -> Owned:
    """The row of `rows` in the current team, or else in another of the user's teams (then
    switching to it, and saying so); a 404 for anyone else."""
    found = rows.filter(team=current_team(request)).first()
    if found is None:
        found = (
            rows.select_related("team")
            .filter(team__memberships__user=request_user(request))
            .first()
        )
        if found is None:
            raise Http404(f"No such {what}")
        current_team_set(request, found.team)
        messages.info(request, f"Switched to {found.team.name}, the team this {what} is in.")
    return found


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


# The pages that show the current team's things and mean the same after a switch.
TEAM_PAGES = frozenset(
    {
        "generate",
        "history",
        "gallery",
        "usage",
        "api-keys",
        "webhooks",
        "teams",
        "batches",
        "queue",
        "sequences",
        "sequence-new",
    }
)


def team_switcher(request: HttpRequest) -> dict[str, object]:
    """Template context for the header's team switcher: the signed-in user's current team
    and all of theirs. All lazy: read only where the header draws the switcher (for a
    signed-in user), never by an error page (a 503 while the database is away) or a page
    the lean API handler renders (no session there)."""

    def memberships() -> list[Membership]:
        rows = Membership.objects.filter(user=request_user(request)).select_related("team")
        return list(rows.order_by("-team__personal", "team__name"))

    match = request.resolver_match
    here = match.url_name if match is not None else None
    return {
        "switcher_team": SimpleLazyObject(lambda: current_team(request)),
        "switcher_memberships": SimpleLazyObject(memberships),
        # After switching, the same page for the new team where it has one; a page of one
        # object (a generation, a team) belongs to the old team, so Generate instead.
        "switcher_next": request.path if here in TEAM_PAGES else "/generate",
    }
