"""The hosted-provider step: one short call to the provider per task, the next one scheduled
on the row (`next_poll_at`, picked up by tasks/dispatch.py), so no worker waits on a provider.

A step submits the job if it is not yet submitted, else polls it, and, once the provider is
done, downloads the result and stores it as ours. What it must remember between steps is a
HostedState on the row. Transient trouble (network, 5xx, 429, a malformed answer, an expired
result link) is retried with backoff until the route's deadline; the provider's own refusals
fail the generation at once, refunded.

A model may have several routes (providers): before the job runs upstream, routing/failover.py
decides at every step which one it uses, skipping providers whose circuit is open
(routing/breaker.py) and moving on after transient failures; this module carries that out
(`_route`, `_move`) and reports every call's outcome to the breaker. Whenever a job leaves a
provider (done, failed, canceled, moved on), `left_provider` runs and gives back its in-flight
slot. Before its submit a job takes a key of the provider's pool and, under
VIDEOGEN_PROVIDER_CONCURRENCY, a slot (routing/pools.py), or waits for one; a key the provider
refuses leaves the rotation, and a provider with no key left is left like a down one."""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import shutil
import time
from datetime import timedelta

from django.conf import settings
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from generations.core import lifecycle, provenance
from generations.media.images import image_mime_type, sniff_format
from generations.models import Generation
from generations.rendering.base import Canceled, EngineError
from generations.rendering.hosted import ingest, routes
from generations.rendering.hosted.base import Done, RemoteEngine, ResultGone, Transient
from generations.rendering.hosted.state import HostedState
from generations.routing import breaker, failover, pools, prices
from generations.tasks import audio, shots
from generations.tasks.dispatch import backoff_delay
from generations.tasks.results import Reporter, store_result, work_dir

log = logging.getLogger(__name__)

# A result URL that answers 403/404 is fetched again this often (providers re-sign URLs),
# and a file that does not decode (a download cut short, an error page served with 200)
# this often, before the generation fails.
RESULT_GONE_RETRIES = 2
BAD_OUTPUT_RETRIES = 4
# A job the provider failed but calls retryable is submitted again at most this often.
RESUBMITS = 2
# Asking the provider to cancel is tried this often when the call fails transiently.
CANCEL_TRIES = 4
# A job waiting for a provider slot asks again after 1-2 times VIDEOGEN_POLL_FIRST_S (with
# jitter, so that waiting jobs do not ask in lockstep).
SLOT_RETRY_SPREAD = (1.0, 2.0)


def left_provider(gen: Generation, provider: str, outcome: str) -> None:
    """Runs whenever a job leaves a provider: served, failed, canceled, or moved to another
    route (`outcome`, a routing/failover.py word). What a provider holds for a job in
    flight is given back here: its slot (routing/pools.py)."""
    pools.release(generation=gen)


def step(gen: Generation) -> str:
    """One step of the hosted job of `gen` (claimed by this run: gen.claim)."""
    state = HostedState.load(gen.engine_handle)
    if state.submitted:
        route = failover.route_on(gen)
        if route is None:
            return _fail(gen, state, EngineError(
                "model_unavailable",
                f"Model {gen.model!r} is no longer served by {gen.engine} on this server.",
            ))  # fmt: skip
        return _call(gen, state, route, probe="")
    if gen.cancel_requested:
        return _stop(gen)
    routed = _route(gen, state)
    if isinstance(routed, str):
        return routed
    route, probe = routed
    return _call(gen, state, route, probe=probe)


def _route(gen: Generation, state: HostedState) -> tuple[routes.Route, str] | str:
    """The route a job not running upstream takes now (moving it when that is another
    provider's), with the breaker's probe token if it holds the probe; or the step's result
    when it must wait (every route left is open) or cannot run at all."""
    candidates = failover.job_routes(gen)
    choice = failover.choose(gen, candidates)
    if choice.route is None:
        if choice.wait_until is None:
            return _fail(gen, state, EngineError(
                "model_unavailable",
                f"Model {gen.model!r} is no longer served by any provider on this server.",
            ))  # fmt: skip
        # Every provider left to this job is open: wait for the first cool-down to end.
        now = time.time()
        if not state.deadline:
            state.deadline, state.started = now + candidates[0].deadline_s, now
        if now >= state.deadline:
            return _fail(gen, state, EngineError(
                "timeout",
                f"No provider of {gen.model!r} was available within the deadline (each "
                "one's circuit stayed open); the charge was refunded.",
            ))  # fmt: skip
        state.detail = "every provider of this model is unavailable (circuit open): waiting"
        wait_s = (choice.wait_until - timezone.now()).total_seconds()
        return _wait(gen, state, None, candidates[0].typical_s, exact=max(0.05, wait_s))
    if choice.route.provider != gen.engine:
        skipped = [failover.attempt(p, failover.SKIPPED_OPEN, "circuit open")
                   for p in choice.skipped]  # fmt: skip
        if not _move(gen, state, choice.route, skipped, outcome=failover.SKIPPED_OPEN):
            return "skipped: no longer ours"
    return choice.route, choice.probe


def _move(
    gen: Generation,
    state: HostedState,
    route: routes.Route,
    records: list[dict[str, str]],
    *,
    outcome: str,
) -> bool:
    """Put a job that is not running upstream on another provider's route (leaving its
    provider with `outcome`, recording `records`); False when the run lost its claim."""
    if gen.engine and gen.engine != route.provider:
        left_provider(gen, gen.engine, outcome)
    tried = ", ".join(f"{r['provider']} {r['outcome']}" for r in records)
    log.warning("generation %s: %s -> %s (%s)", gen.generation_id, gen.engine or "-",
                route.provider, tried)  # fmt: skip
    gen.route_attempts = [*gen.route_attempts, *records]
    gen.engine = route.provider
    now = time.time()
    # A fresh start on the new route (its own deadline from now), but for what is not
    # about one provider: when the job began, and how often its poll was lost.
    fresh = HostedState(started=state.started or now, deadline=now + route.deadline_s,
                        rearmed=state.rearmed)  # fmt: skip
    for name in (f.name for f in dataclasses.fields(HostedState)):
        setattr(state, name, getattr(fresh, name))
    return bool(
        Generation.objects.filter(
            pk=gen.pk, claim=gen.claim, status=Generation.Status.IN_PROGRESS
        ).update(engine=gen.engine, route_attempts=gen.route_attempts, engine_handle=state.dump())
    )


def _call(gen: Generation, state: HostedState, route: routes.Route, *, probe: str) -> str:
    """Cancel, time out, submit or poll the job on `route` (the provider it is on)."""
    now = time.time()
    if not state.deadline:
        state.deadline, state.started = now + route.deadline_s, now
    if not state.submitted and not gen.cancel_requested:
        try:
            if not _hold_slot(gen, state, route):
                return _wait_for_slot(gen, state, route)
        except EngineError as exc:  # no key of the provider's pool is usable
            return _unusable(gen, state, route, exc, probe=probe)
    try:
        engine = pools.client(gen.engine, state.key)
    except EngineError as exc:  # the key this job runs under is gone from the setting
        return _fail(gen, state, exc)
    submitted = state.submitted
    job = routes.job_for(
        route,
        gen.spec(),
        _input_image(gen) if not submitted else None,
        end_image=_stored_image(gen.end_image) if not submitted else None,
        source_video=shots.native_source(gen, route) if not submitted else None,
    )

    if gen.cancel_requested:
        if state.job is not None:
            try:
                engine.cancel(job, state.job)
            except Transient as exc:
                # Stop paying for it upstream: ask again shortly, a few times.
                state.cancel_tries += 1
                if state.cancel_tries < CANCEL_TRIES:
                    return _wait(gen, state, None, 1.0, retry_after=exc.retry_after)
                log.warning("could not cancel upstream job of %s: %s", gen.generation_id, exc)
            except EngineError as exc:
                log.warning("could not cancel upstream job of %s: %s", gen.generation_id, exc)
        return _stop(gen)
    if now >= state.deadline:
        if state.job is not None:
            _best_effort_cancel(engine, job, state.job)
        return _fail(gen, state, EngineError(
            "timeout",
            f"The {gen.engine} provider did not finish within {route.deadline_s:.0f} s; "
            "the job was abandoned and the charge refunded.",
        ))  # fmt: skip
    try:
        if state.job is None:
            state.job = engine.submit(job)
            breaker.succeeded(gen.engine, probe=probe)
            state.upstream_model = job.upstream_model
            state.polls = state.route_failures = state.rate_limited = 0
            return _wait(gen, state, None, route.typical_s)
        outcome = engine.poll(job, state.job)
        breaker.succeeded(gen.engine)
        if isinstance(outcome, Done):
            return _collect(gen, state, outcome, route)
        state.queue_position = outcome.queue_position
        state.detail = outcome.detail[:200]
        return _wait(gen, state, outcome.progress, route.typical_s)
    except Transient as exc:
        return _transient(gen, state, route, exc, probe=probe)
    except EngineError as exc:
        breaker.succeeded(gen.engine, probe=probe)  # the provider answered: it is up
        if exc.code == pools.AUTH_ERROR:
            return _key_refused(gen, state, route, exc, probe=probe)
        return _fail(gen, state, exc)


def _transient(
    gen: Generation, state: HostedState, route: routes.Route, exc: Transient, *, probe: str
) -> str:
    """A call failed transiently: counted by the breaker; a job not running upstream may
    move to the next route (failover.should_leave), else it is retried with backoff."""
    state.last_error = str(exc)[:300]
    circuit_open = breaker.failed(gen.engine, state.last_error, probe=probe)
    if exc.resubmit:
        state.resubmits += 1
        state.job = None  # the provider failed the job: nothing runs upstream any more
    if not state.submitted:
        if exc.status == failover.RATE_LIMITED:
            state.rate_limited += 1
        else:
            state.route_failures += 1
        leave = failover.should_leave(
            failures=state.route_failures, rate_limited=state.rate_limited, status=exc.status,
            retry_after=exc.retry_after, circuit_open=circuit_open,
        )  # fmt: skip
        if leave:
            choice = failover.choose(gen, failover.job_routes(gen), leaving=gen.engine)
            if choice.route is not None:
                records = [
                    failover.attempt(gen.engine, failover.FAILED_OVER, state.last_error),
                    *(failover.attempt(p, failover.SKIPPED_OPEN, "circuit open")
                      for p in choice.skipped),
                ]  # fmt: skip
                if not _move(gen, state, choice.route, records, outcome=failover.FAILED_OVER):
                    return "skipped: no longer ours"
                return _call(gen, state, choice.route, probe=choice.probe)
    if exc.resubmit and state.resubmits > RESUBMITS:
        return _fail(gen, state, EngineError(
            "upstream_failed", f"The {gen.engine} provider failed the job "
            f"{state.resubmits} times: {exc}",
        ))  # fmt: skip
    log.info("generation %s: %s (will retry)", gen.generation_id, exc)
    return _wait(gen, state, None, route.typical_s, retry_after=exc.retry_after)


def _hold_slot(gen: Generation, state: HostedState, route: routes.Route) -> bool:
    """Before the submit: a key of the provider's pool and, under
    VIDEOGEN_PROVIDER_CONCURRENCY, a free slot (routing/pools.py). False: none is free.
    The route's deadline counts from the submit: time spent waiting for a slot is not
    taken from it."""
    lease = pools.acquire(provider=gen.engine, generation=gen)
    if lease is None:
        return False
    state.key = lease.fingerprint
    if state.slot_wait_since:
        now = time.time()
        state.slot_waited_s += now - state.slot_wait_since
        state.deadline, state.started = now + route.deadline_s, now
        state.slot_wait_since, state.detail = 0.0, ""
    return True


def _wait_for_slot(gen: Generation, state: HostedState, route: routes.Route) -> str:
    """Every slot of the provider is taken: not submitted; asks again shortly, its status
    saying what it waits for."""
    now = time.time()
    state.slot_wait_since = state.slot_wait_since or now
    state.deadline, state.started = now + route.deadline_s, now  # not running yet
    cap = pools.capacity(gen.engine)
    state.detail = f"waiting for a free {gen.engine} slot (all {cap} in use)"
    state.queue_position = None
    delay = float(settings.VIDEOGEN_POLL_FIRST_S) * random.uniform(*SLOT_RETRY_SPREAD)
    updated = Generation.objects.filter(
        pk=gen.pk, claim=gen.claim, status=Generation.Status.IN_PROGRESS
    ).update(
        engine_handle=state.dump(),
        next_poll_at=timezone.now() + timedelta(seconds=delay),
        heartbeat_at=timezone.now(),
        progress=0,
    )
    return f"waiting for a slot, {delay:.1f} s" if updated else "skipped: no longer ours"


def _key_refused(
    gen: Generation, state: HostedState, route: routes.Route, exc: EngineError, *, probe: str
) -> str:
    """The provider refused the key this job used (401/403): that key leaves the pool's
    rotation, and the job is submitted again on another key while one is left (then, like
    a provider that is down, on the model's next route)."""
    fingerprint = state.key or next(iter(pools.fingerprints(gen.engine)), "")
    if fingerprint:
        pools.retire_key(provider=gen.engine, fingerprint=fingerprint, reason=exc.message)
    pools.release(generation=gen)
    if state.key_retries >= len(pools.fingerprints(gen.engine)) or not pools.has_usable_key(
        gen.engine
    ):
        return _unusable(gen, state, route, exc, probe=probe)
    state.key_retries += 1
    state.job, state.key, state.last_error = None, "", exc.message[:300]
    log.info("generation %s: %s refused; trying another key", gen.generation_id,
             pools.label(gen.engine, fingerprint))  # fmt: skip
    return _wait(gen, state, None, route.typical_s, retry_after=0.0)


def _unusable(
    gen: Generation, state: HostedState, route: routes.Route, exc: EngineError, *, probe: str
) -> str:
    """No key of this provider's pool is usable: a job not running upstream moves to the
    model's next route, as from a provider that is down; failed when none is left."""
    if state.submitted:
        return _fail(gen, state, exc)
    choice = failover.choose(gen, failover.job_routes(gen), leaving=gen.engine)
    if choice.route is None:
        return _fail(gen, state, exc)
    records = [
        failover.attempt(gen.engine, failover.FAILED_OVER, exc.code),
        *(failover.attempt(p, failover.SKIPPED_OPEN, "circuit open") for p in choice.skipped),
    ]
    if not _move(gen, state, choice.route, records, outcome=failover.FAILED_OVER):
        return "skipped: no longer ours"
    return _call(gen, state, choice.route, probe=choice.probe)


def _input_image(gen: Generation) -> routes.ImageInput | None:
    return _stored_image(gen.input_image)


def _stored_image(field: FieldFile) -> routes.ImageInput | None:
    """A stored image (the input image, the end image) as the provider map sends it."""
    if not field:
        return None
    with field.open("rb") as fh:
        data = fh.read()
    return routes.ImageInput(data, image_mime_type(sniff_format(data) or "png"))


def _best_effort_cancel(engine: RemoteEngine, job: routes.Job, handle: dict[str, object]) -> None:
    try:
        engine.cancel(job, handle)
    except (Transient, EngineError) as exc:
        log.warning("could not cancel upstream job: %s", exc)


def _wait(
    gen: Generation,
    state: HostedState,
    progress: float | None,
    typical_s: float,
    *,
    retry_after: float | None = None,
    exact: float | None = None,
) -> str:
    """Schedule the next step (in `exact` seconds, else with backoff); progress is the
    provider's, or an estimate that approaches 95 % over the model's typical run time."""
    delay = backoff_delay(state.polls, retry_after) if exact is None else exact
    state.polls += 1
    delay = max(0.05, min(delay, state.deadline - time.time() + 0.05))
    if progress is None:
        elapsed = time.time() - state.started
        progress = 95 * (1 - math.exp(-elapsed / max(typical_s, 1.0)))
    updated = Generation.objects.filter(
        pk=gen.pk, claim=gen.claim, status=Generation.Status.IN_PROGRESS
    ).update(
        engine_handle=state.dump(),
        next_poll_at=timezone.now() + timedelta(seconds=delay),
        heartbeat_at=timezone.now(),
        progress=max(0, min(99, int(progress))),
    )
    return f"waiting {delay:.1f} s" if updated else "skipped: no longer ours"


def _fail(gen: Generation, state: HostedState, exc: EngineError) -> str:
    gen.route_attempts = [*gen.route_attempts, failover.attempt(gen.engine, failover.FAILED,
                                                                exc.code)]  # fmt: skip
    Generation.objects.filter(pk=gen.pk, claim=gen.claim).update(
        engine_handle=state.dump(), route_attempts=gen.route_attempts
    )
    lifecycle.fail(generation=gen, code=exc.code, message=exc.message, claim=gen.claim)
    left_provider(gen, gen.engine, failover.FAILED)
    return f"failed: {exc.code}"


def _stop(gen: Generation) -> str:
    """Canceled: the run saw the flag (after asking the provider to stop, if it ran there)."""
    gen.route_attempts = [*gen.route_attempts, failover.attempt(gen.engine, failover.CANCELED)]
    Generation.objects.filter(pk=gen.pk, claim=gen.claim).update(route_attempts=gen.route_attempts)
    lifecycle.stop(generation=gen, claim=gen.claim)
    left_provider(gen, gen.engine, failover.CANCELED)
    return "canceled"


def _collect(gen: Generation, state: HostedState, done: Done, route: routes.Route) -> str:
    """The provider finished: download, check and re-encode as needed, then store."""
    folder = work_dir(gen, gen.claim)
    reporter = Reporter(gen.pk, gen.claim)
    try:
        source = folder / "upstream.bin"
        ingest.download(done.video_url, done.headers, source, settings.VIDEOGEN_REMOTE_MAX_BYTES)
        # Downloaded: the job has left the provider (a re-download reads a finished result).
        _served(gen)
        # What the video cost, from the serving provider's route (billed units where
        # reported); settled against the estimate when the generation completes (an audio
        # step adds its own).
        cost = prices.hosted_cost(gen.spec(), gen.engine, done.billed_units)
        Generation.objects.filter(pk=gen.pk, claim=gen.claim).update(
            cost_usd=cost.usd, cost_source=cost.source
        )
        if (phase := audio.after_download(gen, source)) is not None:
            return phase  # no sound in it, and add_audio: the audio step (tasks/audio.py)
        skip_s = shots.native_skip_s(gen, route, folder)
        result = ingest.make_ours(
            source, gen.spec(), folder, progress=reporter.progress,
            should_stop=reporter.should_stop, skip_s=skip_s, mark=provenance.mark_for(gen),
            label=provenance.visible_label(),
        )  # fmt: skip
        if gen.extended_from_id is not None:
            result = shots.join_extension(gen, result, folder)
        return store_result(gen, gen.claim, result)
    except ResultGone as exc:
        state.result_gone += 1
        if state.result_gone > RESULT_GONE_RETRIES:
            return _fail(gen, state, EngineError(
                "upstream_result_expired",
                f"The {gen.engine} provider's result link no longer works ({exc}); the "
                "charge was refunded.",
            ))  # fmt: skip
        return _wait(gen, state, None, 1.0)
    except Transient as exc:
        state.last_error = str(exc)[:300]
        return _wait(gen, state, None, 1.0, retry_after=exc.retry_after)
    except Canceled:
        return _stop(gen)
    except EngineError as exc:
        if exc.code == "upstream_bad_output":
            # A download cut short or an error page served as the file: fetch it again
            # (a few times) before blaming the provider.
            state.bad_output += 1
            if state.bad_output <= BAD_OUTPUT_RETRIES:
                return _wait(gen, state, None, 1.0)
        return _fail(gen, state, exc)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _served(gen: Generation) -> None:
    """The provider delivered: recorded once (a re-download after a bad file is no second
    serving), and the job leaves it."""
    last = gen.route_attempts[-1] if gen.route_attempts else {}
    if (last.get("provider"), last.get("outcome")) != (gen.engine, failover.SERVED):
        gen.route_attempts = [*gen.route_attempts, failover.attempt(gen.engine, failover.SERVED)]
        Generation.objects.filter(pk=gen.pk, claim=gen.claim).update(
            route_attempts=gen.route_attempts
        )
    left_provider(gen, gen.engine, failover.SERVED)
