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
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generations import catalog, quotas, reports, services, specs
from generations.api.files import serve_file
from generations.errors import ApiError
from generations.forms import GenerateForm, SignupForm
from generations.models import ApiKey, Generation, Team, User

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


# --- gallery and sharing ------------------------------------------------------------------

GALLERY_PAGE_SIZE = 24


@login_required
@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    rows = Generation.objects.filter(team=team, status=Generation.Status.COMPLETED).order_by(
        "-finished_at"
    )
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
        _, created = services.api_key_create(
            team=team, user=_user(request), name=name, test=request.POST.get("kind") == "test"
        )
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
    markdown = render_to_string("docs.md", {"base": base, "models": catalog.MODELS})
    return render(request, "docs.html", {"base": base, "markdown": markdown})
