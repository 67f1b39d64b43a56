"""Key pools and in-flight limits of the hosted providers (CONTRACT 9, routing/pools.py).

fal is played by the fake queue API of tests/fake_fal.py with several keys, each its own
account (a request is found only with the key that submitted it), so a job that polled
with another key than its own would never finish here. An operator map routes `wan-25` to
it with small, quick jobs. Tasks run inline (django-q2 sync mode) and `drive` plays the
dispatcher that worker processes run in production."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, TestCase

from generations import tasks
from generations.ids import key_fingerprint, split_keys
from generations.models import Generation, ProviderKey, ProviderSlot, UsageEvent
from generations.rendering.hosted import providers
from generations.rendering.hosted.state import HostedState
from generations.routing import pools
from generations.tasks import dispatch
from tests.conftest import Account, make_account
from tests.fake_fal import FakeFal
from videogen_site.settings import envlimits

MAP = """
[wan-25.fal]
text-to-video = "fal-ai/wan-25-preview/text-to-video"
image-to-video = "fal-ai/wan-25-preview/image-to-video"
typical_s = 1
deadline_s = {deadline}
[wan-25.fal.input]
prompt = "prompt"
"""
# Secrets as an operator would paste them: none of them may ever show in a row, a log line,
# a status or /healthz.
KEYS = ["fal-secret-one-7d1c9a", "fal-secret-two-52be0f", "fal-secret-three-c3a8e4"]
FINAL = Generation.FINAL_STATUSES


@pytest.fixture
def fal(settings: Any, tmp_path: Path, sync_tasks: None) -> Iterator[FakeFal]:
    with FakeFal(keys=KEYS) as fake:
        fake.queue_polls, fake.run_polls = 1, 1
        path = tmp_path / "providers.toml"
        path.write_text(MAP.format(deadline=60))
        settings.VIDEOGEN_PROVIDER_MAP = str(path)
        settings.FAL_KEY = ",".join(KEYS)
        settings.FAL_QUEUE_URL = fake.url
        settings.VIDEOGEN_PROVIDER_CONCURRENCY = {}
        settings.VIDEOGEN_POLL_FIRST_S = 0.001
        settings.VIDEOGEN_POLL_MAX_S = 0.004
        yield fake


@pytest.fixture
def busy(transactional_db: None) -> Account:
    return make_account("busy@example.com", monthly_limit=1000)


def set_deadline(settings: Any, deadline_s: float) -> None:
    path = Path(settings.VIDEOGEN_PROVIDER_MAP)
    path.write_text(MAP.format(deadline=deadline_s))
    settings.VIDEOGEN_PROVIDER_MAP = str(path)  # a new value: the map is read again


def submit(account: Account, **body: Any) -> str:
    data = {"model": "wan-25", "prompt": "a kite over dunes", "duration": 1,
            "resolution": "480p", **body}  # fmt: skip
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = account.client().post("/api/v1/generate", data)
    assert response.status_code == 200, response.content
    return str(response.json()["generation_id"])


def drive(timeout_s: float = 60, until: float | None = None) -> None:
    """Dispatch due polls until every generation is final (or until `until`, monotonic)."""
    end = time.monotonic() + timeout_s
    while Generation.objects.exclude(status__in=FINAL).exists():
        if until is not None and time.monotonic() >= until:
            return
        assert time.monotonic() < end, "generations still running"
        if not dispatch.dispatch_due():
            time.sleep(0.002)


def state(gen_id: str) -> HostedState:
    return HostedState.load(Generation.objects.get(generation_id=gen_id).engine_handle)


def keys_used(fake: FakeFal, request_id: str) -> set[str]:
    """The keys of every call about one fal request: its status, result and cancel."""
    return {r.headers["authorization"] for r in fake.api_requests() if request_id in r.path}


# --- settings ---------------------------------------------------------------------------------


def test_the_concurrency_setting_reads_limits_per_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIMITS", "fal=4, Replicate=8")
    assert envlimits("LIMITS") == {"fal": 4, "replicate": 8}
    monkeypatch.setenv("LIMITS", "")
    assert envlimits("LIMITS") == {}


@pytest.mark.parametrize("value", ["fal=0", "fal=x", "fal", "=3", "fal=-1", "fal=1.5"])
def test_a_bad_concurrency_entry_stops_the_server_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LIMITS", f"replicate=2,{value}")
    with pytest.raises(ValueError, match=f"LIMITS: {value.partition('=')[0]}="):
        envlimits("LIMITS")


def test_a_credential_setting_holds_a_pool_of_comma_separated_keys(settings: Any) -> None:
    assert split_keys(" k1, k2,,k1 ") == ["k1", "k2"]
    settings.FAL_KEY = "k1,k2"
    assert providers.keys("fal") == ["k1", "k2"] and providers.configured("fal")
    settings.FAL_KEY = " , ,"
    assert providers.keys("fal") == [] and not providers.configured("fal")
    route = providers.route_for("kling_25")
    assert route is None or route.provider != "fal"  # no key: fal serves nothing
    fingerprint = key_fingerprint("k1")
    assert fingerprint.startswith("sha256:") and len(fingerprint) <= 16 and "k1" not in fingerprint


# --- round robin --------------------------------------------------------------------------------


def test_jobs_are_spread_over_the_keys_and_each_keeps_its_key(fal: FakeFal, busy: Account) -> None:
    ids = [submit(busy, prompt=f"kite number {i}") for i in range(6)]
    drive()
    assert set(Generation.objects.values_list("status", flat=True)) == {"completed"}
    per_key = {key: sum(job.key == key for job in fal.jobs.values()) for key in KEYS}
    assert per_key == dict.fromkeys(KEYS, 2)  # round robin: two jobs on each of three keys
    for gen_id in ids:
        gen = Generation.objects.get(generation_id=gen_id)
        (job,) = [j for j in fal.jobs.values() if j.input["prompt"] == gen.prompt]
        assert key_fingerprint(job.key) == state(gen_id).key  # the key its state names
        # Every poll and the result read went with the key that submitted the job.
        assert keys_used(fal, job.id) == {f"Key {job.key}"}
        assert not any(key in str(gen.engine_handle) for key in KEYS)


# --- limits -------------------------------------------------------------------------------------


def test_jobs_beyond_the_limit_wait_for_a_slot_and_all_complete(
    fal: FakeFal, busy: Account, settings: Any
) -> None:
    settings.FAL_KEY = ",".join(KEYS[:2])
    settings.VIDEOGEN_PROVIDER_CONCURRENCY = {"fal": 1}  # per key: two in flight at most
    ids = [submit(busy, prompt=f"kite number {i}") for i in range(5)]
    # Two submitted (one per key), three waiting in our queue, never sent upstream.
    assert len(fal.jobs) == 2 and {job.key for job in fal.jobs.values()} == set(KEYS[:2])
    assert ProviderSlot.objects.count() == 2
    waiting = [gen_id for gen_id in ids if not state(gen_id).submitted]
    assert len(waiting) == 3
    for gen_id in waiting:
        gen = Generation.objects.get(generation_id=gen_id)
        assert gen.status == "in_progress" and gen.next_poll_at is not None
        assert state(gen_id).detail == "waiting for a free fal slot (all 2 in use)"
    page = Client()
    page.force_login(busy.user)
    assert "waiting for a free fal slot" in page.get("/queue").content.decode()

    drive()
    gens = list(Generation.objects.all())
    assert {g.status for g in gens} == {"completed"}, [g.error_message for g in gens]
    assert len(fal.jobs) == 5 and fal.max_in_flight == 2
    assert ProviderSlot.objects.count() == 0  # every slot given back
    assert any(HostedState.load(g.engine_handle).slot_waited_s > 0 for g in gens)
    for gen in gens:
        assert sorted(UsageEvent.objects.filter(generation=gen).values_list("kind", flat=True)) \
            == ["charge", "settle"]  # fmt: skip


def test_the_deadline_counts_from_the_submit_not_from_the_wait(
    fal: FakeFal, busy: Account, settings: Any
) -> None:
    settings.FAL_KEY = KEYS[0]
    settings.VIDEOGEN_PROVIDER_CONCURRENCY = {"fal": 1}
    set_deadline(settings, 2)
    fal.never_finish = True
    stuck = submit(busy, prompt="a kite that never lands")
    fal.never_finish = False
    waiting = submit(busy, prompt="a kite that lands")
    # The first holds the only slot until its own deadline; the second waits meanwhile, as
    # long as that, and still gets its whole deadline once submitted.
    drive()
    first = Generation.objects.get(generation_id=stuck)
    second = Generation.objects.get(generation_id=waiting)
    assert first.status == "failed" and first.error_code == "timeout"
    assert second.status == "completed", second.error_message
    assert state(waiting).slot_waited_s >= 1.5
    assert ProviderSlot.objects.count() == 0


# --- every exit gives the slot back -------------------------------------------------------------


def test_every_way_out_of_the_provider_gives_the_slot_back(
    fal: FakeFal, busy: Account, settings: Any
) -> None:
    settings.FAL_KEY = KEYS[0]
    settings.VIDEOGEN_PROVIDER_CONCURRENCY = {"fal": 1}
    outcomes = {}
    # Refused at the submit, refused in the result, canceled while running; the next job
    # of each round finds the slot free at once.
    for policy_on in ("submit", "result"):
        fal.policy_on = policy_on
        gen_id = submit(busy, prompt="a forbidden kite")
        drive()
        outcomes[policy_on] = Generation.objects.get(generation_id=gen_id).error_code
        assert ProviderSlot.objects.count() == 0
    fal.never_finish = True
    gen_id = submit(busy, prompt="a kite held forever")
    assert ProviderSlot.objects.filter(generation__generation_id=gen_id).count() == 1
    assert busy.client().post(f"/api/v1/generations/{gen_id}/cancel", {}).status_code == 200
    drive()
    outcomes["cancel"] = Generation.objects.get(generation_id=gen_id).status
    assert ProviderSlot.objects.count() == 0
    assert outcomes == {"submit": "content_policy", "result": "content_policy",
                        "cancel": "canceled"}  # fmt: skip
    fal.never_finish = False
    done = submit(busy, prompt="a kite that lands")
    assert state(done).submitted  # the slot was free: submitted at once
    drive()
    assert Generation.objects.get(generation_id=done).status == "completed"


def test_slots_of_generations_no_longer_in_progress_are_freed(
    fal: FakeFal, busy: Account, settings: Any
) -> None:
    settings.FAL_KEY = KEYS[0]
    settings.VIDEOGEN_PROVIDER_CONCURRENCY = {"fal": 1}
    fal.never_finish = True
    held = submit(busy, prompt="a kite held forever")
    fingerprint = key_fingerprint(KEYS[0])
    # Its generation ended by a path that did not give the slot back (an admin, the reaper
    # giving up on a worker): the slot is stale.
    Generation.objects.filter(generation_id=held).update(status="failed", next_poll_at=None)
    assert ProviderSlot.objects.filter(key=fingerprint).count() == 1
    # The next job finds every slot taken, frees the stale one and takes it at once.
    fal.never_finish = False
    nxt = submit(busy, prompt="a kite that lands")
    assert state(nxt).submitted
    slot = ProviderSlot.objects.get()
    assert slot.generation.generation_id == nxt and slot.key == fingerprint
    # And the reaper frees stale slots every minute; a job in flight keeps its own.
    Generation.objects.filter(generation_id=nxt).update(status="canceled", next_poll_at=None)
    settings.VIDEOGEN_PROVIDER_CONCURRENCY = {"fal": 2}
    fal.never_finish = True
    live = submit(busy, prompt="a kite still flying")
    assert ProviderSlot.objects.count() == 2
    tasks.reap_stale()
    slots = ProviderSlot.objects.values_list("generation__generation_id", flat=True)
    assert list(slots) == [live]


# --- refused keys -------------------------------------------------------------------------------


def test_a_refused_key_leaves_the_rotation_and_the_job_runs_on_another(
    fal: FakeFal, busy: Account, caplog: pytest.LogCaptureFixture
) -> None:
    fal.refused.add(KEYS[1])
    caplog.set_level(logging.DEBUG)
    ids = [submit(busy, prompt=f"kite number {i}") for i in range(6)]
    drive()
    gens = list(Generation.objects.filter(generation_id__in=ids))
    assert {g.status for g in gens} == {"completed"}, [g.error_message for g in gens]
    # Refused once (the submit that found out), then never tried again.
    refused = [r for r in fal.api_requests() if r.headers["authorization"] == f"Key {KEYS[1]}"]
    assert len(refused) == 1
    assert {job.key for job in fal.jobs.values()} == {KEYS[0], KEYS[2]}
    row = ProviderKey.objects.get()
    fingerprint = key_fingerprint(KEYS[1])
    assert (row.provider, row.fingerprint) == ("fal", fingerprint)
    assert row.reason.startswith(f"fal key #2 ({fingerprint}): The fal provider refused")
    assert not pools.usable("fal").count(fingerprint) and pools.has_usable_key("fal")

    response = Client().get("/healthz")
    assert response.status_code == 200  # not critical: the other keys serve
    body = response.json()
    assert body["status"] == "degraded" and body["ok"] is True
    check = body["checks"]["provider_keys"]
    assert check["critical"] is False and check["error"] == "1 provider key out of rotation"
    [listed] = check["out_of_rotation"]
    assert listed["provider"] == "fal" and listed["key"] == fingerprint
    assert listed["reason"].startswith(f"fal key #2 ({fingerprint})")
    shown = response.content.decode() + caplog.text + row.reason
    shown += "".join(str(g.engine_handle) + g.error_message for g in gens)
    assert not any(key in shown for key in KEYS)


def test_a_key_refused_while_its_job_runs_sends_the_job_to_another_key(
    fal: FakeFal, busy: Account, settings: Any
) -> None:
    settings.FAL_KEY = ",".join(KEYS[:2])
    fal.queue_polls = 3
    gen_id = submit(busy)
    (job,) = fal.jobs.values()
    fal.refused.add(job.key)  # revoked while the job is at the provider
    drive()
    gen = Generation.objects.get(generation_id=gen_id)
    assert gen.status == "completed", gen.error_message
    assert state(gen_id).key_retries == 1
    assert [j.key for j in fal.jobs.values()] == [job.key, *(k for k in KEYS[:2] if k != job.key)]
    assert ProviderKey.objects.get().fingerprint == key_fingerprint(job.key)


def test_with_every_key_refused_the_job_fails_as_before(
    fal: FakeFal, busy: Account, settings: Any
) -> None:
    settings.FAL_KEY = ",".join(KEYS[:2])
    fal.refused.update(KEYS)
    gen_id = submit(busy)
    drive()
    gen = Generation.objects.get(generation_id=gen_id)
    assert gen.status == "failed" and gen.error_code == "upstream_auth"
    assert "refused this server's credentials" in gen.error_message
    assert ProviderKey.objects.count() == 2 and not pools.has_usable_key("fal")
    assert ProviderSlot.objects.count() == 0
    assert sorted(UsageEvent.objects.filter(generation=gen).values_list("kind", flat=True)) == [
        "charge", "refund",
    ]  # fmt: skip
    # Both out of rotation: the next job fails at once, without calling the provider.
    calls = len(fal.api_requests())
    nxt = submit(busy)
    assert Generation.objects.get(generation_id=nxt).error_code == "upstream_auth"
    assert len(fal.api_requests()) == calls
