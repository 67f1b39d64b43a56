"""Dashboard pages: server-rendered, with HTMX fragments (named partials) for live parts.

Every hx-get/hx-post has a working href/action too: the pages work without JavaScript."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView as DjangoLoginView
from django.core.mail import send_mail
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generations import catalog, csp, health, metrics, quotas, reports, services, specs, webhooks
from generations.api.files import serve_file
from generations.dashboard.forms import GenerateForm, LoginForm, SignupForm
from generations.errors import ApiError
from generations.models import (
    ApiKey,
    Generation,
    Membership,
    Team,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)

HISTORY_PAGE_SIZE = 20


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


CURRENT_TEAM_KEY = "videogen_team"


def current_team(request: HttpRequest) -> Team:
    """The team the user works in (chosen with the team switcher), else their personal one."""
    code = request.session.get(CURRENT_TEAM_KEY)
    if code:
        membership = (
            Membership.objects.select_related("team", "team__plan")
            .filter(user=_user(request), team__code=code)
            .first()
        )
        if membership is not None:
            return membership.team
        request.session.pop(CURRENT_TEAM_KEY, None)
    return services.team_personal_get(user=_user(request))


def _team_generation(request: HttpRequest, generation_id: str) -> Generation:
    """The generation if it belongs to the user's team; anyone else gets a 404."""
    gen = Generation.objects.filter(team=current_team(request), generation_id=generation_id).first()
    if gen is None:
        raise Http404("No such generation")
    return gen


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("generate")
    return render(
        request,
        "home.html",
        {
            "models": catalog.MODELS,
            "available": {m.key for m in catalog.MODELS if catalog.is_available(m)},
            "base": f"{request.scheme}://{request.get_host()}",
            "signup_open": settings.VIDEOGEN_SIGNUP == "open",
        },
    )


def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers: 200 when the database, the broker and the storage answer (the
    status says "degraded" when the worker heartbeat is stale), 503 otherwise. See
    generations/health.py for what each check does and why the worker is not critical."""
    code, body = health.run_checks()
    response = JsonResponse(body, status=code)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics (generations/metrics.py); outsiders get a 404."""
    if not metrics.metrics_allowed(request):
        if settings.VIDEOGEN_METRICS_TOKEN and request.headers.get("Authorization"):
            return HttpResponse("Invalid metrics token.\n", status=401, content_type="text/plain")
        raise Http404("No such page")
    response = HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response


class LoginView(DjangoLoginView):
    """Django's login view with the login throttle (generations/dashboard/throttle.py)."""

    authentication_form = LoginForm

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if getattr(form, "throttled", False):
            response.status_code = 429
        return response


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("invite", "")
    invited = services.invitation_find(token) if token else None
    if settings.VIDEOGEN_SIGNUP != "open" and invited is None:
        return render(request, "registration/signup_closed.html", status=403)
    form = SignupForm(request.POST or None, initial={"email": invited.email if invited else ""})
    if request.method == "POST" and form.is_valid():
        user = form.save()
        services.team_personal_get(user=user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if invited is not None:
            membership = services.invitation_accept(token=token, user=user)
            request.session[CURRENT_TEAM_KEY] = str(membership.team.code)
        messages.success(request, "Welcome to videogen.")
        return redirect("generate")
    return render(request, "registration/signup.html", {"form": form, "invite": token})


def _render_generate(request: HttpRequest, form: GenerateForm, status: int = 200) -> HttpResponse:
    team = current_team(request)
    recent = Generation.objects.filter(team=team).order_by("-created_at")[:6]
    return render(
        request,
        "generate.html",
        {
            "form": form,
            "model_info": form.model_info,
            "model_available": catalog.is_available(form.model_info),
            "recent": recent,
            "usage": quotas.month_usage(team),
            "team": team,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def generate(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        initial: dict[str, Any] = {}
        remix = request.GET.get("remix")
        if remix:
            source = _team_generation(request, remix)
            initial = {
                f: getattr(source, f) for f in GenerateForm.base_fields if hasattr(source, f)
            }
            initial["image"] = None
            if source.image_url.startswith(("http://", "https://")):
                initial["image_url"] = source.image_url
        form = GenerateForm(initial=initial, model_key=initial.get("model"))
        return _render_generate(request, form)

    form = GenerateForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render_generate(request, form, status=400)
    try:
        spec = specs.build_spec(form.request_data(), test_mode=False)
        image = services.input_image_load(spec.image_url) if spec.image_url else None
        gen, _ = services.generation_create(
            team=current_team(request),
            user=_user(request),
            spec=spec,
            source="dashboard",
            input_image=image,
            public_base=f"{request.scheme}://{request.get_host()}",
        )
    except ApiError as exc:
        field = exc.field if exc.field in form.fields else None
        if field == "image_url":
            field = "image"
        form.add_error(field, exc.message)
        return _render_generate(request, form, status=exc.status)
    return redirect("generation", generation_id=gen.generation_id)


@login_required
@require_GET
def generate_fields(request: HttpRequest) -> HttpResponse:
    """The model-dependent part of the form, re-rendered when the model changes (HTMX)."""
    form = GenerateForm(model_key=request.GET.get("model"))
    return render(
        request,
        "generate.html#model-fields",
        {
            "form": form,
            "model_info": form.model_info,
            "model_available": catalog.is_available(form.model_info),
        },
    )


@login_required
@require_GET
def generation(request: HttpRequest, generation_id: str) -> HttpResponse:
    gen = _team_generation(request, generation_id)
    htmx = request.headers.get("HX-Request") == "true"
    template = "generation.html#status" if htmx else "generation.html"
    return render(request, template, {"gen": gen, "model": catalog.get_model(gen.model)})


@login_required
@require_POST
def generation_cancel(request: HttpRequest, generation_id: str) -> HttpResponse:
    gen = _team_generation(request, generation_id)
    if services.generation_cancel(generation=gen):
        messages.info(request, "Canceled; the charge was refunded.")
    return redirect("generation", generation_id=gen.generation_id)


@login_required
@require_POST
def generation_retry(request: HttpRequest, generation_id: str) -> HttpResponse:
    gen = _team_generation(request, generation_id)
    try:
        new = services.generation_again(generation=gen, user=_user(request))
    except ApiError as exc:
        messages.error(request, exc.message)
        return redirect("generation", generation_id=gen.generation_id)
    return redirect("generation", generation_id=new.generation_id)


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    rows = Generation.objects.filter(team=team).select_related("user").order_by("-created_at")
    status = request.GET.get("status", "")
    model = request.GET.get("model", "")
    member = request.GET.get("member", "")
    query = request.GET.get("q", "").strip()
    if status:
        rows = rows.filter(status=status)
    if model:
        rows = rows.filter(model=model)
    if member:
        rows = rows.filter(user__email=member)
    if query:
        rows = rows.filter(Q(prompt__icontains=query) | Q(generation_id=query))
    page = Paginator(rows, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    members = User.objects.filter(memberships__team=team).order_by("email")
    return render(
        request,
        "history.html",
        {
            "page": page,
            "statuses": Generation.Status.choices,
            "models": catalog.MODELS,
            "members": members,
            "filters": {"status": status, "model": model, "member": member, "q": query},
        },
    )


# --- gallery and sharing ------------------------------------------------------------------

GALLERY_PAGE_SIZE = 24


@login_required
@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    # Videos whose files the retention policy deleted stay in the history, not here.
    rows = Generation.objects.filter(
        team=team, status=Generation.Status.COMPLETED, files_purged_at__isnull=True
    ).order_by("-finished_at")
    page = Paginator(rows, GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "gallery.html", {"page": page, "team": team})


@login_required
@require_POST
def gallery_publish(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    services.team_gallery_set(team=team, public=request.POST.get("public") == "1")
    return redirect("gallery")


@login_required
@require_POST
def generation_share(request: HttpRequest, generation_id: str) -> HttpResponse:
    gen = _team_generation(request, generation_id)
    if gen.status != Generation.Status.COMPLETED:
        messages.error(request, "Only finished videos can be shared.")
    elif request.POST.get("share") == "0":
        services.generation_unshare(generation=gen)
        messages.info(request, "The public link no longer works.")
    else:
        services.generation_share(generation=gen)
    return redirect("generation", generation_id=gen.generation_id)


@login_required
@require_POST
def generation_delete(request: HttpRequest, generation_id: str) -> HttpResponse:
    gen = _team_generation(request, generation_id)
    services.generation_delete(generation=gen)
    messages.info(request, "Deleted.")
    return redirect("history")


def _shared(token: str) -> Generation:
    gen = Generation.objects.filter(share_token=token, status=Generation.Status.COMPLETED).first()
    if gen is None or not token:
        raise Http404("This link does not exist or is no longer shared.")
    return gen


@require_GET
def shared_page(request: HttpRequest, token: str) -> HttpResponse:
    """The public page of a shared video: works logged out, with OpenGraph/Twitter tags."""
    gen = _shared(token)
    base = settings.VIDEOGEN_PUBLIC_URL or f"{request.scheme}://{request.get_host()}"
    return render(request, "shared.html", {"gen": gen, "base": base, "token": token})


@require_GET
def shared_embed(request: HttpRequest, token: str) -> HttpResponse:
    """The bare player of a shared video, for an <iframe> on any site (and X's player card)."""
    gen = _shared(token)
    response = render(request, "shared_embed.html", {"gen": gen, "token": token})
    response["Content-Security-Policy"] = csp.EMBED_POLICY
    response.xframe_options_exempt = True
    return response


@require_http_methods(["GET", "HEAD"])
def shared_file(request: HttpRequest, token: str, kind: str) -> HttpResponseBase:
    gen = _shared(token)
    if kind == "video.mp4":
        return serve_file(request, gen.video, "video/mp4", etag=f"{token}-v")
    stored = gen.preview if kind == "preview.webp" else gen.poster
    if kind not in ("poster.jpg", "preview.webp") or not stored:
        raise Http404("No such file")
    content_type = "image/webp" if stored.name.endswith(".webp") else "image/jpeg"
    return serve_file(request, stored, content_type, etag=f"{token}-{kind}")


@require_GET
def team_gallery(request: HttpRequest, slug: str) -> HttpResponse:
    team = Team.objects.filter(gallery_slug=slug, gallery_public=True).first()
    if team is None:
        raise Http404("No such gallery")
    rows = Generation.objects.filter(
        team=team, status=Generation.Status.COMPLETED, share_token__isnull=False
    ).order_by("-shared_at")
    page = Paginator(rows, GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "team_gallery.html", {"team": team, "page": page})


# --- API keys -----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    created = None
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:100]
        try:
            _, created = services.api_key_create(
                team=team, user=_user(request), name=name, test=request.POST.get("kind") == "test"
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
    services.api_key_revoke(key=_team_key(request, pk))
    messages.info(request, "Key revoked: requests made with it now get 401.")
    return redirect("api-keys")


@login_required
@require_POST
def api_key_regenerate(request: HttpRequest, pk: int) -> HttpResponse:
    old = _team_key(request, pk)
    _, raw = services.api_key_regenerate(key=old)
    keys = ApiKey.objects.filter(team=old.team).select_related("user").order_by("-created_at")
    return render(request, "api_keys.html", {"keys": keys, "created": raw})


# --- usage --------------------------------------------------------------------------------


@login_required
@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    month = request.GET.get("month") or quotas.current_month()
    report = reports.month_report(team, month)
    if request.GET.get("format") == "csv":
        return reports.csv_response(report, filename=f"videogen-usage-{month}.csv")
    return render(
        request,
        "usage.html",
        {"team": team, "report": report, "chart": reports.daily_chart_svg(report)},
    )


# --- docs ---------------------------------------------------------------------------------


@require_GET
def docs(request: HttpRequest) -> HttpResponse:
    base = settings.VIDEOGEN_PUBLIC_URL or f"{request.scheme}://{request.get_host()}"
    available = {m.key for m in catalog.MODELS if catalog.is_available(m)}
    markdown = render_to_string(
        "docs.md", {"base": base, "models": catalog.MODELS, "available": available}
    )
    return render(request, "docs.html", {"base": base, "markdown": markdown})


# --- teams --------------------------------------------------------------------------------


def _membership_or_404(request: HttpRequest, code: object) -> Membership:
    try:
        uuid.UUID(str(code))
    except ValueError:
        raise Http404("No such team") from None
    membership = (
        Membership.objects.select_related("team")
        .filter(user=_user(request), team__code=str(code))
        .first()
    )
    if membership is None:
        raise Http404("No such team")
    return membership


@login_required
@require_http_methods(["GET", "POST"])
def teams(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        team = services.team_create(name=request.POST.get("name", ""), owner=_user(request))
        request.session[CURRENT_TEAM_KEY] = str(team.code)
        return redirect("team", code=team.code)
    memberships = Membership.objects.filter(user=_user(request)).select_related("team")
    return render(
        request,
        "teams.html",
        {"memberships": memberships.order_by("team__name"), "current": current_team(request)},
    )


@login_required
@require_POST
def team_switch(request: HttpRequest) -> HttpResponse:
    membership = _membership_or_404(request, request.POST.get("team", ""))
    request.session[CURRENT_TEAM_KEY] = str(membership.team.code)
    messages.info(request, f"Now working in {membership.team.name}.")
    return redirect(request.POST.get("next") or "generate")


@login_required
@require_http_methods(["GET", "POST"])
def team(request: HttpRequest, code: str) -> HttpResponse:
    mine = _membership_or_404(request, code)
    invite_link = None
    if request.method == "POST":
        try:
            action = request.POST.get("action")
            if action == "invite":
                invitation, token = services.invitation_create(
                    team=mine.team,
                    email=request.POST.get("email", ""),
                    role=request.POST.get("role", Membership.Role.MEMBER),
                    invited_by=_user(request),
                )
                invite_link = request.build_absolute_uri(f"/invite/{token}")
                send_mail(
                    f"Join {mine.team.name} on videogen",
                    f"{_user(request).email} invites you to {mine.team.name} as "
                    f"{invitation.role}.\n\nAccept within 7 days: {invite_link}\n",
                    None,
                    [invitation.email],
                )
            elif action == "role":
                target = User.objects.get(pk=int(request.POST["user"]))
                services.membership_set_role(
                    team=mine.team, user=target, role=request.POST.get("role", ""),
                    by=_user(request),
                )  # fmt: skip
            elif action == "remove":
                target = User.objects.get(pk=int(request.POST["user"]))
                services.membership_remove(team=mine.team, user=target, by=_user(request))
                if target == request.user:
                    request.session.pop(CURRENT_TEAM_KEY, None)
                    messages.info(request, f"You left {mine.team.name}.")
                    return redirect("teams")
        except ApiError as exc:
            messages.error(request, exc.message)
        except (User.DoesNotExist, ValueError, KeyError):
            messages.error(request, "No such member.")
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
            "can_manage": mine.role in services.MANAGERS,
        },
    )


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    found = services.invitation_find(token)
    if found is None:
        return render(request, "invitation.html", {"invalid": True}, status=404)
    if request.method == "POST" and request.user.is_authenticated:
        membership = services.invitation_accept(token=token, user=_user(request))
        request.session[CURRENT_TEAM_KEY] = str(membership.team.code)
        messages.success(request, f"You joined {membership.team.name}.")
        return redirect("generate")
    return render(request, "invitation.html", {"invitation": found, "token": token})


# --- webhooks -----------------------------------------------------------------------------

DELIVERY_LOG_SIZE = 50


@login_required
@require_http_methods(["GET", "POST"])
def webhooks_page(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    membership = services.membership_get(team=team, user=_user(request))
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
