"""Signing in (behind the login throttle) and signing up (open, or by invitation only)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import LoginView as DjangoLoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from generations.core import accounts
from generations.dashboard.access import current_team_set
from generations.dashboard.forms import LoginForm, SignupForm


class LoginView(DjangoLoginView):
    """Django's login view with the login throttle (generations/dashboard/throttle.py)."""

    authentication_form = LoginForm

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if getattr(form, "throttled", 0):
            response.status_code = 429
            response["Retry-After"] = str(form.throttled)
        return response


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("invite", "")
    invited = accounts.invitation_find(token) if token else None
    if settings.VIDEOGEN_SIGNUP != "open" and invited is None:
        return render(request, "registration/signup_closed.html", status=403)
    form = SignupForm(request.POST or None, initial={"email": invited.email if invited else ""})
    if request.method == "POST" and form.is_valid():
        user = form.save()
        accounts.team_personal_get(user=user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if invited is not None:
            membership = accounts.invitation_accept(token=token, user=user)
            current_team_set(request, membership.team)
        messages.success(request, "Welcome to videogen.")
        return redirect("generate")
    return render(request, "registration/signup.html", {"form": form, "invite": token})
