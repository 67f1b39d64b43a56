"""The team's webhooks page: endpoints, the signing secret and the delivery log."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from generations import services, webhooks
from generations.dashboard.access import current_team, request_user
from generations.errors import ApiError
from generations.models import Team, WebhookDelivery, WebhookEndpoint

DELIVERY_LOG_SIZE = 50


@login_required
@require_http_methods(["GET", "POST"])
def webhooks_page(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    membership = services.membership_get(team=team, user=request_user(request))
    can_manage = membership is not None and membership.role in services.MANAGERS
    reveal = False
    if request.method == "POST":
        if not can_manage:
            messages.error(request, "Only owners and admins manage webhooks.")
            return redirect("webhooks")
        action = request.POST.get("action")
        try:
            if action == "add":
                url = webhooks.validate_url(request.POST.get("url", ""), "url")
                if url:
                    WebhookEndpoint.objects.get_or_create(team=team, url=url)
            elif action == "remove":
                endpoint = request.POST.get("endpoint", "")
                if endpoint.isdigit():
                    WebhookEndpoint.objects.filter(team=team, pk=int(endpoint)).delete()
            elif action == "rotate":
                Team.objects.filter(pk=team.pk).update(
                    webhook_secret_version=F("webhook_secret_version") + 1
                )
                team.refresh_from_db()
                messages.info(request, "New signing secret: update your receivers.")
                reveal = True
            elif action == "reveal":
                reveal = True
        except ApiError as exc:
            messages.error(request, exc.message)
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
