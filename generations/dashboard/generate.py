"""The generate form (also for remixing a video) and its model-dependent fields fragment."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from generations.core import quotas, submissions, validation
from generations.dashboard.access import current_team, request_user, team_generation_or_404
from generations.dashboard.forms import GenerateForm
from generations.errors import ApiError
from generations.models import Generation
from generations.rendering import registry


def _render_generate(request: HttpRequest, form: GenerateForm, status: int = 200) -> HttpResponse:
    team = current_team(request)
    recent = Generation.objects.filter(team=team).order_by("-created_at")[:6]
    return render(
        request,
        "generate.html",
        {
            "form": form,
            "model_info": form.model_info,
            "model_available": registry.is_available(form.model_info),
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
            source = team_generation_or_404(request, remix)
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
        spec = validation.build_spec(form.request_data(), test_mode=False)
        image = submissions.input_image_load(spec.image_url) if spec.image_url else None
        gen, _ = submissions.generation_create(
            team=current_team(request),
            user=request_user(request),
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
            "model_available": registry.is_available(form.model_info),
        },
    )
