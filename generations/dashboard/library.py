"""The team's generations: the history with its filters, and one generation's page with its
actions (cancel, retry, extend, share or unshare, delete) and its exports."""

from __future__ import annotations

import mimetypes

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from generations import catalog
from generations.core import extensions, library, lifecycle, submissions
from generations.dashboard import paging
from generations.dashboard.access import (
    can_create,
    current_team,
    request_user,
    same_site_path,
    team_generation_or_404,
)
from generations.dashboard.confirm import ask_first
from generations.dashboard.forms import ExtendForm
from generations.errors import ApiError
from generations.models import Generation, User
from generations.vocabulary import STATUS_CHOICES
from generations.web.files import serve_file

HISTORY_PAGE_SIZE = 20
HISTORY_ORDER = ("-created_at", "-pk")
# The exports a finished video offers (CONTRACT 6: `/api/v1/video/{id}?format=...`), as
# (format, link text), in the order the page lists them.
EXPORT_FORMATS = (("gif", "GIF"), ("webm", "WebM"), ("loop", "Loop"))


@login_required
@require_GET
def generation(request: HttpRequest, generation_id: str) -> HttpResponse:
    gen = team_generation_or_404(request, generation_id)
    htmx = request.headers.get("HX-Request") == "true"
    template = "generation.html#status" if htmx else "generation.html"
    model = catalog.get_model(gen.model)
    creator = can_create(request, gen.team)
    extend_form = None
    if creator and model is not None and model.can_extend:
        extend_form = ExtendForm(initial={"duration": model.default_duration})
    context = {
        "gen": gen,
        "model": model,
        "can_create": creator,
        "extend_form": extend_form,
        "export_formats": EXPORT_FORMATS,
        "extensions": gen.extensions.order_by("created_at"),
        # Providers it tried before the one serving it: "fal failed over", "fal skipped open".
        "tried": [
            f"{a.get('provider', '?')} {str(a.get('outcome', '')).replace('_', ' ')}"
            for a in gen.route_attempts
            if isinstance(a, dict) and a.get("outcome") not in ("served", "failed", "canceled")
        ],
    }
    return render(request, template, context)


@login_required
@require_POST
def generation_extend(request: HttpRequest, generation_id: str) -> HttpResponse:
    """A new generation continuing this one (CONTRACT 6); its page, or this one with why
    not (not finished: 409, a viewer: 403, a length the model does not make: 400)."""
    gen = team_generation_or_404(request, generation_id)
    form = ExtendForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            said = " ".join(str(e) for e in errors)
            messages.error(request, f"{label}: {said}" if label else said)
        return redirect("generation", generation_id=gen.generation_id)
    try:
        new, _ = extensions.generation_extend(
            source=gen,
            user=request_user(request),
            data=form.request_data(),
            surface="dashboard",
            public_base=f"{request.scheme}://{request.get_host()}",
        )
    except ApiError as exc:
        messages.error(request, f"Not extended: {exc.message}")
        return redirect("generation", generation_id=gen.generation_id)
    messages.info(request, f"Extending by {new.duration} s.")
    return redirect("generation", generation_id=new.generation_id)


@login_required
@require_GET
def generation_input(request: HttpRequest, generation_id: str) -> HttpResponseBase:
    """The image a generation was made from, to the members of its team only."""
    gen = team_generation_or_404(request, generation_id)
    if not gen.input_image:
        raise Http404("This generation was not made from an image.")
    # Stored under the extension of the format it was checked to be (submissions.py).
    kind = mimetypes.guess_type(gen.input_image.name)[0] or "application/octet-stream"
    return serve_file(request, gen.input_image, kind, etag=f"{generation_id}-input", private=True)


@login_required
@require_POST
def generation_cancel(request: HttpRequest, generation_id: str) -> HttpResponse:
    gen = team_generation_or_404(request, generation_id)
    if lifecycle.cancel(generation=gen):
        messages.info(request, "Canceled; the charge was refunded.")
    return redirect("generation", generation_id=gen.generation_id)


@login_required
@require_POST
def generation_retry(request: HttpRequest, generation_id: str) -> HttpResponse:
    gen = team_generation_or_404(request, generation_id)
    try:
        new = submissions.generation_again(generation=gen, user=request_user(request))
    except ApiError as exc:
        messages.error(request, exc.message)
        return redirect("generation", generation_id=gen.generation_id)
    return redirect("generation", generation_id=new.generation_id)


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    team = current_team(request)
    rows = Generation.objects.filter(team=team).select_related("user", "batch")
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
    page, pager = paging.page(request, rows, HISTORY_ORDER, HISTORY_PAGE_SIZE)
    members = User.objects.filter(memberships__team=team).order_by("email")
    return render(
        request,
        "history.html",
        {
            "page": page,
            "pager": pager,
            "statuses": STATUS_CHOICES,
            "models": catalog.MODELS,
            "members": members,
            "filters": {"status": status, "model": model, "member": member, "q": query},
        },
    )


@login_required
@require_POST
def generation_share(request: HttpRequest, generation_id: str) -> HttpResponse:
    gen = team_generation_or_404(request, generation_id)
    if gen.status != Generation.Status.COMPLETED:
        messages.error(request, "Only finished videos can be shared.")
    elif request.POST.get("share") == "0":
        library.generation_unshare(generation=gen)
        messages.info(request, "The public link no longer works.")
    else:
        library.generation_share(generation=gen)
    return redirect("generation", generation_id=gen.generation_id)


@login_required
@require_POST
def generation_delete(request: HttpRequest, generation_id: str) -> HttpResponse:
    gen = team_generation_or_404(request, generation_id)
    asked = ask_first(request, f"Delete “{gen.prompt[:60]}”? Its video and files are deleted "
                               "for good.", "Delete")  # fmt: skip
    if asked is not None:
        return asked
    library.generation_delete(generation=gen)
    messages.info(request, "Deleted.")
    # Back to the History page it was deleted from, its filters and page kept.
    return redirect(same_site_path(request, request.POST.get("next")) or "history")
