from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from generations.core.idempotency import abandoned_after
from generations.models import Generation, IdempotencyRecord, UsageEvent
from tests.conftest import Account

BODY = {"model": "local", "prompt": "lanterns on a river", "duration": 1, "resolution": "480p"}


def post(account: Account, body: dict, key: str | None):
    headers = {"Authorization": f"Bearer {account.raw_key}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return account.client().http.post(
        "/api/v1/generate", data=json.dumps(body), content_type="application/json", headers=headers
    )


def test_the_same_key_and_body_return_the_same_generation(owner: Account) -> None:
    first = post(owner, BODY, "order-42")
    again = post(owner, BODY, "order-42")
    assert first.status_code == again.status_code == 200
    assert first.json()["generation_id"] == again.json()["generation_id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Generation.objects.count() == 1
    assert owner.client().get("/api/v1/user").json()["usage"]["current_month_usage"] == 1


def test_the_same_key_with_another_body_is_a_422(owner: Account) -> None:
    post(owner, BODY, "order-43")
    other = post(owner, {**BODY, "prompt": "something else"}, "order-43")
    assert other.status_code == 422
    assert other.json()["error"] == {
        "code": "idempotency_key_reused",
        "message": "This `Idempotency-Key` was used with a different request.",
        "field": "Idempotency-Key",
    }


def _first_request_still_running(owner: Account, key: str, age: timedelta) -> None:
    """What a first request leaves while it runs (or once its web process was killed
    before it saved anything): a record with no generation and no answer."""
    post(owner, BODY, key)
    Generation.objects.all().delete()
    IdempotencyRecord.objects.filter(key=key).update(
        response_status=None, response_body="", created_at=timezone.now() - age
    )


def test_a_key_whose_first_request_is_still_running_is_a_409(owner: Account) -> None:
    _first_request_still_running(owner, "order-44", timedelta(seconds=5))
    assert post(owner, BODY, "order-44").status_code == 409
    assert not Generation.objects.exists()


def test_a_request_killed_before_saving_anything_runs_again_on_retry(owner: Account) -> None:
    _first_request_still_running(owner, "order-46", abandoned_after() + timedelta(seconds=1))
    again = post(owner, BODY, "order-46")
    assert again.status_code == 200 and "Idempotent-Replayed" not in again
    assert Generation.objects.get().generation_id == again.json()["generation_id"]
    replay = post(owner, BODY, "order-46")
    assert replay.json()["generation_id"] == again.json()["generation_id"]


def test_a_request_killed_after_its_generation_was_saved_is_answered_with_it(
    owner: Account,
) -> None:
    """The web process died between the generation's commit and storing the answer: the
    retry must not make (and charge) a second generation, nor refuse with 409 for ever."""
    first = post(owner, BODY, "order-47").json()
    IdempotencyRecord.objects.filter(key="order-47").update(response_status=None, response_body="")
    again = post(owner, BODY, "order-47")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json()["generation_id"] == first["generation_id"]
    assert again.json()["usage"]["current_month_usage"] == 1
    assert Generation.objects.count() == 1
    assert UsageEvent.objects.filter(kind="charge").count() == 1


def test_keys_are_per_api_key_and_expire_after_a_day(owner: Account, outsider: Account) -> None:
    post(owner, BODY, "shared-name")
    assert post(outsider, BODY, "shared-name").status_code == 200
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert post(owner, BODY, "shared-name").status_code == 200
    assert Generation.objects.count() == 3


def test_a_refused_request_can_be_retried_with_the_same_key(owner: Account) -> None:
    bad = post(owner, {**BODY, "resolution": "8K"}, "order-45")
    assert bad.status_code == 400
    assert post(owner, {**BODY, "resolution": "8K"}, "order-45").status_code == 400
    assert not IdempotencyRecord.objects.exists()


def test_without_the_header_every_post_creates(owner: Account) -> None:
    post(owner, BODY, None)
    post(owner, BODY, None)
    assert Generation.objects.count() == 2


def test_an_oversized_key_is_a_400(owner: Account) -> None:
    response = post(owner, BODY, "k" * 300)
    assert response.status_code == 400 and response.json()["error"]["field"] == "Idempotency-Key"
