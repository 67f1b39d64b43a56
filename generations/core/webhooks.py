"""Signed webhook delivery (Standard Webhooks), retried with backoff, SSRF-safe.

Each team has one signing secret, `whsec_` + base64 of 32 bytes. It is derived from the
server's SECRET_KEY, the team and a version number (bumped to rotate it), so no secret is
stored anywhere; changing SECRET_KEY changes every team's secret. Each message carries
`webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`, as https://www.standardwebhooks.com specifies.

Why the library: `standardwebhooks` is the specification's own reference implementation, the
one our users' receivers verify with (`Webhook(secret).verify(body, headers)`), so signing
with it keeps both ends on one reading of the spec; tests pin its output to the spec's
formula. Only the secret's derivation (`team_secret`) is ours."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from generations.errors import invalid
from generations.ids import random_base62
from generations.models import Batch, Generation, Team, WebhookDelivery, WebhookEndpoint
from generations.net import fetch
from generations.vocabulary import FINAL_STATUSES, Status

log = logging.getLogger(__name__)

EVENTS = {
    Generation.Status.COMPLETED: "generation.completed",
    Generation.Status.FAILED: "generation.failed",
    Generation.Status.CANCELED: "generation.canceled",
}
BATCH_EVENT = "batch.completed"  # every item of a batch is final (whatever their outcomes)
# Delay before each retry; after the last one the delivery is marked failed.
BACKOFF_S = (10, 60, 300, 1800, 7200, 21600)
# While one attempt runs, nobody else picks the delivery up.
ATTEMPT_LEASE_S = 120
MAX_URL_CHARS = 2048


def team_secret(team: Team) -> str:
    material = f"videogen-webhooks:{team.code}:{team.webhook_secret_version}".encode()
    key = hmac.new(settings.SECRET_KEY.encode(), material, hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(key).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one message. The library takes the time as a
    datetime and signs its whole seconds, so the int we send as `webhook-timestamp` is the
    number it signs."""
    return Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body)


def validate_url(value: object, field: str = "webhook_url") -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or len(value) > MAX_URL_CHARS:
        raise invalid(field, f"`{field}` must be a URL of at most {MAX_URL_CHARS} characters.")
    if not value.lower().startswith(("https://", "http://")):
        raise invalid(field, f"`{field}` must be an http(s) URL.")
    # The same address rules as delivery (fetch.post_json), judged now where no lookup is
    # needed (literal private addresses in any spelling, odd ports, credentials); names are
    # judged again at every delivery.
    try:
        fetch.check_url(
            value, allow_hosts=fetch.parse_allow_hosts(settings.VIDEOGEN_FETCH_ALLOW_HOSTS)
        )
    except fetch.FetchError as exc:
        message = exc.message.replace("image URL", "URL").replace("Image URLs", "URLs")
        raise invalid(field, f"`{field}`: {message}") from None
    return value


def endpoint_add(*, team: Team, url: str) -> WebhookEndpoint:
    """A team-wide endpoint for `url` (validated by the caller with validate_url); adding
    one that exists is a no-op."""
    endpoint, _ = WebhookEndpoint.objects.get_or_create(team=team, url=url)
    return endpoint


def endpoint_remove(*, team: Team, pk: int) -> bool:
    """False when the team has no endpoint `pk`."""
    deleted, _ = WebhookEndpoint.objects.filter(team=team, pk=pk).delete()
    return bool(deleted)


def secret_rotate(*, team: Team) -> str:
    """A new signing secret for the team (the old one stops verifying); returns it."""
    Team.objects.filter(pk=team.pk).update(webhook_secret_version=F("webhook_secret_version") + 1)
    team.refresh_from_db(fields=["webhook_secret_version"])
    return team_secret(team)


def payload(gen: Generation, event: str) -> dict[str, Any]:
    base = gen.public_base or settings.VIDEOGEN_PUBLIC_URL
    data: dict[str, Any] = {
        "generation_id": gen.generation_id,
        "request_id": str(gen.request_id),
        "status": gen.status,
        "model": gen.model,
        "prompt": gen.prompt,
        "seed": gen.seed,
    }
    if gen.status == Generation.Status.COMPLETED:
        data["video_url"] = f"{base}/api/v1/video/{gen.generation_id}"
        data["thumbnail_url"] = f"{base}/api/v1/thumbnail/{gen.generation_id}"
    if gen.error_code or gen.error_message:
        data["error"] = {"code": gen.error_code, "message": gen.error_message}
    return {"type": event, "timestamp": timezone.now().isoformat(), "data": data}


def notify(gen: Generation) -> None:
    """Queue the final event of a generation for its webhook_url and the team's endpoints."""
    gen.refresh_from_db()
    event = EVENTS.get(Generation.Status(gen.status))
    if event is None:
        return
    urls = [gen.webhook_url] if gen.webhook_url else []
    urls += list(WebhookEndpoint.objects.filter(team_id=gen.team_id).values_list("url", flat=True))
    body = payload(gen, event)
    for url in dict.fromkeys(urls):
        delivery = WebhookDelivery.objects.create(
            team_id=gen.team_id, generation=gen, message_id="msg_" + random_base62(24),
            event=event, url=url, payload=body,
        )  # fmt: skip
        transaction.on_commit(partial(_enqueue, delivery.pk))


def batch_counts(batch_id: int) -> dict[str, int]:
    """How many items of the batch are in each status (every status named, zeros too)."""
    counts = dict.fromkeys((s.value for s in Status), 0)
    for status, n in (
        Generation.objects.filter(batch_id=batch_id)
        .values_list("status")
        .annotate(n=models.Count("pk"))
        .order_by()
    ):
        counts[status] = n
    return counts


def batch_payload(batch: Batch) -> dict[str, Any]:
    base = batch.public_base or settings.VIDEOGEN_PUBLIC_URL
    items = []
    for gen in batch.items.order_by("pk"):
        item: dict[str, Any] = {
            "generation_id": gen.generation_id, "status": gen.status, "model": gen.model,
            "prompt": gen.prompt, "seed": gen.seed,
        }  # fmt: skip
        if gen.status == Generation.Status.COMPLETED:
            item["video_url"] = f"{base}/api/v1/video/{gen.generation_id}"
        items.append(item)
    data = {
        "batch_id": batch.batch_id,
        "total": len(items),
        "counts": batch_counts(batch.pk),
        "items": items,
    }
    return {"type": BATCH_EVENT, "timestamp": timezone.now().isoformat(), "data": data}


def notify_batch_if_done(batch_id: int) -> bool:
    """Queue the batch's `batch.completed` event if every item is now final; exactly once.

    Called in the transaction that made an item final. The batch row is locked first, so
    two items finishing at once take turns: the second one sees the first one's commit, and
    whichever finds no live item left sends the event (and stamps `finished_at`)."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().filter(pk=batch_id, finished_at=None).first()
        if batch is None:
            return False
        if Generation.objects.filter(batch_id=batch_id).exclude(status__in=FINAL_STATUSES).exists():
            return False
        Batch.objects.filter(pk=batch_id).update(finished_at=timezone.now())
        urls = [batch.webhook_url] if batch.webhook_url else []
        urls += list(
            WebhookEndpoint.objects.filter(team_id=batch.team_id).values_list("url", flat=True)
        )
        body = batch_payload(batch)
        for url in dict.fromkeys(urls):
            delivery = WebhookDelivery.objects.create(
                team_id=batch.team_id, generation=None, message_id="msg_" + random_base62(24),
                event=BATCH_EVENT, url=url, payload=body,
            )  # fmt: skip
            transaction.on_commit(partial(_enqueue, delivery.pk))
    return True


def _enqueue(pk: int) -> None:
    from django_q.conf import Conf
    from django_q.tasks import async_task

    # The main cluster's queue, also when a GPU worker finishes the job.
    async_task(
        "generations.tasks.webhook_deliver", pk, task_name=f"webhook {pk}", cluster=Conf.PREFIX
    )


def deliver(pk: int) -> str:
    now = timezone.now()
    # Claim the attempt: only one worker sends a given delivery at a time.
    if not WebhookDelivery.objects.filter(
        pk=pk, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + timedelta(seconds=ATTEMPT_LEASE_S)):
        return "skipped"
    delivery = WebhookDelivery.objects.select_related("team").get(pk=pk)
    attempt = delivery.attempts + 1
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(team_secret(delivery.team), delivery.message_id, timestamp, body),
    }
    code: int | None = None
    error = ""
    try:
        code = fetch.post_json(
            delivery.url, body, headers=headers, timeout=settings.VIDEOGEN_WEBHOOK_TIMEOUT,
            allow_hosts=fetch.parse_allow_hosts(settings.VIDEOGEN_FETCH_ALLOW_HOSTS),
        )  # fmt: skip
        if not 200 <= code < 300:
            error = f"The endpoint answered HTTP {code}."
    except fetch.FetchError as exc:
        error = (
            "The webhook URL points to a private or reserved address (or a non-default port)."
            if exc.code == "image_url_forbidden"
            else exc.message.replace("image ", "")
        )
    done = not error
    gave_up = not done and attempt > len(BACKOFF_S)
    WebhookDelivery.objects.filter(pk=pk).update(
        attempts=attempt,
        last_status_code=code,
        last_error=error[:300],
        status=WebhookDelivery.Status.SUCCEEDED
        if done
        else WebhookDelivery.Status.FAILED
        if gave_up
        else WebhookDelivery.Status.PENDING,
        delivered_at=timezone.now() if done else None,
        next_attempt_at=timezone.now()
        + timedelta(seconds=BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)]),
    )
    return "delivered" if done else ("gave up" if gave_up else "will retry")


def deliver_due() -> int:
    """Send the retries that are due (called every minute by the reaper)."""
    due = list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
        ).values_list("pk", flat=True)[:500]
    )
    for pk in due:
        _enqueue(pk)
    return len(due)
