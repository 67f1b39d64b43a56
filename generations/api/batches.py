"""Batches under /api/v1/batches (CONTRACT 7): takes made together, read and canceled
together. The VideoGenAPI surface's error shape and authentication."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.urls import reverse

from generations.api.common import (
    api_endpoint,
    authenticate,
    json_body,
    page_param,
    public_url,
    submit_checks,
    videogen_error,
    wire_time,
)
from generations.api.idempotency import idempotent
from generations.core import batches, webhooks
from generations.errors import ApiError
from generations.models import ApiKey, Batch, Generation
from generations.vocabulary import FINAL_STATUSES

endpoint = api_endpoint
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def _team_batch(key: ApiKey, batch_id: str) -> Batch:
    batch = Batch.objects.filter(team_id=key.team_id, batch_id=batch_id).first()
    if batch is None:
        raise ApiError(404, "not_found", f"No batch {batch_id!r} in this team.")
    return batch


def _item(request: HttpRequest, gen: Generation) -> dict[str, Any]:
    item: dict[str, Any] = {
        "generation_id": gen.generation_id,
        "prompt": gen.prompt,
        "model": gen.model,
        "seed": gen.seed,
        "status": gen.status,
        "progress": gen.progress,
    }
    if gen.status == Generation.Status.COMPLETED and gen.files_purged_at is None:
        item["video_url"] = public_url(request, reverse("api-video", args=[gen.generation_id]))
        item["thumbnail_url"] = public_url(
            request, reverse("api-thumbnail", args=[gen.generation_id])
        )
    if gen.status == Generation.Status.FAILED:
        item["error"] = {"code": gen.error_code, "message": gen.error_message}
    return item


def batch_body(request: HttpRequest, batch: Batch, *, with_items: bool = True) -> dict[str, Any]:
    counts = webhooks.batch_counts(batch.pk)
    body: dict[str, Any] = {
        "batch_id": batch.batch_id,
        "title": batch.title,
        "created_at": wire_time(batch.created_at),
        "finished_at": wire_time(batch.finished_at),
        "total": sum(counts.values()),
        "done": sum(n for status, n in counts.items() if status in FINAL_STATUSES),
        "counts": counts,
        "pick": batch.pick.generation_id if batch.pick_id and batch.pick else None,
        "status_url": public_url(request, reverse("api-batch", args=[batch.batch_id])),
    }
    if with_items:
        # `batch` too: the related manager reads each row's batch_id (a query per row when
        # it is deferred).
        items = batch.items.order_by("pk").only(
            "generation_id", "prompt", "model", "seed", "status", "progress",
            "files_purged_at", "error_code", "error_message", "batch",
        )  # fmt: skip
        body["items"] = [_item(request, gen) for gen in items]
    if batch.test_mode:
        body["test_mode"] = True
    return body


@endpoint(("GET", "POST"), videogen_error)
def batches_view(request: HttpRequest) -> HttpResponseBase:
    """POST: make a batch. GET: the team's batches, newest first."""
    key = authenticate(request)
    if request.method == "GET":
        return _list(request, key)
    data = json_body(request)
    usage: list[int] = []

    def create() -> Batch:
        plan = batches.plan(data, test_mode=key.is_test)
        webhook_url, image, end_image = submit_checks(data, plan.specs[0])
        batch, _, used = batches.batch_create(
            team=key.team, user=key.user, api_key=key, specs=plan.specs, source="api",
            input_image=image, end_image=end_image, webhook_url=webhook_url,
            public_base=public_url(request, ""),
        )  # fmt: skip
        usage.append(used)
        return batch

    def respond(batch: Batch) -> HttpResponse:
        ids = list(batch.items.order_by("pk").values_list("generation_id", flat=True))
        body: dict[str, Any] = {
            "success": True,
            "batch_id": batch.batch_id,
            "generations": ids,
            "total": len(ids),
            "status_url": public_url(request, reverse("api-batch", args=[batch.batch_id])),
            "usage": {
                "current_month_usage": usage[0] if usage else None,
                "monthly_limit": key.team.monthly_limit,
            },
        }
        if batch.test_mode:
            body["test_mode"] = True
        return JsonResponse(body, status=200)

    return idempotent(request, key, create, respond)


def _list(request: HttpRequest, key: ApiKey) -> HttpResponse:
    page = page_param(request, "page", 1, 10**6)
    limit = page_param(request, "limit", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    rows = (
        Batch.objects.filter(team_id=key.team_id)
        .select_related("pick")
        .annotate(
            n_items=Count("items"),
            n_done=Count("items", filter=Q(items__status__in=FINAL_STATUSES)),
        )
        .order_by("-created_at", "-pk")
    )
    total = Batch.objects.filter(team_id=key.team_id).count()
    offset = (page - 1) * limit
    listed = []
    for batch in rows[offset : offset + limit]:
        listed.append({
            "batch_id": batch.batch_id, "title": batch.title,
            "created_at": wire_time(batch.created_at), "finished_at": wire_time(batch.finished_at),
            "total": batch.n_items, "done": batch.n_done,
            "pick": batch.pick.generation_id if batch.pick else None,
            "status_url": public_url(request, reverse("api-batch", args=[batch.batch_id])),
        })  # fmt: skip
    return JsonResponse({
        "success": True, "batches": listed, "total": total, "page": page, "limit": limit,
        "has_more": offset + len(listed) < total,
    })  # fmt: skip


@endpoint(("GET",), videogen_error)
def batch(request: HttpRequest, batch_id: str) -> HttpResponse:
    key = authenticate(request)
    return JsonResponse({"success": True, **batch_body(request, _team_batch(key, batch_id))})


@endpoint(("POST",), videogen_error)
def cancel(request: HttpRequest, batch_id: str) -> HttpResponse:
    """Cancels every item that has not finished, each refunded."""
    key = authenticate(request)
    found = _team_batch(key, batch_id)
    canceled = batches.batch_cancel(batch=found)
    found.refresh_from_db()
    return JsonResponse({"success": True, "canceled": canceled, **batch_body(request, found)})


@endpoint(("POST",), videogen_error)
def pick(request: HttpRequest, batch_id: str) -> HttpResponse:
    """`{"generation_id": "gen_..."}` marks that take as the pick; `null` clears it."""
    key = authenticate(request)
    found = _team_batch(key, batch_id)
    data = json_body(request)
    chosen = data.get("generation_id")
    if chosen is not None and not isinstance(chosen, str):
        raise ApiError(400, "invalid_parameter", "`generation_id` must be a string or null.",
                       "generation_id")  # fmt: skip
    gen = None
    if chosen is not None:
        gen = Generation.objects.filter(batch=found, generation_id=chosen).first()
        if gen is None:
            raise ApiError(
                400,
                "invalid_parameter",
                f"{chosen!r} is not an item of {found.batch_id}.",
                "generation_id",
            )
    batches.batch_pick(batch=found, generation=gen)
    return JsonResponse({"success": True, **batch_body(request, found, with_items=False)})
