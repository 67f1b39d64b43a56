"""The audio step: a hosted video that came without sound, asked for with `add_audio`, gets
it from a video-to-audio model (Mirelo SFX v1.5 on fal, then MMAudio; audio_routes.toml)
before it is stored. The same generation runs throughout (its id, claim and charge).

When the provider's file is downloaded (hosted.py's collect), `after_download` decides:
  * the file has sound, or sound was not asked for: stored as today ("native" / "");
  * no audio route serves here (no FAL_KEY), or a test key: our procedural bed ("procedural");
  * else the audio phase: the silent download is kept in media storage (the next step may
    run on another worker, on another host), and the job polls the audio route in short
    steps scheduled on the row, like the video (progress 90-95, `phase: "audio"`).
When the route is done, its file's audio track is muxed into our video, made from the kept
download exactly as the store path makes it (our frames, watermark, label, C2PA signing,
stored once by results.store_result). A route that fails for good (after retries for
transient trouble) hands over to the next; when none is left the video is stored with the
procedural bed rather than failed, and `audio_source` says "procedural". The kept file is
deleted once stored (or canceled); the daily orphan sweep removes any a crash left behind.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import DecimalField, F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from generations.core import lifecycle, provenance
from generations.models import Generation
from generations.ops import storage
from generations.rendering.base import Canceled, EngineError
from generations.rendering.hosted import audio_routes, ingest, providers, routes
from generations.rendering.hosted.audio_routes import NATIVE, PROCEDURAL, AudioRoute, AudioState
from generations.rendering.hosted.base import Done, ResultGone, Transient
from generations.tasks import shots
from generations.tasks.dispatch import backoff_delay
from generations.tasks.results import Reporter, store_result, work_dir

log = logging.getLogger(__name__)

# Transient failures of one route (network, 5xx, an expired result link, a file that does
# not decode) before the next route is tried.
AUDIO_RETRIES = 3
# The audio phase's share of the progress bar (encoding the result then reports 96-99).
PROGRESS_START, PROGRESS_END = 90, 95
# The silent video travels to the provider inside the JSON body as a data: URL; past this
# size the procedural bed is used instead.
MAX_VIDEO_BYTES = 50 * 1024 * 1024


def in_phase(gen: Generation) -> bool:
    return audio_routes.in_audio_phase(gen.engine_handle)


def after_download(gen: Generation, source: Path) -> str | None:
    """Called with the provider's downloaded file: the audio phase's first answer when the
    generation enters it (the caller returns it), else None after recording which sound
    the stored video will have."""
    if not gen.add_audio:
        return None
    if ingest.has_audio_track(source):
        _record_source(gen, NATIVE)
        return None
    routes_here = audio_routes.configured()
    if gen.test_mode or not routes_here or source.stat().st_size > MAX_VIDEO_BYTES:
        _record_source(gen, PROCEDURAL)
        return None
    first = routes_here[0]
    with source.open("rb") as fh:
        work = default_storage.save(f"videos/{gen.generation_id}-silent.mp4", File(fh))
    now = time.time()
    state = AudioState(route=first.name, work=work, started=now, deadline=now + first.deadline_s)
    log.info("generation %s: audio step on %s", gen.generation_id, first.name)
    return _wait(gen, state, first, 0.0, delay=0.0)


def step(gen: Generation) -> str:
    """One step of the audio phase of `gen` (claimed by this run: gen.claim)."""
    state = AudioState.load(gen.engine_handle)
    assert state is not None and not state.finished
    route = audio_routes.by_name(state.route)
    if gen.cancel_requested:
        if route is not None and state.job is not None:
            _best_effort_cancel(gen, route, state)
        _discard(state)
        lifecycle.stop(generation=gen, claim=gen.claim)
        return "canceled"
    if route is None:
        return _next_route(gen, state, f"the route {state.route!r} no longer serves here")
    if time.time() >= state.deadline:
        if state.job is not None:
            _best_effort_cancel(gen, route, state)
        return _next_route(gen, state, f"not done within {route.deadline_s:.0f} s")
    engine = providers.engine(route.provider)
    try:
        if state.job is None:
            state.job = engine.submit(route.job(gen.spec(), _silent_video(state)))
            state.polls = 0
            return _wait(gen, state, route, None)
        outcome = engine.poll(route.job(gen.spec(), None), state.job)
        if isinstance(outcome, Done):
            return _finish(gen, state, route, outcome)
        return _wait(gen, state, route, outcome.progress)
    except Transient as exc:
        if exc.resubmit:
            state.job = None
        return _retry(gen, state, route, str(exc), exc.retry_after)
    except EngineError as exc:
        return _next_route(gen, state, exc.message)
    except storage.missing_file_errors():
        return _lost(gen, state)


def _retry(
    gen: Generation, state: AudioState, route: AudioRoute, why: str, retry_after: float | None
) -> str:
    state.retries += 1
    state.last_error = why[:300]
    if state.retries > AUDIO_RETRIES:
        return _next_route(gen, state, why)
    log.info("generation %s: audio step on %s: %s (will retry)", gen.generation_id, route.name,
             why)  # fmt: skip
    return _wait(gen, state, route, None, retry_after=retry_after)


def _next_route(gen: Generation, state: AudioState, why: str) -> str:
    """This route failed for good: the next one, or the procedural bed when none is left."""
    log.warning("generation %s: audio route %s failed: %s", gen.generation_id, state.route, why)
    state.tried.append(state.route)
    state.last_error = why[:300]
    following = next((r for r in audio_routes.configured() if r.name not in state.tried), None)
    if following is None:
        return _finish(gen, state, None, None)
    now = time.time()
    state.route, state.job, state.retries, state.polls = following.name, None, 0, 0
    state.deadline = now + following.deadline_s
    return _wait(gen, state, following, None, delay=0.0)


def _wait(
    gen: Generation,
    state: AudioState,
    route: AudioRoute,
    progress: float | None,
    *,
    retry_after: float | None = None,
    delay: float | None = None,
) -> str:
    """Schedule the next step, the state kept on the row beside the video job's."""
    if delay is None:
        delay = backoff_delay(state.polls, retry_after)
        delay = max(0.05, min(delay, state.deadline - time.time() + 0.05))
    state.polls += 1
    if progress is None:
        elapsed = time.time() - state.started
        progress = 100 * (1 - math.exp(-elapsed / max(route.typical_s, 1.0)))
    pct = PROGRESS_START + (PROGRESS_END - PROGRESS_START) * max(0.0, min(progress, 100)) / 100
    gen.engine_handle = {**gen.engine_handle, audio_routes.HANDLE_KEY: state.dump()}
    updated = Generation.objects.filter(
        pk=gen.pk, claim=gen.claim, status=Generation.Status.IN_PROGRESS
    ).update(
        engine_handle=gen.engine_handle,
        next_poll_at=timezone.now() + timedelta(seconds=delay),
        heartbeat_at=timezone.now(),
        progress=max(gen.progress, int(pct)),
    )
    return f"audio: waiting {delay:.1f} s" if updated else "skipped: no longer ours"


def _finish(gen: Generation, state: AudioState, route: AudioRoute | None, done: Done | None) -> str:
    """Our video from the kept download, with the route's sound (or, without a route, the
    procedural bed), stored once."""
    claim = gen.claim
    folder = work_dir(gen, claim)
    reporter = Reporter(gen.pk, claim)
    try:
        source = folder / "upstream.bin"  # results._sign reads the provider's manifest here
        with default_storage.open(state.work, "rb") as src, source.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        sound: Path | None = None
        if route is not None and done is not None:
            sound = folder / "sound.bin"
            try:
                ingest.download(
                    done.video_url, done.headers, sound, settings.VIDEOGEN_REMOTE_MAX_BYTES
                )
            except (ResultGone, Transient) as exc:
                return _retry(gen, state, route, f"result download: {exc}", None)
            if not ingest.has_audio_track(sound):
                return _retry(gen, state, route, "its file has no audio track", None)
        video_route = providers.route_for(gen.model, gen.mode)
        skip_s = shots.native_skip_s(gen, video_route, folder) if video_route else 0.0
        result = ingest.make_ours(
            source, gen.spec(), folder, progress=reporter.progress,
            should_stop=reporter.should_stop, skip_s=skip_s, mark=provenance.mark_for(gen),
            label=provenance.visible_label(), audio_from=sound,
        )  # fmt: skip
        if gen.extended_from_id is not None:
            result = shots.join_extension(gen, result, folder)
        used = route.name if sound is not None and route is not None else PROCEDURAL
        state.finished = True
        state.usd = str(route.price_usd(gen.duration)) if used != PROCEDURAL and route else ""
        gen.engine_handle = {**gen.engine_handle, audio_routes.HANDLE_KEY: state.dump()}
        Generation.objects.filter(pk=gen.pk, claim=claim).update(engine_handle=gen.engine_handle)
        if state.usd:  # the sound's price on top of the video's (settled with it)
            Generation.objects.filter(pk=gen.pk, claim=claim).update(
                cost_usd=Coalesce(F("cost_usd"), Value(Decimal(0)), output_field=DecimalField())
                + Decimal(state.usd)
            )
        _record_source(gen, used)
        outcome = store_result(gen, claim, result)
        if used == PROCEDURAL:
            log.warning("generation %s: no audio route succeeded (%s); stored with the "
                        "procedural sound bed", gen.generation_id, state.last_error)  # fmt: skip
        _discard(state)
        return f"{outcome} (sound: {used})"
    except Canceled:
        _discard(state)
        lifecycle.stop(generation=gen, claim=claim)
        return "canceled"
    except EngineError as exc:  # the kept video itself would not make ours
        _discard(state)
        lifecycle.fail(generation=gen, code=exc.code, message=exc.message, claim=claim)
        return f"failed: {exc.code}"
    except storage.missing_file_errors():
        return _lost(gen, state)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _silent_video(state: AudioState) -> routes.VideoInput:
    with default_storage.open(state.work, "rb") as fh:
        return routes.VideoInput(fh.read(), "video/mp4")


def _record_source(gen: Generation, source: str) -> None:
    gen.audio_source = source
    Generation.objects.filter(pk=gen.pk, claim=gen.claim).update(audio_source=source)


def _best_effort_cancel(gen: Generation, route: AudioRoute, state: AudioState) -> None:
    assert state.job is not None
    try:
        providers.engine(route.provider).cancel(route.job(gen.spec(), None), state.job)
    except (Transient, EngineError) as exc:
        log.warning("could not cancel the audio job of %s: %s", gen.generation_id, exc)


def _discard(state: AudioState) -> None:
    if state.work:
        default_storage.delete(state.work)


def _lost(gen: Generation, state: AudioState) -> str:
    """The kept video is gone from media storage (deleted by hand, a bucket lost it)."""
    lifecycle.fail(
        generation=gen, code="internal_error", claim=gen.claim,
        message="The finished video was lost from storage during its audio step; the "
        "charge was refunded.",
    )  # fmt: skip
    return "failed: work file lost"
