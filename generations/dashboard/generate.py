"""The generate form (also for remixing a video) and its model-dependent fields fragment.
A request that makes several takes (dashboard/takes.py) becomes a batch."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from generations import catalog
from generations.core import batches, quotas, reports, submissions, validation
from generations.dashboard import estimate, takes
from generations.dashboard.access import current_team, request_user, team_generation_or_404
from generations.dashboard.forms import GenerateForm, end_frame_models
from generations.errors import ApiError
from generations.models import Batch, Generation, Team
from generations.rendering import registry


def model_summary(model: catalog.ModelInfo, team: Team) -> str:
    """The line under the model picker: what it makes, how long, what it costs this team,
    and how long it takes on this server."""
    durations = model.durations
    if len(durations) > 2 and durations == tuple(range(durations[0], durations[-1] + 1)):
        lengths = f"{durations[0]}–{durations[-1]} s"
    else:
        lengths = " or ".join(str(d) for d in durations) + " s"
    modes = " and ".join(model.modes).capitalize()
    credits = catalog.credits_for(model, model.default_duration, model.default_resolution)
    cost = (f"{credits} credits at {model.default_duration} s {model.default_resolution}"
            if credits else "free of credits")  # fmt: skip
    cost += ", 1 of the team's monthly generations"
    if team.credits is not None:
        cost += f" (the team has {team.credits} credits)"
    typical = reports.typical_seconds(model.key)
    speed = (f"typically {typical} s to render here" if typical is not None
             else "not run on this server yet")  # fmt: skip
    return f"{modes} · {lengths} · {cost} · {speed}."


def _render_generate(
    request: HttpRequest,
    form: GenerateForm,
    status: int = 200,
    *,
    remix_source: Generation | None = None,
) -> HttpResponse:
    team = current_team(request)
    recent = Generation.objects.filter(team=team).order_by("-created_at")[:6]
    values = {name: str(form[name].value() or "") for name in estimate.FIELDS}
    values["add_audio"] = "on" if form["add_audio"].value() else ""
    values["image_url"] = str(form["image_url"].value() or "")
    found = estimate.for_form(team, values)
    return render(
        request,
        "generate.html",
        {
            "form": form,
            "model_info": form.model_info,
            "model_available": registry.is_available(form.model_info),
            "model_summary": model_summary(form.model_info, team),
            "recent": recent,
            "usage": quotas.month_usage(team),
            "team": team,
            "remix_source": remix_source,
            "end_frame_models": end_frame_models(),
            "estimate_text": found["text"] if found else "",
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def generate(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        initial: dict[str, Any] = {}
        source = None
        remix = request.GET.get("remix")
        if remix:
            source = team_generation_or_404(request, remix)
            initial = {
                f: getattr(source, f) for f in GenerateForm.base_fields if hasattr(source, f)
            }
            initial.update(image=None, image_url="", remix_of=source.generation_id,
                           end_image=None, end_image_url="")  # fmt: skip
            if source.end_image_url.startswith(("http://", "https://")):
                initial["end_image_url"] = source.end_image_url
            if source.input_image:
                # Its own image is offered as it was stored (keep, replace or remove), not
                # as the shortened data: URL the record keeps, which is no image at all.
                initial["source_image"] = "keep"
            elif source.image_url.startswith(("http://", "https://")):
                initial["image_url"] = source.image_url
        form = GenerateForm(initial=initial, model_key=initial.get("model"))
        return _render_generate(request, form, remix_source=source)

    form = GenerateForm(request.POST, request.FILES)
    remix_of = request.POST.get("remix_of", "")
    source = team_generation_or_404(request, remix_of) if remix_of else None
    if not form.is_valid():
        return _render_generate(request, form, status=400, remix_source=source)
    data = form.request_data()
    image = None
    if source is not None and source.input_image:
        choice = form.cleaned_data.get("source_image") or "keep"
        if choice == "keep":
            image = submissions.input_image_of(source)
            data["image_url"] = source.image_url
        elif choice == "remove":
            data.pop("image_url", None)
        elif not data.get("image_url"):
            form.add_error("image", "Choose an image file or URL to replace the starting image "
                                    "with, or keep it.")  # fmt: skip
            return _render_generate(request, form, status=400, remix_source=source)
    try:
        bodies = form.takes_requests(data)
        if bodies is None:
            specs = [validation.build_spec(data, test_mode=False)]
        else:
            specs = takes.plan(bodies, csv_used=form.takes_list.from_csv)
        if image is None and specs[0].image_url:
            image = submissions.input_image_load(specs[0].image_url)
        end_image = None
        if specs[0].end_image_url:
            end_image = submissions.input_image_load(specs[0].end_image_url, "end_image_url")
        if len(specs) > 1:
            batch, _, _ = batches.batch_create(
                team=current_team(request), user=request_user(request), specs=specs,
                source="dashboard", input_image=image, end_image=end_image,
                public_base=f"{request.scheme}://{request.get_host()}",
            )  # fmt: skip
            return _batch_made(request, batch)
        gen, _ = submissions.generation_create(
            team=current_team(request),
            user=request_user(request),
            spec=specs[0],
            source="dashboard",
            input_image=image,
            end_image=end_image,
            remixed_from=source,
            public_base=f"{request.scheme}://{request.get_host()}",
        )
    except (ApiError, takes.PlanError) as exc:
        field = exc.field if exc.field in form.fields else None
        if field == "image_url":
            field = "image"
        form.add_error(field, exc.message)
        return _render_generate(request, form, status=exc.status, remix_source=source)
    if _wants_json(request):
        # The page's queue strip (static/js/generate.js): the new card, the page stays.
        card = render_to_string("_queue_card.html", {"g": gen}, request=request)
        return JsonResponse({"generation_id": gen.generation_id, "card": card}, status=201)
    return redirect("generation", generation_id=gen.generation_id)


def _batch_made(request: HttpRequest, batch: Batch) -> HttpResponse:
    """Takes go to their batch page (with JavaScript too: generate.js follows `url`)."""
    url = reverse("batch", args=[batch.batch_id])
    if _wants_json(request):
        return JsonResponse({"batch_id": batch.batch_id, "url": url}, status=201)
    return redirect(url)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


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
            "model_summary": model_summary(form.model_info, current_team(request)),
        },
    )
