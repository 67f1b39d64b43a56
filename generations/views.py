"""Dashboard pages: server-rendered, with HTMX fragments (named partials) for live parts.

Every hx-get/hx-post has a working href/action too: the pages work without JavaScript."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generations import catalog, quotas, services, specs
from generations.errors import ApiError
from generations.forms import GenerateForm, SignupForm
from generations.models import Generation, Team, User

HISTORY_PAGE_SIZE = 20


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def current_team(request: HttpRequest) -> Team:
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
    """For load balancers: 200 when the database answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"ok": False, "database": "unreachable"}, status=503)
    return JsonResponse({"ok": True})


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if settings.VIDEOGEN_SIGNUP != "open":
        return render(request, "registration/signup_closed.html", status=403)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        services.team_personal_get(user=user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome to videogen.")
        return redirect("generate")
    return render(request, "registration/signup.html", {"form": form})


def _render_generate(request: HttpRequest, form: GenerateForm, status: int = 200) -> HttpResponse:
    team = current_team(request)
    recent = Generation.objects.filter(team=team).order_by("-created_at")[:6]
    return render(
        request,
        "generate.html",
        {
            "form": form,
            "model_info": form.model_info,
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
        request, "generate.html#model-fields", {"form": form, "model_info": form.model_info}
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
        new = services.generation_retry(generation=gen, user=_user(request))
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
