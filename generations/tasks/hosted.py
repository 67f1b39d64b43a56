"""The hosted-provider step: one short call to the provider per task, the next one scheduled
on the row (`next_poll_at`, picked up by tasks/dispatch.py), so no worker waits on a provider.

A step submits the job if it is not yet submitted, else polls it, and, once the provider is
done, downloads the result and stores it as ours. What it must remember between steps is a
HostedState on the row. Transient trouble (network, 5xx, 429, a malformed answer, an expired
result link) is retried with backoff until the route's deadline; the provider's own refusals
fail the generation at once, refunded."""

from __future__ import annotations

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
from generations.rendering.hosted import ingest, providers, routes
from generations.rendering.hosted.base import Done, RemoteEngine, ResultGone, Transient
from generations.rendering.hosted.state import HostedState
from generations.routing import pools, prices
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


def step(gen: Generation) -> str:
    """One step of the hosted job of `gen` (claimed by this run: gen.claim)."""
    claim = gen.claim
    state = HostedState.load(gen.engine_handle)
    route = providers.route_for(gen.model, gen.mode)
    if route is None or route.provider != gen.engine:
        return _fail(
            gen, state, EngineError(
                "model_unavailable",
                f"Model {gen.model!r} is no longer served by {gen.engine} on this server.",
            ),
        )  # fmt: skip
    now = time.time()
    if not state.deadline:
        state.deadline, state.started = now + route.deadline_s, now
    if not state.submitted and not gen.cancel_requested:
        try:
            if not _hold_slot(gen, state, route):
                return _wait_for_slot(gen, state, route)
        except EngineError as exc:
            return _fail(gen, state, exc)
    try:
        engine = pools.client(gen.engine, state.key)
    except EngineError as exc:
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
        lifecycle.stop(generation=gen, claim=claim)
        pools.release(generation=gen)
        return "canceled"
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
            state.upstream_model = job.upstream_model
            state.polls = 0
            return _wait(gen, state, None, route.typical_s)
        outcome = engine.poll(job, state.job)
        if isinstance(outcome, Done):
            return _collect(gen, state, outcome)
        state.queue_position = outcome.queue_position
        state.detail = outcome.detail[:200]
        return _wait(gen, state, outcome.progress, route.typical_s)
    except Transient as exc:
        state.last_error = str(exc)[:300]
        if exc.resubmit:
            state.resubmits += 1
            if state.resubmits > RESUBMITS:
                return _fail(gen, state, EngineError(
                    "upstream_failed", f"The {gen.engine} provider failed the job "
                    f"{state.resubmits} times: {exc}",
                ))  # fmt: skip
            state.job = None
        log.info("generation %s: %s (will retry)", gen.generation_id, exc)
        return _wait(gen, state, None, route.typical_s, retry_after=exc.retry_after)
    except EngineError as exc:
        if exc.code == pools.AUTH_ERROR:
            return _key_refused(gen, state, route, exc)
        return _fail(gen, state, exc)


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


def _key_refused(gen: Generation, state: HostedState, route: routes.Route, exc: EngineError) -> str:
    """The provider refused the key this job used (401/403): that key leaves the pool's
    rotation, and the job is submitted again on another key while one is left."""
    fingerprint = state.key or next(iter(pools.fingerprints(gen.engine)), "")
    if fingerprint:
        pools.retire_key(provider=gen.engine, fingerprint=fingerprint, reason=exc.message)
    pools.release(generation=gen)
    if state.key_retries >= len(pools.fingerprints(gen.engine)) or not pools.has_usable_key(
        gen.engine
    ):
        return _fail(gen, state, exc)
    state.key_retries += 1
    state.job, state.key, state.last_error = None, "", exc.message[:300]
    log.info("generation %s: %s refused; trying another key", gen.generation_id,
             pools.label(gen.engine, fingerprint))  # fmt: skip
    return _wait(gen, state, None, route.typical_s, retry_after=0.0)


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
) -> str:
    """Schedule the next step; progress is the provider's, or an estimate that approaches
    95 % over the model's typical run time."""
    delay = backoff_delay(state.polls, retry_after)
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
    Generation.objects.filter(pk=gen.pk, claim=gen.claim).update(engine_handle=state.dump())
    lifecycle.fail(generation=gen, code=exc.code, message=exc.message, claim=gen.claim)
    pools.release(generation=gen)
    return f"failed: {exc.code}"


def _collect(gen: Generation, state: HostedState, done: Done) -> str:
    """The provider finished: download, check and re-encode as needed, then store."""
    folder = work_dir(gen, gen.claim)
    reporter = Reporter(gen.pk, gen.claim)
    try:
        source = folder / "upstream.bin"
        ingest.download(done.video_url, done.headers, source, settings.VIDEOGEN_REMOTE_MAX_BYTES)
        # Downloaded: the job has left the provider (a re-download reads a finished result).
        pools.release(generation=gen)
        # What the video cost, from the serving provider's route (billed units where reported);
        # settled against the estimate when the generation completes
        # (an audio step adds its own).
        cost = prices.hosted_cost(gen.spec(), gen.engine, done.billed_units)
        Generation.objects.filter(pk=gen.pk, claim=gen.claim).update(
            cost_usd=cost.usd, cost_source=cost.source
        )
        if (phase := audio.after_download(gen, source)) is not None:
            return phase  # no sound in it, and add_audio: the audio step (tasks/audio.py)
        route = providers.route_for(gen.model, gen.mode)
        skip_s = shots.native_skip_s(gen, route, folder) if route is not None else 0.0
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
        lifecycle.stop(generation=gen, claim=gen.claim)
        pools.release(generation=gen)
        return "canceled"
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
