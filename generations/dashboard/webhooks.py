"""The team's webhooks page (endpoints, signing secret, delivery log) and its actions, one
POST URL each: add or remove an endpoint, rotate or reveal the secret (owners and admins)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from generations.core import accounts, webhooks
from generations.dashboard.access import current_team, request_user
from generations.dashboard.confirm import ask_first
from generations.errors import ApiError
from generations.models import Team, WebhookDelivery, WebhookEndpoint

DELIVERY_LOG_SIZE = 50


def _can_manage(request: HttpRequest, team: Team) -> bool:
    membership = accounts.membership_get(team=team, user=request_user(request))
    return membership is not None and membership.role in accounts.MANAGERS


def _managed_team(request: HttpRequest) -> Team | None:
    """The current team when the user manages its webhooks; else None, with the message."""
    team = current_team(request)
    if not _can_manage(request, team):
        messages.error(request, "Only owners and admins manage webhooks.")
        return None
    return team


def _render(request: HttpRequest, team: Team, *, reveal: bool = False) -> HttpResponse:
    can_manage = _can_manage(request, team)
    deliveries = WebhookDelivery.objects.filter(team=team).order_by("-created_at")
    return render(
        request,
        "webhooks.html",
        {
            "team": team,
            "endpoints": team.webhook_endpoints.order_by("url"),
            "deliveries": deliveries[:DELIVERY_LOG_SIZE],
            "secret": webhooks.team_secret(team) if reveal and can_manage else None,
            "can_manage": can_manage,
        },
    )


@login_required
@require_GET
def webhooks_page(request: HttpRequest) -> HttpResponse:
    return _render(request, current_team(request))


@login_required
@require_POST
def endpoint_add(request: HttpRequest) -> HttpResponse:
    team = _managed_team(request)
    if team is not None:
        try:
            url = webhooks.validate_url(request.POST.get("url", ""), "url")
        except ApiError as exc:
            messages.error(request, exc.message)
        else:
            if url:
                webhooks.endpoint_add(team=team, url=url)
    return redirect("webhooks")


@login_required
@require_POST
def endpoint_remove(request: HttpRequest, pk: int) -> HttpResponse:
    team = _managed_team(request)
    if team is None:
        return redirect("webhooks")
    endpoint = WebhookEndpoint.objects.filter(team=team, pk=pk).first()
    if endpoint is None:  # one outside the team is a 404, as on every dashboard route
        raise Http404("No such endpoint")
    asked = ask_first(request, f"Remove the endpoint {endpoint.url}? It gets no more events.",
                      "Remove")  # fmt: skip
    if asked is not None:
        return asked
    if not webhooks.endpoint_remove(team=team, pk=pk):
        raise Http404("No such endpoint")
    return redirect("webhooks")


@login_required
@require_POST
def secret_rotate(request: HttpRequest) -> HttpResponse:
    """A new signing secret, shown on the page this renders (never put in a URL)."""
    if _can_manage(request, current_team(request)):
        asked = ask_first(request, "Rotate the signing secret? Receivers must switch to the new "
                                   "one: events are signed with it from now on.",
                          "Rotate secret")  # fmt: skip
        if asked is not None:
            return asked
    return _show_secret(request, rotate=True)


@login_required
@require_POST
def secret_reveal(request: HttpRequest) -> HttpResponse:
    """The signing secret, shown on the page this renders: on request only, never in a URL."""
    return _show_secret(request, rotate=False)


def _show_secret(request: HttpRequest, *, rotate: bool) -> HttpResponse:
    team = _managed_team(request)
    if team is None:
        return redirect("webhooks")
    if rotate:
        webhooks.secret_rotate(team=team)
        messages.info(request, "New signing secret: update your receivers.")
    return _render(request, team, reveal=True)
