"""The team's API keys: create (the raw key is shown once), revoke, regenerate."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from generations.core import apikeys
from generations.dashboard.access import current_team, request_user
from generations.dashboard.confirm import ask_first
from generations.errors import ApiError
from generations.models import ApiKey


@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    created = None
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:100]
        try:
            _, created = apikeys.api_key_create(
                team=team,
                user=request_user(request),
                name=name,
                test=request.POST.get("kind") == "test",
            )
        except ApiError as exc:
            messages.error(request, exc.message)
    keys = ApiKey.objects.filter(team=team).select_related("user").order_by("-created_at")
    return render(request, "api_keys.html", {"keys": keys, "created": created})


def _team_key(request: HttpRequest, pk: int) -> ApiKey:
    key = ApiKey.objects.filter(team=current_team(request), pk=pk).first()
    if key is None:
        raise Http404("No such key")
    return key


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    key = _team_key(request, pk)
    asked = ask_first(request, f"Revoke the key {key.display}? Anything using it stops working "
                               "at once.", "Revoke")  # fmt: skip
    if asked is not None:
        return asked
    apikeys.api_key_revoke(key=key)
    messages.info(request, "Key revoked: requests made with it now get 401.")
    return redirect("api-keys")


@login_required
@require_POST
def api_key_regenerate(request: HttpRequest, pk: int) -> HttpResponse:
    old = _team_key(request, pk)
    asked = ask_first(request, f"Regenerate the key {old.display}? The old key stops working at "
                               "once; the new one is shown once.", "Regenerate")  # fmt: skip
    if asked is not None:
        return asked
    _, raw = apikeys.api_key_regenerate(key=old)
    keys = ApiKey.objects.filter(team=old.team).select_related("user").order_by("-created_at")
    return render(request, "api_keys.html", {"keys": keys, "created": raw})
