"""Several routes per model: failover across providers and the circuit breaker per provider
(routing/failover.py, routing/breaker.py, carried out by tasks/hosted.py).

fal and Replicate are the fake servers of tests/ on loopback, switched into their fault
modes (down, slow, a 429 storm) while they run. An operator map routes `wan-25` to fal
first, then Replicate, each with its own input table, for 1 s clips at 480p that the fakes
return exactly (stored by remuxing, so each generation is quick). Tasks run inline
(django-q2's sync mode) and `drive` plays the dispatcher of the worker processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, TestCase
from django.utils import timezone

from generations.models import Generation, ProviderCircuit, UsageEvent
from generations.rendering.hosted import base as hosted_base
from generations.routing import breaker, failover
from generations.tasks import dispatch as polling
from generations.tasks import hosted, run
from tests.conftest import Account
from tests.fake_fal import FakeFal
from tests.fake_replicate import FakeReplicate
from tests.fakeupstream import DOWN, SLOW, STORM_429, Reply, make_mp4

FAL_KEY = "fal-failover-key"
REPLICATE_TOKEN = "r8_failover_token"
MAP = """
[wan-25.{first}]
{first_routes}
[wan-25.{second}]
{second_routes}
"""
ROUTES = {
    "fal": """text-to-video = "fal-ai/wan-25-preview/text-to-video"
image-to-video = "fal-ai/wan-25-preview/image-to-video"
typical_s = 2
{fal_limits}
[wan-25.fal.input]
prompt = "prompt"
duration = "duration|str"
resolution = "resolution"
""",
    "replicate": """text-to-video = "wan-video/wan-2.5-t2v"
image-to-video = "wan-video/wan-2.5-i2v"
typical_s = 2
[wan-25.replicate.input]
prompt = "prompt"
duration = "duration|int"
resolution = "resolution"
""",
}
FINAL = Generation.FINAL_STATUSES


def write_map(path: Path, *, first: str = "fal", fal_limits: str = "") -> str:
    second = "replicate" if first == "fal" else "fal"
    text = MAP.format(
        first=first, second=second,
        first_routes=ROUTES[first].format(fal_limits=fal_limits),
        second_routes=ROUTES[second].format(fal_limits=fal_limits),
    )  # fmt: skip
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def exact_video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What both fakes return: exactly the 480p, 30 fps, 1 s asked for (stored by remuxing)."""
    folder = tmp_path_factory.mktemp("failover-video")
    return make_mp4(folder / "exact.mp4", width=854, height=480, fps=30, frames=30)


@pytest.fixture
def fakes(
    settings: Any, tmp_path: Path, sync_tasks: None, exact_video: bytes
) -> Iterator[tuple[FakeFal, FakeReplicate]]:
    with FakeFal(key=FAL_KEY) as fal, FakeReplicate(token=REPLICATE_TOKEN) as replicate:
        fal.video = replicate.video = exact_video
        replicate.run_polls = 1
        settings.VIDEOGEN_PROVIDER_MAP = write_map(tmp_path / "providers.toml")
        settings.FAL_KEY, settings.FAL_QUEUE_URL = FAL_KEY, fal.url
        settings.REPLICATE_API_TOKEN = REPLICATE_TOKEN
        settings.REPLICATE_API_URL = f"{replicate.url}/v1"
        settings.VIDEOGEN_POLL_FIRST_S = 0.001
        settings.VIDEOGEN_POLL_MAX_S = 0.004
        settings.VIDEOGEN_FAILOVER_RETRIES = 1
        settings.VIDEOGEN_FAILOVER_429_RETRIES = 2
        settings.VIDEOGEN_BREAKER_FAILURES = 5
        settings.VIDEOGEN_BREAKER_COOLDOWN_S = 60
        yield fal, replicate


def drive(timeout_s: float = 60) -> None:
    """Dispatch due polls until every generation is final."""
    end = time.monotonic() + timeout_s
    while Generation.objects.exclude(status__in=FINAL).exists():
        assert time.monotonic() < end, "generations still running"
        if not polling.dispatch_due():
            time.sleep(0.002)


def submit(account: Account, **body: Any) -> str:
    data = {"model": "wan-25", "prompt": "a paper boat on a stream", "duration": 1,
            "resolution": "480p", **body}  # fmt: skip
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = account.client().post("/api/v1/generate", data)
    assert response.status_code == 200, response.content
    return str(response.json()["generation_id"])


def status(account: Account, gen_id: str) -> dict[str, Any]:
    body: dict[str, Any] = account.client().get(f"/api/v1/status/{gen_id}").json()
    return body


def outcomes(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["provider"], a["outcome"]) for a in body["attempts"]]


def ledger(gen_id: str) -> list[str]:
    events = UsageEvent.objects.filter(generation__generation_id=gen_id)
    return sorted(events.values_list("kind", flat=True))


def circuit(provider: str) -> ProviderCircuit:
    return ProviderCircuit.objects.get(provider=provider)


def open_circuit(provider: str, settings: Any) -> None:
    for _ in range(settings.VIDEOGEN_BREAKER_FAILURES):
        breaker.failed(provider, "HTTP 503")
    assert circuit(provider).state == "open"


# --- which routes, in which order ----------------------------------------------------------


def test_a_jobs_routes_are_the_operators_order_narrowed_to_what_can_serve_it(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account, settings: Any, tmp_path: Path
) -> None:
    gen_id = submit(owner)
    gen = Generation.objects.get(generation_id=gen_id)
    assert [r.provider for r in failover.job_routes(gen)] == ["fal", "replicate"]
    settings.VIDEOGEN_PROVIDER_MAP = write_map(tmp_path / "reversed.toml", first="replicate")
    assert [r.provider for r in failover.job_routes(gen)] == ["replicate", "fal"]
    # A route that does not take the job's duration is not one of its routes.
    settings.VIDEOGEN_PROVIDER_MAP = write_map(
        tmp_path / "narrow.toml", fal_limits="durations = [5, 10]"
    )
    assert [r.provider for r in failover.job_routes(gen)] == ["replicate"]
    # Nor is a provider whose key is not set.
    settings.VIDEOGEN_PROVIDER_MAP = write_map(tmp_path / "again.toml")
    settings.REPLICATE_API_TOKEN = ""
    assert [r.provider for r in failover.job_routes(gen)] == ["fal"]


# --- each failover trigger -----------------------------------------------------------------


def test_a_provider_answering_503_fails_over_to_the_next_route_translated_for_it(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account
) -> None:
    fal, replicate = fakes
    fal.mode = DOWN
    gen_id = submit(owner)
    drive()
    body = status(owner, gen_id)
    assert body["status"] == "completed" and body["provider"] == "replicate"
    assert outcomes(body) == [("fal", "failed_over"), ("replicate", "served")]
    assert "HTTP 503" in body["attempts"][0]["detail"]
    assert FAL_KEY not in str(body) and REPLICATE_TOKEN not in str(body)
    # fal was tried once more before the job moved on (VIDEOGEN_FAILOVER_RETRIES = 1) ...
    assert fal.received["submit"] == 2
    sent_to_fal = fal.api_requests("POST")[0].json()
    assert sent_to_fal == {"prompt": "a paper boat on a stream", "duration": "1",
                           "resolution": "480p"}  # fmt: skip
    # ... and Replicate got the job in its own input table (duration an integer).
    (create,) = [r for r in replicate.api_requests("POST") if r.path.endswith("/predictions")]
    assert create.path == "/v1/models/wan-video/wan-2.5-t2v/predictions"
    assert create.json()["input"] == {"prompt": "a paper boat on a stream", "duration": 1,
                                      "resolution": "480p"}  # fmt: skip
    assert ledger(gen_id) == ["charge", "settle"]  # charged once, whoever served it
    video = owner.client().get(f"/v1/videos/{gen_id}").json()
    assert video["provider"] == "replicate" and video["attempts"] == body["attempts"]
    # The generation's page says so too.
    browser = Client()
    browser.force_login(owner.user)
    page = browser.get(f"/generations/{gen_id}").content.decode()
    assert "Served by</dt><dd>replicate (after: fal failed over)</dd>" in page


def test_a_provider_that_does_not_answer_in_time_fails_over(
    fakes: tuple[FakeFal, FakeReplicate],
    owner: Account,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fal, _ = fakes
    monkeypatch.setattr(hosted_base, "CALL_TIMEOUT", (2.0, 0.3))  # our read timeout, shorter
    fal.mode, fal.slow_s = SLOW, 1.0
    settings.VIDEOGEN_FAILOVER_RETRIES = 0
    gen_id = submit(owner)
    drive()
    body = status(owner, gen_id)
    assert body["status"] == "completed" and body["provider"] == "replicate"
    assert outcomes(body) == [("fal", "failed_over"), ("replicate", "served")]
    assert "ReadTimeout" in body["attempts"][0]["detail"]


def test_a_429_storm_is_waited_out_a_few_times_then_fails_over(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account
) -> None:
    fal, _ = fakes
    fal.mode, fal.storm_retry_after = STORM_429, "0"
    gen_id = submit(owner)
    drive()
    body = status(owner, gen_id)
    assert body["provider"] == "replicate" and body["status"] == "completed"
    assert outcomes(body) == [("fal", "failed_over"), ("replicate", "served")]
    assert fal.received["submit"] == 3  # the first 429 and VIDEOGEN_FAILOVER_429_RETRIES more


def test_a_429_asking_for_a_long_wait_fails_over_at_once(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account
) -> None:
    fal, _ = fakes
    fal.mode, fal.storm_retry_after = STORM_429, "3600"
    started = time.monotonic()
    gen_id = submit(owner)
    drive()
    assert status(owner, gen_id)["provider"] == "replicate"
    assert fal.received["submit"] == 1 and time.monotonic() - started < 30


def test_a_job_the_provider_failed_as_retryable_moves_to_the_next_route(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account, settings: Any
) -> None:
    fal, _ = fakes
    body = {"detail": [{"loc": [], "msg": "runner crashed", "type": "internal_server_error"}]}
    fal.result_reply = Reply.json(500, body, **{"X-Fal-Retryable": "true"})
    settings.VIDEOGEN_FAILOVER_RETRIES = 0
    gen_id = submit(owner)
    drive()
    answer = status(owner, gen_id)
    assert answer["status"] == "completed" and answer["provider"] == "replicate"
    assert outcomes(answer) == [("fal", "failed_over"), ("replicate", "served")]
    assert fal.received["submit"] == 1  # not resubmitted to fal: it went to Replicate


def test_a_run_delivered_twice_keeps_the_job_on_the_provider_it_moved_to(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account, settings: Any
) -> None:
    fal, replicate = fakes
    settings.VIDEOGEN_FAILOVER_RETRIES = 0
    fal.mode = DOWN
    gen_id = submit(owner)  # fal fails, the job moves to Replicate and is submitted there
    gen = Generation.objects.get(generation_id=gen_id)
    assert gen.engine == "replicate" and gen.engine_handle["job"]
    # Its run task comes again (the broker delivered it twice) once its heartbeat is stale.
    stale = timezone.now() - timedelta(seconds=settings.VIDEOGEN_STALE_AFTER + 5)
    Generation.objects.filter(pk=gen.pk).update(heartbeat_at=stale, next_poll_at=None)
    run.generation_run(gen.pk)
    drive()
    body = status(owner, gen_id)
    assert body["status"] == "completed" and body["provider"] == "replicate"
    assert replicate.received["create"] == 1 and fal.received["submit"] == 1
    assert ledger(gen_id) == ["charge", "settle"]


# --- what never fails over ---------------------------------------------------------------


def test_a_content_policy_refusal_on_the_first_route_does_not_fail_over(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account
) -> None:
    fal, replicate = fakes
    gen_id = submit(owner, prompt="a forbidden scene")  # fal refuses it at submit (422)
    drive()
    body = status(owner, gen_id)
    assert body["status"] == "failed" and body["error"]["code"] == "content_policy"
    assert body["provider"] == "fal"
    assert outcomes(body) == [("fal", "failed")]
    assert body["attempts"][0]["detail"] == "content_policy"
    assert replicate.api_calls() == 0  # Replicate was never asked
    assert fal.received["submit"] == 1
    assert ledger(gen_id) == ["charge", "refund"]
    # A refusal is an answer: it counts as no failure of the provider.
    assert not ProviderCircuit.objects.filter(provider="fal", failures__gt=0).exists()


def test_a_job_running_upstream_stays_on_its_provider_while_polls_fail(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account
) -> None:
    fal, replicate = fakes
    fal.queue_polls = 1
    gen_id = submit(owner)  # submitted to fal at once
    assert fal.received["submit"] == 1
    # Its next four polls fail: it is running at fal, so it waits (never paid for twice).
    fal.script = [Reply(503, b"upstream connect error")] * 4
    drive()
    body = status(owner, gen_id)
    assert body["status"] == "completed" and body["provider"] == "fal"
    assert outcomes(body) == [("fal", "served")]
    assert replicate.api_calls() == 0 and fal.received["submit"] == 1
    # Four failures in a row were counted, then a success set the count back to 0.
    assert circuit("fal").failures == 0 and circuit("fal").state == "closed"


def test_the_last_route_failing_transiently_is_retried_not_failed(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account, settings: Any
) -> None:
    fal, replicate = fakes
    settings.VIDEOGEN_BREAKER_FAILURES = 0  # breaker off: only failover is at work here
    fal.mode = DOWN
    replicate.script = [Reply(503, b"busy")] * 6  # the last route: six 503s, then it serves
    gen_id = submit(owner)
    drive()
    body = status(owner, gen_id)
    assert body["status"] == "completed" and body["provider"] == "replicate"
    assert outcomes(body) == [("fal", "failed_over"), ("replicate", "served")]
    assert fal.received["submit"] == 2  # fal left once, never tried again


# --- the circuit breaker ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_circuit_opens_after_n_consecutive_failures_and_a_success_resets_the_count(
    settings: Any,
) -> None:
    settings.VIDEOGEN_BREAKER_FAILURES, settings.VIDEOGEN_BREAKER_COOLDOWN_S = 3, 60
    for _ in range(2):
        assert not breaker.failed("fal", "HTTP 503")
    breaker.succeeded("fal")
    assert circuit("fal").failures == 0
    assert not breaker.failed("fal", "HTTP 503")
    assert not breaker.failed("fal", "HTTP 502")
    assert breaker.gate("fal").allowed
    assert breaker.failed("fal", "HTTP 500")  # the third in a row opens it
    row = circuit("fal")
    assert row.state == "open" and row.opened_count == 1 and row.last_error == "HTTP 500"
    assert row.retry_at is not None and row.opened_at is not None
    assert abs((row.retry_at - row.opened_at).total_seconds() - 60) < 1
    gate = breaker.gate("fal")
    assert not gate.allowed and gate.until == row.retry_at
    assert breaker.gate("replicate").allowed  # one circuit per provider


@pytest.mark.django_db
def test_after_the_cool_down_exactly_one_caller_probes_and_its_success_closes_it(
    settings: Any,
) -> None:
    settings.VIDEOGEN_BREAKER_FAILURES = 2
    for _ in range(2):
        breaker.failed("fal", "HTTP 503")
    ProviderCircuit.objects.filter(provider="fal").update(retry_at=timezone.now())
    first, second, third = (breaker.gate("fal") for _ in range(3))
    assert first.allowed and first.probe
    assert not second.allowed and not third.allowed  # the probe is out: the rest skip
    assert circuit("fal").state == "half_open"
    breaker.succeeded("fal")  # a poll of a job already there does not decide it
    assert circuit("fal").state == "half_open"
    breaker.succeeded("fal", probe=first.probe)
    row = circuit("fal")
    assert row.state == "closed" and row.failures == 0 and row.opened_count == 1
    assert breaker.gate("fal").allowed


@pytest.mark.django_db
def test_a_failed_probe_opens_the_circuit_again_for_another_cool_down(settings: Any) -> None:
    settings.VIDEOGEN_BREAKER_FAILURES = 2
    for _ in range(2):
        breaker.failed("fal", "HTTP 503")
    ProviderCircuit.objects.filter(provider="fal").update(retry_at=timezone.now())
    probe = breaker.gate("fal").probe
    assert breaker.failed("fal", "HTTP 503 again", probe=probe)
    row = circuit("fal")
    assert row.state == "open" and row.opened_count == 2 and row.probe_claim == ""
    assert row.retry_at is not None and row.retry_at > timezone.now() + timedelta(seconds=50)
    assert not breaker.gate("fal").allowed


@pytest.mark.django_db
def test_a_prober_that_died_does_not_wedge_the_circuit(settings: Any) -> None:
    settings.VIDEOGEN_BREAKER_FAILURES = 1
    breaker.failed("fal", "HTTP 503")
    ProviderCircuit.objects.filter(provider="fal").update(retry_at=timezone.now())
    dead = breaker.gate("fal").probe
    assert dead and not breaker.gate("fal").allowed
    # Its lease runs out without a report: the next caller takes the probe.
    ProviderCircuit.objects.filter(provider="fal").update(probe_until=timezone.now())
    taken = breaker.gate("fal")
    assert taken.allowed and taken.probe and taken.probe != dead
    breaker.succeeded("fal", probe=dead)  # too late: no longer the probe
    assert circuit("fal").state == "half_open"
    breaker.succeeded("fal", probe=taken.probe)
    assert circuit("fal").state == "closed"


def test_while_a_circuit_is_open_jobs_skip_that_provider_without_calling_it(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account, settings: Any
) -> None:
    fal, _ = fakes
    open_circuit("fal", settings)
    gen_id = submit(owner)
    drive()
    body = status(owner, gen_id)
    assert body["status"] == "completed" and body["provider"] == "replicate"
    assert outcomes(body) == [("fal", "skipped_open"), ("replicate", "served")]
    assert fal.api_calls() == 0


def test_the_estimate_and_its_reservation_follow_the_route_a_job_will_start_on(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account, settings: Any, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text("[wan-25.fal]\nusd_per_s = 0.10\n[wan-25.replicate]\nusd_per_s = 0.25\n")
    settings.VIDEOGEN_PRICE_MAP = str(prices)
    body = {"model": "wan-25", "prompt": "a paper boat", "duration": 2, "resolution": "480p"}
    quoted = owner.client().post("/api/v1/estimate", body).json()
    assert (quoted["provider"], quoted["usd"]) == ("fal", "0.2000")
    open_circuit("fal", settings)
    quoted = owner.client().post("/api/v1/estimate", body).json()
    assert (quoted["provider"], quoted["usd"]) == ("replicate", "0.5000")
    gen_id = submit(owner, duration=2)
    drive()
    gen = Generation.objects.get(generation_id=gen_id)
    assert (gen.engine, gen.est_usd, gen.cost_usd) == ("replicate", Decimal("0.5"), Decimal("0.5"))


def test_when_every_route_is_open_a_job_waits_for_a_cool_down_then_probes(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account, settings: Any
) -> None:
    fal, replicate = fakes
    settings.VIDEOGEN_BREAKER_COOLDOWN_S = 1.0
    open_circuit("fal", settings)
    open_circuit("replicate", settings)
    started = time.monotonic()
    gen_id = submit(owner)
    gen = Generation.objects.get(generation_id=gen_id)
    assert gen.status == "in_progress" and gen.next_poll_at is not None  # waiting, not failed
    assert fal.api_calls() == replicate.api_calls() == 0
    drive()
    body = status(owner, gen_id)
    # fal, the first route, reopened first: this job was its probe, and closed it.
    assert body["status"] == "completed" and body["provider"] == "fal"
    assert outcomes(body) == [("fal", "served")]
    assert time.monotonic() - started >= 0.5
    assert circuit("fal").state == "closed" and circuit("replicate").state == "open"
    assert replicate.api_calls() == 0


def test_the_breaker_opens_after_n_failures_then_later_jobs_never_call_the_provider(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account, settings: Any
) -> None:
    fal, _ = fakes
    settings.VIDEOGEN_BREAKER_FAILURES, settings.VIDEOGEN_FAILOVER_RETRIES = 3, 0
    settings.VIDEOGEN_BREAKER_COOLDOWN_S = 60
    fal.mode = DOWN
    first = [submit(owner, prompt=f"boat {i}") for i in range(3)]
    drive()
    assert fal.received["submit"] == 3 and circuit("fal").state == "open"
    later = [submit(owner, prompt=f"later boat {i}") for i in range(3)]
    drive()
    assert fal.api_calls() == 3  # not called at all while open
    for gen_id in first + later:
        assert status(owner, gen_id)["provider"] == "replicate"
        assert ledger(gen_id) == ["charge", "settle"]
    assert [outcomes(status(owner, g))[0] for g in later] == [("fal", "skipped_open")] * 3
    # fal recovers; after the cool-down one job probes it, and the circuit closes.
    fal.mode = ""
    # The cool-down ends (as a minute later; the wait itself is timed in the test above).
    ProviderCircuit.objects.filter(provider="fal").update(retry_at=timezone.now())
    recovered = submit(owner, prompt="the boat after the storm")
    drive()
    assert status(owner, recovered)["provider"] == "fal"
    assert fal.received["submit"] == 4
    row = circuit("fal")
    assert row.state == "closed" and row.opened_count == 1


# --- what leaves a provider, and what operators see ------------------------------------------


def test_every_exit_from_a_provider_runs_the_leave_hook(
    fakes: tuple[FakeFal, FakeReplicate], owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    fal, _ = fakes
    left: list[tuple[str, str, str]] = []
    monkeypatch.setattr(hosted, "left_provider",
                        lambda gen, provider, outcome: left.append((gen.prompt, provider,
                                                                    outcome)))  # fmt: skip
    fal.mode = DOWN
    submit(owner, prompt="moved on")
    drive()
    fal.mode = ""
    submit(owner, prompt="a forbidden thing")
    drive()
    fal.never_finish = True
    canceled = submit(owner, prompt="canceled midway")
    assert owner.client().post(f"/api/v1/generations/{canceled}/cancel", {}).status_code == 200
    drive()
    assert left == [
        ("moved on", "fal", "failed_over"),
        ("moved on", "replicate", "served"),
        ("a forbidden thing", "fal", "failed"),
        ("canceled midway", "fal", "canceled"),
    ]


@pytest.mark.django_db
def test_healthz_and_metrics_show_each_providers_circuit(settings: Any) -> None:
    open_circuit("fal", settings)
    breaker.failed("replicate", "HTTP 502")
    response = Client().get("/healthz")
    assert response.status_code == 200  # never critical
    body = response.json()
    check = body["checks"]["providers"]
    assert body["status"] == "degraded" and check["critical"] is False and not check["ok"]
    assert check["error"] == "circuit open: fal"
    assert check["circuits"]["fal"]["state"] == "open"
    assert check["circuits"]["replicate"] == {"state": "closed", "failures": 1,
                                              "opened_count": 0, "retry_at": None}  # fmt: skip
    metrics = Client().get("/metrics").content.decode()
    assert 'videogen_provider_circuit_state{provider="fal",state="open"} 1.0' in metrics
    assert 'videogen_provider_circuit_state{provider="fal",state="closed"} 0.0' in metrics
    assert 'videogen_provider_circuit_state{provider="replicate",state="closed"} 1.0' in metrics
    assert 'videogen_provider_circuit_opened_total{provider="fal"} 1.0' in metrics
    assert 'videogen_provider_circuit_failures{provider="replicate"} 1.0' in metrics
