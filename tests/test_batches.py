"""Takes (issue 16, CONTRACT 7): batches over the API, admitted all or nothing, read,
canceled and picked; their final webhook event; and the fair-share dispatcher that hands
everyone's waiting work to the workers with teams taking turns."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django_q.conf import Conf
from django_q.models import OrmQ

from generations import tasks
from generations.core import fairshare, quotas, webhooks
from generations.models import Batch, Generation, UsageEvent
from tests.conftest import Account, make_account
from tests.test_webhooks import verify
from tests.webhook_receiver import webhook_receiver

BASE = {"model": "local", "prompt": "a paper lantern drifting", "duration": 1, "resolution": "480p"}


def make(account: Account, **fields: Any) -> Any:
    return account.client().post("/api/v1/batches", {**BASE, **fields})


def error(response: Any) -> tuple[int, str | None, str]:
    body = response.json()["error"]
    return response.status_code, body.get("field"), body["message"]


# --- making a batch ------------------------------------------------------------------------


def test_a_batch_is_the_cross_product_of_prompts_models_and_seeds(owner: Account) -> None:
    prompts = ["a lantern on a pier", "a lantern in fog"]
    answer = make(owner, prompt=None, prompts=prompts, seeds=[7, 8, 9])
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["success"] and body["batch_id"].startswith("bat_") and body["total"] == 6
    assert len(body["generations"]) == 6
    items = list(Generation.objects.filter(batch__batch_id=body["batch_id"]).order_by("pk"))
    assert [g.generation_id for g in items] == body["generations"]
    assert [(g.prompt, g.seed) for g in items] == [(p, s) for p in prompts for s in (7, 8, 9)]
    assert {g.lane for g in items} == {1}  # the batch lane
    # Each item is charged as one generation.
    assert quotas.month_usage(owner.team) == 6 == body["usage"]["current_month_usage"]
    assert UsageEvent.objects.filter(generation__in=items, kind="charge").count() == 6


def test_compare_models_is_one_prompt_on_several_models(tester: Account) -> None:
    # A test key: every catalog model is served (by the local engine) and nothing is charged.
    body = make(tester, model=None, models=["local", "sora-2", "veo_3"], seeds=[1, 2],
                duration=8).json()  # fmt: skip
    items = Generation.objects.filter(batch__batch_id=body["batch_id"]).order_by("pk")
    assert [(g.model, g.seed) for g in items] == [
        ("local", 1), ("local", 2), ("sora-2", 1), ("sora-2", 2), ("veo_3", 1), ("veo_3", 2),
    ]  # fmt: skip


def test_a_given_seed_is_kept_for_every_prompt(owner: Account) -> None:
    body = make(owner, prompt=None, prompts=["a kite", "a boat"], seed=5).json()
    items = Generation.objects.filter(batch__batch_id=body["batch_id"])
    assert sorted(items.values_list("seed", flat=True)) == [5, 5]


def test_count_makes_variations_with_fresh_seeds(owner: Account) -> None:
    body = make(owner, count=5).json()
    seeds = list(Generation.objects.filter(batch__batch_id=body["batch_id"]).values_list(
        "seed", flat=True))  # fmt: skip
    assert len(seeds) == 5 and len(set(seeds)) == 5


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"count": 65}, "count", "between 1 and 64"),
        ({"seeds": list(range(65))}, "seeds", "at most 64"),
        ({"prompt": None, "prompts": [f"p{i}" for i in range(9)], "seeds": list(range(8))},
         "prompts", "at most 64 items; 9 prompts × 8 seeds make 72"),
        ({"prompts": []}, "prompts", "empty"),
        ({"models": []}, "models", "empty"),
        ({"seeds": []}, "seeds", "empty"),
        ({"model": None, "models": ["local", "sora-9"]}, "models", "Unknown model 'sora-9'"),
        ({"model": None, "models": ["local", "sora-2"]}, "models", "'sora-2' is not available"),
        ({"model": None, "models": ["local", "local"]}, "models", "'local' is listed twice"),
        ({"seeds": [1, 2, 1]}, "seeds", "Seed 1 is listed twice"),
        ({"seeds": [1, "two"]}, "seeds", "seeds[1]"),
        ({"seeds": [1], "count": 3}, "count", "not both"),
        ({"prompts": "one prompt"}, "prompts", "must be a list"),
        ({"prompts": ["x"]}, "prompts", "not both"),  # with `prompt` too
        ({"prompt": None, "prompts": ["ok", ""]}, "prompts", "prompts[1]"),
        ({"count": 2, "duration": 99}, "duration", "seconds"),
    ],
)  # fmt: skip
def test_bad_batches_are_400s_naming_the_field_and_make_nothing(
    owner: Account, fields: dict[str, Any], field: str, says: str
) -> None:
    answer = make(owner, **fields)
    status, named, message = error(answer)
    assert (status, named) == (400, field), message
    assert says in message
    assert not Generation.objects.exists() and not Batch.objects.exists()


def test_a_batch_that_does_not_fit_the_monthly_limit_makes_nothing(transactional_db: None) -> None:
    small = make_account("small@example.com", monthly_limit=10)
    assert make(small, count=4).status_code == 200
    answer = make(small, count=7)  # 6 left
    status, _, message = error(answer)
    assert status == 429 and "6 of its 10" in message
    assert answer.headers["Retry-After"]
    assert Generation.objects.count() == 4 and Batch.objects.count() == 1
    assert quotas.month_usage(small.team) == 4
    assert make(small, count=6).status_code == 200  # exactly what is left
    assert quotas.month_usage(small.team) == 10


def test_a_batch_the_credits_cannot_cover_is_a_402_with_nothing_charged(owner: Account) -> None:
    owner.team.credits = Decimal("2.50")
    owner.team.save()
    cost = make(owner, count=1).json()
    one = UsageEvent.objects.get(generation__generation_id=cost["generations"][0]).credits
    owner.team.refresh_from_db()
    left = owner.team.credits
    assert left is not None and one > 0  # the local model costs credits
    too_many = int(left / one) + 1
    answer = make(owner, count=too_many)
    status, _, message = error(answer)
    assert status == 402 and f"These {too_many} generations cost" in message
    owner.team.refresh_from_db()
    assert owner.team.credits == left and Batch.objects.count() == 1


def test_idempotency_key_makes_one_batch(owner: Account) -> None:
    client = owner.client()
    headers = {"Idempotency-Key": "takes-1", "Authorization": f"Bearer {owner.raw_key}"}
    send = lambda: client.http.post(  # noqa: E731
        "/api/v1/batches", data=json.dumps({**BASE, "count": 3}),
        content_type="application/json", headers=headers,
    )  # fmt: skip
    first, second = send(), send()
    assert first.status_code == second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json()["batch_id"] == second.json()["batch_id"]
    assert Batch.objects.count() == 1 and Generation.objects.count() == 3


def test_test_keys_make_batches_that_charge_nothing(tester: Account) -> None:
    answer = make(tester, count=3)
    assert answer.status_code == 200 and answer.json()["test_mode"] is True
    assert quotas.month_usage(tester.team) == 0
    assert not UsageEvent.objects.exists()
    assert set(Generation.objects.values_list("test_mode", flat=True)) == {True}


# --- reading, canceling, picking -----------------------------------------------------------


def test_a_batch_reads_counts_and_items_and_completes(owner: Account, sync_tasks: None) -> None:
    batch_id = make(owner, count=2, seed=None).json()["batch_id"]
    body = owner.client().get(f"/api/v1/batches/{batch_id}").json()
    assert body["total"] == 2 and body["counts"]["completed"] == 2 and body["done"] == 2
    assert body["finished_at"] is not None
    for item in body["items"]:
        assert item["status"] == "completed" and item["model"] == "local"
        assert item["video_url"].endswith(f"/api/v1/video/{item['generation_id']}")
        assert item["prompt"] == BASE["prompt"] and isinstance(item["seed"], int)
    listed = owner.client().get("/api/v1/batches").json()
    assert listed["total"] == 1 and listed["batches"][0]["batch_id"] == batch_id
    assert listed["batches"][0]["done"] == 2


def test_cancel_refunds_what_has_not_finished(owner: Account) -> None:
    batch_id = make(owner, count=4).json()["batch_id"]
    first = Generation.objects.filter(batch__batch_id=batch_id).order_by("pk").first()
    assert first is not None and first.status == "in_queue"  # handed to the broker
    assert tasks.generation_run(first.pk) == "completed"
    answer = owner.client().post(f"/api/v1/batches/{batch_id}/cancel", {})
    body = answer.json()
    assert answer.status_code == 200 and body["canceled"] == 3
    assert body["counts"]["completed"] == 1 and body["counts"]["canceled"] == 3
    assert quotas.month_usage(owner.team) == 1  # three refunded
    assert body["finished_at"] is not None


def test_a_pick_is_stored_and_must_be_an_item(owner: Account, outsider: Account) -> None:
    body = make(owner, count=2).json()
    chosen = body["generations"][1]
    picked = owner.client().post(f"/api/v1/batches/{body['batch_id']}/pick",
                                 {"generation_id": chosen})  # fmt: skip
    assert picked.status_code == 200 and picked.json()["pick"] == chosen
    assert owner.client().get(f"/api/v1/batches/{body['batch_id']}").json()["pick"] == chosen
    alone = owner.client().post("/api/v1/generate", BASE).json()["generation_id"]
    wrong = owner.client().post(f"/api/v1/batches/{body['batch_id']}/pick",
                                {"generation_id": alone})  # fmt: skip
    assert error(wrong)[:2] == (400, "generation_id")
    assert outsider.client().get(f"/api/v1/batches/{body['batch_id']}").status_code == 404


def test_the_last_item_final_sends_one_signed_batch_event(
    owner: Account, settings: Any, django_capture_on_commit_callbacks: Any, sync_tasks: None
) -> None:
    settings.VIDEOGEN_FETCH_ALLOW_HOSTS = ["127.0.0.1"]
    with webhook_receiver() as receiver, django_capture_on_commit_callbacks(execute=True):
        body = make(owner, count=3, webhook_url=receiver.url).json()
    events = [verify_event(owner, r) for r in receiver.received]
    batch_events = [e for e in events if e["type"] == "batch.completed"]
    assert len(batch_events) == 1
    data = batch_events[0]["data"]
    assert data["batch_id"] == body["batch_id"] and data["total"] == 3
    assert data["counts"]["completed"] == 3
    assert [i["generation_id"] for i in data["items"]] == body["generations"]


def verify_event(owner: Account, received: Any) -> dict[str, Any]:
    return verify(webhooks.team_secret(owner.team), received)


# --- fair share ----------------------------------------------------------------------------


def handed(*accounts: Account) -> list[str]:
    """Who the broker holds work of, in the order it was handed over."""
    owners = {a.team.pk: a.user.email.split("@")[0] for a in accounts}
    rows = Generation.objects.filter(status="in_queue").order_by("queued_at", "pk")
    return [owners[g.team_id] for g in rows]


def run_one() -> None:
    """A worker takes the oldest task in the broker and finishes it."""
    task = OrmQ.objects.order_by("id").first()
    assert task is not None
    pk = task.task["args"][0]
    task.delete()
    tasks.generation_run(pk)


def test_another_teams_generation_goes_ahead_of_a_waiting_batch(
    owner: Account, outsider: Account
) -> None:
    assert not Conf.SYNC and Conf.ORM  # the ORM broker, with nothing running it
    batch = make(owner, count=6).json()
    single = outsider.client().post("/api/v1/generate", BASE).json()
    # One task ahead in the broker (VIDEOGEN_QUEUE_AHEAD = 1): the batch's first item.
    assert handed(owner, outsider) == ["alice"]
    run_one()  # a worker takes it: the next place goes to the team with nothing in flight
    gen = Generation.objects.get(generation_id=single["generation_id"])
    assert gen.status == "in_queue"
    run_one()
    assert Generation.objects.get(pk=gen.pk).status == "completed"
    waiting = Generation.objects.filter(batch__batch_id=batch["batch_id"], status="pending")
    assert waiting.count() == 4


def test_teams_take_turns_and_a_single_generation_skips_its_own_batch(
    owner: Account, outsider: Account, settings: Any
) -> None:
    third = make_account("carol@example.com")
    settings.VIDEOGEN_QUEUE_AHEAD = 0  # hold everything while the lines fill
    make(owner, count=4)
    make(outsider, count=4)
    make(third, count=4)
    mine = owner.client().post("/api/v1/generate", {**BASE, "prompt": "now please"}).json()
    assert fairshare.release() == 0
    assert fairshare.release(ahead=6) == 6
    assert handed(owner, outsider, third) == ["alice", "mallory", "carol"] * 2
    first = Generation.objects.filter(team=owner.team, status="in_queue").order_by("queued_at")
    # Within a team: the single generation someone waits for before its batch.
    assert first[0].generation_id == mine["generation_id"]


def test_a_paused_team_keeps_its_work_waiting(owner: Account, outsider: Account) -> None:
    owner.team.queue_paused = True
    owner.team.save()
    gen_id = owner.client().post("/api/v1/generate", BASE).json()["generation_id"]
    assert fairshare.release(ahead=10) == 0
    assert Generation.objects.get(generation_id=gen_id).status == "pending"
    theirs = outsider.client().post("/api/v1/generate", BASE).json()["generation_id"]
    assert Generation.objects.get(generation_id=theirs).status == "in_queue"
    owner.team.queue_paused = False
    owner.team.save()
    assert fairshare.release(ahead=10) == 1
    assert Generation.objects.get(generation_id=gen_id).status == "in_queue"


def test_a_broker_that_refuses_puts_the_row_back_in_line(
    owner: Account, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.VIDEOGEN_QUEUE_AHEAD = 0
    gen_id = owner.client().post("/api/v1/generate", BASE).json()["generation_id"]

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(fairshare, "async_task", refuse)
    assert fairshare.release_quietly(ahead=1) == 0  # Redis restarting: no error for the caller
    assert Generation.objects.get(generation_id=gen_id).status == "pending"
    monkeypatch.undo()
    assert fairshare.release(ahead=1) == 1
    assert Generation.objects.get(generation_id=gen_id).status == "in_queue"
