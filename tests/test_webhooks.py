"""Webhooks: signed with the Standard Webhooks scheme, retried, SSRF-safe, logged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_q.conf import Conf
from standardwebhooks.webhooks import Webhook

from generations import tasks
from generations.core import accounts, lifecycle, webhooks
from generations.models import Generation, Membership, WebhookDelivery, WebhookEndpoint
from tests.conftest import Account, make_account
from tests.test_dashboard import logged_in
from tests.webhook_receiver import Receiver, webhook_receiver

BODY = {"model": "local", "prompt": "a fox in snow", "duration": 1, "resolution": "480p"}


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.VIDEOGEN_FETCH_ALLOW_HOSTS = ["127.0.0.1"]  # the receiver lives on loopback
    with webhook_receiver() as running:
        yield running


def spec_signature(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The spec's formula by hand: v1,base64(HMAC-SHA256(key, "id.timestamp.body"))."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(secret: str, received: Any) -> dict[str, Any]:
    """Check a delivery the way a Standard Webhooks receiver does, by the spec's formula and
    with the spec's library (as our users' receivers can); return the payload."""
    msg_id, ts = received.headers["webhook-id"], received.headers["webhook-timestamp"]
    expected = spec_signature(secret, msg_id, ts, received.body)
    assert expected in received.headers["webhook-signature"].split(" ")
    event: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    assert event == json.loads(received.body)
    return event


def submit(owner: Account, receiver: Receiver, capture: Any, **extra: Any) -> Generation:
    with capture(execute=True):
        body = owner.client().post("/api/v1/generate", {**BODY, "webhook_url": receiver.url,
                                                        **extra}).json()  # fmt: skip
    return Generation.objects.get(generation_id=body["generation_id"])


def test_a_completed_generation_posts_a_signed_event(
    owner: Account, receiver: Receiver, django_capture_on_commit_callbacks: Any, sync_tasks: None
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
    owner: Account, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    WebhookEndpoint.objects.create(team=owner.team, url=receiver.url)
    # Submitted while nothing runs the queue: both stay queued.
    body = owner.client().post("/api/v1/generate", BODY).json()
    gen = Generation.objects.get(generation_id=body["generation_id"])
    body = owner.client().post("/api/v1/generate", BODY).json()
    failing = Generation.objects.get(generation_id=body["generation_id"])
    monkeypatch.setattr(Conf, "SYNC", True)  # from here on, deliveries are sent inline
    lifecycle.cancel(generation=gen)
    lifecycle.fail(generation=failing, code="engine_error", message="boom")
    types = [json.loads(r.body)["type"] for r in receiver.received]
    assert types == ["generation.canceled", "generation.failed"]
    assert json.loads(receiver.received[1].body)["data"]["error"]["code"] == "engine_error"


def test_a_failing_endpoint_is_retried_with_backoff(
    owner: Account, receiver: Receiver, django_capture_on_commit_callbacks: Any, sync_tasks: None
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
    owner: Account, receiver: Receiver, django_capture_on_commit_callbacks: Any, sync_tasks: None
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


def test_signatures_are_the_specs_formula_byte_for_byte(owner: Account, settings: Any) -> None:
    # The Standard Webhooks test vector (the spec's Python library's own sign test).
    vector = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
              1614265330, b'{"test": 2432232314}')  # fmt: skip
    assert spec_signature(*vector) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert webhooks.sign(*vector) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    # One of our own: a team secret (32 bytes, padded base64) derived as ever, a UTF-8 body.
    settings.SECRET_KEY = "pinned-secret-key-for-the-signature-test"
    owner.team.code = uuid.UUID("00000000-0000-4000-8000-000000000001")
    owner.team.webhook_secret_version = 3
    secret = webhooks.team_secret(owner.team)
    assert secret == "whsec_1+PT16hhBcDJZhp0eU1bRcEwIRTGDPqLmTOCtbamUEQ="
    body = '{"type":"generation.completed","data":{"prompt":"café"}}'.encode()
    signed = "v1,ZaTYIY2DtmO9l5q4CNk89yP3QqqrGBd6BFn6fwHWaMs="
    assert spec_signature(secret, "msg_2pZSbGvXq7kLmN4rT8wYcE1d", 1700000000, body) == signed
    assert webhooks.sign(secret, "msg_2pZSbGvXq7kLmN4rT8wYcE1d", 1700000000, body) == signed


def test_the_secret_is_per_team_and_rotates(owner: Account, outsider: Account) -> None:
    first = webhooks.team_secret(owner.team)
    assert first.startswith("whsec_") and first != webhooks.team_secret(outsider.team)
    logged_in(owner).post("/webhooks/secret/rotate", {"confirm": "yes"})
    owner.team.refresh_from_db()
    assert webhooks.team_secret(owner.team) != first


def test_the_dashboard_lists_endpoints_and_the_delivery_log(
    owner: Account, receiver: Receiver, django_capture_on_commit_callbacks: Any, sync_tasks: None
) -> None:
    client = logged_in(owner)
    client.post("/webhooks/endpoints", {"url": receiver.url})
    assert WebhookEndpoint.objects.filter(team=owner.team, url=receiver.url).exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/generate", {"prompt": "x", "model": "local", "duration": "1",
                                  "resolution": "480p", "aspect_ratio": "16:9"})  # fmt: skip
    html = client.get("/webhooks").content.decode()
    assert "generation.completed" in html and "Succeeded" in html
    assert webhooks.team_secret(owner.team) not in html  # shown only on request
    assert (
        webhooks.team_secret(owner.team) in client.post("/webhooks/secret/reveal").content.decode()
    )


def test_the_reaper_sends_due_retries(
    owner: Account, receiver: Receiver, django_capture_on_commit_callbacks: Any, sync_tasks: None
) -> None:
    receiver.answers = [500]
    submit(owner, receiver, django_capture_on_commit_callbacks)
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    tasks.reap_stale()
    assert WebhookDelivery.objects.get().status == "succeeded"


ACTION_URLS = ("/webhooks/endpoints", "/webhooks/secret/rotate", "/webhooks/secret/reveal")


def test_each_webhooks_action_posts_to_a_url_of_its_own(owner: Account) -> None:
    endpoint = WebhookEndpoint.objects.create(team=owner.team, url="https://hooks.example.com/")
    client = logged_in(owner)
    html = client.get("/webhooks").content.decode()
    assert 'name="action"' not in html
    remove = f"/webhooks/endpoints/{endpoint.pk}/remove"
    for url in (*ACTION_URLS, remove):
        assert f'action="{url}"' in html, url
        assert client.get(url).status_code == 405, url
    # The page itself no longer takes an action field.
    secret = webhooks.team_secret(owner.team)
    assert client.post("/webhooks", {"action": "rotate"}).status_code == 405
    owner.team.refresh_from_db()
    assert webhooks.team_secret(owner.team) == secret
    response = client.post(remove, {"confirm": "yes"})
    assert response.status_code == 302 and response["Location"] == "/webhooks"
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_a_rotated_secret_is_shown_once_on_the_rendered_page(owner: Account) -> None:
    client = logged_in(owner)
    response = client.post("/webhooks/secret/rotate", {"confirm": "yes"})
    owner.team.refresh_from_db()
    secret = webhooks.team_secret(owner.team)
    html = response.content.decode()
    assert response.status_code == 200 and secret in html
    assert "New signing secret: update your receivers." in html
    assert secret not in client.get("/webhooks").content.decode()
    assert secret not in str(dict(client.session.items()))


def test_a_refused_endpoint_comes_back_as_a_message(owner: Account) -> None:
    page = logged_in(owner).post("/webhooks/endpoints", {"url": "ftp://x/y"}, follow=True)
    assert page.redirect_chain == [("/webhooks", 302)]
    assert 'class="error"' in page.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_only_owners_and_admins_manage_webhooks(owner: Account) -> None:
    team = accounts.team_create(name="Studio West", owner=owner.user)
    endpoint = WebhookEndpoint.objects.create(team=team, url="https://hooks.example.com/")
    member = make_account("wh-member@example.com")
    Membership.objects.create(team=team, user=member.user, role="member")
    client = logged_in(member)
    client.post("/teams/switch", {"team": str(team.code)})
    secret = webhooks.team_secret(team)
    for url in (*ACTION_URLS, f"/webhooks/endpoints/{endpoint.pk}/remove"):
        page = client.post(url, {"url": "https://other.example.com/"}, follow=True)
        assert page.redirect_chain == [("/webhooks", 302)], url
        html = page.content.decode()
        assert "Only owners and admins manage webhooks." in html and secret not in html, url
    team.refresh_from_db()
    assert webhooks.team_secret(team) == secret
    assert list(WebhookEndpoint.objects.values_list("url", flat=True)) == [endpoint.url]
