"""Webhooks: signed with the Standard Webhooks scheme, retried, SSRF-safe, logged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from generations import tasks
from generations.core import lifecycle, webhooks
from generations.models import Generation, WebhookDelivery, WebhookEndpoint
from tests.conftest import Account
from tests.test_dashboard import logged_in
from tests.webhook_receiver import Receiver, webhook_receiver

BODY = {"model": "local", "prompt": "a fox in snow", "duration": 1, "resolution": "480p"}


@pytest.fixture
def receiver(
    settings: Any, django_capture_on_commit_callbacks: Any, sync_tasks: None
) -> Iterator[Receiver]:
    settings.VIDEOGEN_FETCH_ALLOW_HOSTS = ["127.0.0.1"]  # the receiver lives on loopback
    with webhook_receiver() as running:
        yield running


def verify(secret: str, received: Any) -> dict[str, Any]:
    """Check a delivery the way a Standard Webhooks receiver does; return the payload."""
    msg_id, ts = received.headers["webhook-id"], received.headers["webhook-timestamp"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{ts}.".encode() + received.body, hashlib.sha256).digest()
    ).decode()
    assert f"v1,{expected}" in received.headers["webhook-signature"].split(" ")
    return json.loads(received.body)


def submit(owner: Account, receiver: Receiver, capture: Any, **extra: Any) -> Generation:
    with capture(execute=True):
        body = owner.client().post("/api/v1/generate", {**BODY, "webhook_url": receiver.url,
                                                        **extra}).json()  # fmt: skip
    return Generation.objects.get(generation_id=body["generation_id"])


def test_a_completed_generation_posts_a_signed_event(
    owner: Account, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    gen = submit(owner, receiver, django_capture_on_commit_callbacks)
    assert len(receiver.received) == 1
    event = verify(webhooks.team_secret(owner.team), receiver.received[0])
    assert event["type"] == "generation.completed"
    assert event["data"]["generation_id"] == gen.generation_id
    assert event["data"]["video_url"] == f"http://testserver/api/v1/video/{gen.generation_id}"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)


def test_failed_and_canceled_generations_send_their_events(
    owner: Account, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    WebhookEndpoint.objects.create(team=owner.team, url=receiver.url)
    body = owner.client().post("/api/v1/generate", BODY).json()  # not run: stays queued
    gen = Generation.objects.get(generation_id=body["generation_id"])
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.cancel(generation=gen)
    body = owner.client().post("/api/v1/generate", BODY).json()
    failing = Generation.objects.get(generation_id=body["generation_id"])
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.fail(generation=failing, code="engine_error", message="boom")
    types = [json.loads(r.body)["type"] for r in receiver.received]
    assert types == ["generation.canceled", "generation.failed"]
    assert json.loads(receiver.received[1].body)["data"]["error"]["code"] == "engine_error"


def test_a_failing_endpoint_is_retried_with_backoff(
    owner: Account, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    receiver.answers = [500, 503]
    submit(owner, receiver, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.next_attempt_at > timezone.now()
    assert webhooks.deliver_due() == 0  # not due yet
    for _ in range(2):
        WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        webhooks.deliver_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 3)
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(receiver.received) == 3 and len(ids) == 1  # the same message, redelivered


def test_after_the_last_retry_the_delivery_is_marked_failed(
    owner: Account, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    receiver.answers = [500] * 20
    submit(owner, receiver, django_capture_on_commit_callbacks)
    for _ in range(len(webhooks.BACKOFF_S)):
        WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        webhooks.deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == len(webhooks.BACKOFF_S) + 1


def test_webhooks_to_private_addresses_are_never_sent(
    owner: Account, settings: Any, django_capture_on_commit_callbacks: Any, sync_tasks: None
) -> None:
    with webhook_receiver() as listener, django_capture_on_commit_callbacks(execute=True):
        response = owner.client().post("/api/v1/generate", {**BODY, "webhook_url": listener.url})
        assert listener.received == []  # loopback is not allowed unless allow-listed
    # Refused when given (a literal address); names resolving privately are refused at
    # delivery (tests/test_security_ssrf.py).
    assert response.status_code == 400 and response.json()["error"]["field"] == "webhook_url"
    assert not WebhookDelivery.objects.exists()


def test_a_bad_webhook_url_is_a_400(owner: Account) -> None:
    response = owner.client().post("/api/v1/generate", {**BODY, "webhook_url": "ftp://x/y"})
    assert response.status_code == 400 and response.json()["error"]["field"] == "webhook_url"


def test_the_secret_is_per_team_and_rotates(owner: Account, outsider: Account) -> None:
    first = webhooks.team_secret(owner.team)
    assert first.startswith("whsec_") and first != webhooks.team_secret(outsider.team)
    logged_in(owner).post("/webhooks", {"action": "rotate"})
    owner.team.refresh_from_db()
    assert webhooks.team_secret(owner.team) != first


def test_the_dashboard_lists_endpoints_and_the_delivery_log(
    owner: Account, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    client = logged_in(owner)
    client.post("/webhooks", {"action": "add", "url": receiver.url})
    assert WebhookEndpoint.objects.filter(team=owner.team, url=receiver.url).exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/generate", {"prompt": "x", "model": "local", "duration": "1",
                                  "resolution": "480p", "aspect_ratio": "16:9"})  # fmt: skip
    html = client.get("/webhooks").content.decode()
    assert "generation.completed" in html and "Succeeded" in html
    assert webhooks.team_secret(owner.team) not in html  # shown only on request
    assert (
        webhooks.team_secret(owner.team)
        in client.post("/webhooks", {"action": "reveal"}).content.decode()
    )


def test_the_reaper_sends_due_retries(
    owner: Account, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    receiver.answers = [500]
    submit(owner, receiver, django_capture_on_commit_callbacks)
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    tasks.reap_stale()
    assert WebhookDelivery.objects.get().status == "succeeded"
