"""django-q2 entry points. They reload the row and check its state before acting."""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from generations import brokerscan, catalog, health, polling, retention, safety, services, webhooks
from generations.api.idempotency import forget_expired
from generations.engines import routes
from generations.engines.base import Canceled, EngineError, RenderContext, RenderResult
from generations.engines.remote import Done, ResultGone, Transient
from generations.errors import DATABASE_DOWN
from generations.media import ingest
from generations.models import Generation
from generations.specs import GenerationSpec

log = logging.getLogger(__name__)

# Progress is written at most this often: each write is also the run's heartbeat.
PROGRESS_INTERVAL_S = 0.5


def _claim(pk: int) -> str | None:
    """Take the row for this run with a conditional UPDATE; None if another run owns it."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.VIDEOGEN_STALE_AFTER)
    token = uuid.uuid4().hex
    claimable = Q(status__in=[Generation.Status.PENDING, Generation.Status.IN_QUEUE]) | Q(
        status=Generation.Status.IN_PROGRESS, heartbeat_at__lt=stale
    )
    taken = (
        Generation.objects.filter(claimable, pk=pk, cancel_requested=False)
        .filter(attempts__lt=settings.VIDEOGEN_MAX_ATTEMPTS)
        .update(
            status=Generation.Status.IN_PROGRESS,
            claim=token,
            started_at=now,
            heartbeat_at=now,
            progress=0,
            attempts=F("attempts") + 1,
        )
    )
    return token if taken else None


def spec_for(gen: Generation) -> GenerationSpec:
    return GenerationSpec(
        **{f.name: getattr(gen, f.name) for f in dataclasses.fields(GenerationSpec)}
    )


class _Reporter:
    """Progress and heartbeat for one run; notices cancel requests and a lost claim."""

    def __init__(self, pk: int, claim: str) -> None:
        self.pk = pk
        self.claim = claim
        self.last_write = 0.0
        self.last_pct = -1
        self.stop = False
        self.database_down = False

    def progress(self, pct: float) -> None:
        value = max(0, min(99, int(pct)))  # 100 is written only with the finished video
        now = time.monotonic()
        if now - self.last_write < PROGRESS_INTERVAL_S or self.stop:
            return
        self.last_write = now
        rows = Generation.objects.filter(
            pk=self.pk, claim=self.claim, status=Generation.Status.IN_PROGRESS
        )
        try:
            if value != self.last_pct:
                updated = rows.update(progress=value, heartbeat_at=timezone.now())
            else:
                updated = rows.update(heartbeat_at=timezone.now())
            cancel = bool(updated) and rows.filter(cancel_requested=True).exists()
        except DATABASE_DOWN:
            # A database blip must not cost the render: keep going, write again later. (If
            # it lasts past VIDEOGEN_STALE_AFTER the reaper re-queues the row, and the next
            # write here finds the claim gone and stops the render.)
            if not self.database_down:
                log.warning("database unreachable: progress not recorded, rendering on")
            self.database_down = True
            connection.close()  # reconnect on the next write
            return
        self.database_down = False
        self.last_pct = value
        if not updated or cancel:
            self.stop = True

    def should_stop(self) -> bool:
        return self.stop


def generation_run(pk: int) -> str:
    claim = _claim(pk)
    if claim is None:
        return "skipped: not claimable"
    gen = Generation.objects.select_related("team").get(pk=pk)
    model = catalog.get_model(gen.model)
    engine_name = catalog.engine_name_for(model, test_mode=gen.test_mode) if model else None
    if engine_name is None:
        services.generation_fail(
            generation=gen,
            code="model_unavailable",
            message=f"Model {gen.model!r} is no longer served by this server.",
            claim=claim,
        )
        return "failed: model unavailable"
    Generation.objects.filter(pk=pk, claim=claim).update(engine=engine_name)
    if engine_name in catalog.REMOTE_ENGINES:
        gen.engine, gen.claim = engine_name, claim
        return _remote_step(gen)

    work_dir = Path(settings.DATA_DIR) / "work" / f"{gen.generation_id}-{claim[:8]}"
    work_dir.mkdir(parents=True, exist_ok=True)
    reporter = _Reporter(pk, claim)
    try:
        input_path: Path | None = None
        if gen.input_image:
            input_path = work_dir / Path(gen.input_image.name).name
            with gen.input_image.open("rb") as src, input_path.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        ctx = RenderContext(
            output_dir=work_dir,
            progress=reporter.progress,
            should_stop=reporter.should_stop,
            input_image=input_path,
        )
        result = catalog.get_engine(engine_name).render(spec_for(gen), ctx)
        return _store_result(gen, claim, result)
    except Canceled:
        _finish_canceled(gen, claim)
        return "canceled"
    except EngineError as exc:
        services.generation_fail(generation=gen, code=exc.code, message=exc.message, claim=claim)
        return f"failed: {exc.code}"
    except DATABASE_DOWN:
        # Not the generation's fault: nothing is failed or refunded. The row stays claimed
        # and in progress; once its heartbeat is stale the reaper runs it again.
        log.warning("database unreachable while storing %s: left to the reaper", gen.generation_id)
        connection.close()
        raise
    except Exception:
        log.exception("generation %s crashed", gen.generation_id)
        services.generation_fail(
            generation=gen,
            code="internal_error",
            message="The engine stopped with an internal error; the charge was refunded.",
            claim=claim,
        )
        return "failed: internal error"
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


# Extra files an engine may return, and the Generation field each is stored in.
EXTRA_FIELDS = ("preview", "spritesheet")


def _store_result(gen: Generation, claim: str, result: RenderResult) -> str:
    if gen.enable_safety_checker:
        verdict = safety.screen_video(result.video_path)
        if verdict.blocked:
            services.generation_fail(
                generation=gen,
                code="content_policy",
                message=f"The video was withheld by the safety checker ({verdict.category}).",
                claim=claim,
            )
            return "failed: content_policy"
    stem = gen.generation_id
    outputs = {"video": result.video_path, "poster": result.poster_path}
    outputs |= {name: result.extras[name] for name in EXTRA_FIELDS if name in result.extras}
    for name, path in outputs.items():
        with path.open("rb") as fh:
            getattr(gen, name).save(f"{stem}{path.suffix}", File(fh), save=False)
    # Completed and settled in one transaction: a worker killed in between must not leave a
    # delivered video whose charge the ledger never settles (or a webhook never queued).
    with transaction.atomic():
        done = Generation.objects.filter(
            pk=gen.pk, claim=claim, status=Generation.Status.IN_PROGRESS
        ).update(
            status=Generation.Status.COMPLETED,
            next_poll_at=None,
            progress=100,
            finished_at=timezone.now(),
            video_size=result.video_path.stat().st_size,
            has_audio=result.has_audio,
            **{name: getattr(gen, name).name for name in outputs},
        )
        if done:
            services.generation_settle(generation=gen)
            webhooks.notify(gen)
    if not done:
        # Canceled or taken over while we rendered: our copies must not linger.
        for name in outputs:
            field = getattr(gen, name)
            field.storage.delete(field.name)
        _finish_canceled(gen, claim)
        return "discarded: lost the claim"
    return "completed"


def _finish_canceled(gen: Generation, claim: str) -> None:
    with transaction.atomic():  # the status and its refund: both or neither
        updated = (
            Generation.objects.filter(pk=gen.pk, claim=claim, cancel_requested=True)
            .exclude(status__in=Generation.FINAL_STATUSES)
            .update(
                status=Generation.Status.CANCELED, finished_at=timezone.now(), next_poll_at=None
            )
        )
        if updated:
            services.generation_refund(generation=gen, note="canceled")
            webhooks.notify(gen)


# --- remote engines: one short step per task, the next one scheduled on the row -----------

# A result URL that answers 403/404 is fetched again this often (providers re-sign URLs),
# and a file that does not decode (a download cut short, an error page served with 200)
# this often, before the generation fails.
RESULT_GONE_RETRIES = 2
BAD_OUTPUT_RETRIES = 4
# A job the provider failed but calls retryable is submitted again at most this often.
RESUBMITS = 2
# Asking the provider to cancel is tried this often when the call fails transiently.
CANCEL_TRIES = 4


def generation_poll(pk: int, claim: str) -> str:
    """One step of a remote job: submit if not yet submitted, else poll (and, when done,
    download and store). Enqueued by polling.dispatch_due when the row's poll is due."""
    gen = Generation.objects.select_related("team").filter(pk=pk).first()
    if gen is None or gen.status != Generation.Status.IN_PROGRESS or gen.claim != claim:
        return "skipped: no longer ours"
    return _remote_step(gen)


def _remote_step(gen: Generation) -> str:
    claim = gen.claim
    state = dict(gen.engine_handle or {})
    route = routes.route_for(gen.model, gen.mode)
    if route is None or route.provider != gen.engine:
        return _remote_fail(
            gen, state, EngineError(
                "model_unavailable",
                f"Model {gen.model!r} is no longer served by {gen.engine} on this server.",
            ),
        )  # fmt: skip
    now = time.time()
    state.setdefault("deadline", now + route.deadline_s)
    state.setdefault("started", now)
    engine = catalog.get_remote_engine(gen.engine)
    submitted = "job" in state
    job = routes.job_for(route, spec_for(gen), _input_image(gen) if not submitted else None)

    if gen.cancel_requested:
        if submitted:
            try:
                engine.cancel(job, state["job"])
            except Transient as exc:
                # Stop paying for it upstream: ask again shortly, a few times.
                tries = int(state.get("cancel_tries", 0)) + 1
                state["cancel_tries"] = tries
                if tries < CANCEL_TRIES:
                    return _remote_wait(gen, state, None, 1.0, retry_after=exc.retry_after)
                log.warning("could not cancel upstream job of %s: %s", gen.generation_id, exc)
            except EngineError as exc:
                log.warning("could not cancel upstream job of %s: %s", gen.generation_id, exc)
        _finish_canceled(gen, claim)
        return "canceled"
    if now >= state["deadline"]:
        if submitted:
            _best_effort_cancel(engine, job, state)
        return _remote_fail(gen, state, EngineError(
            "timeout",
            f"The {gen.engine} provider did not finish within {route.deadline_s:.0f} s; "
            "the job was abandoned and the charge refunded.",
        ))  # fmt: skip
    try:
        if not submitted:
            state["job"] = engine.submit(job)
            state["upstream_model"] = job.upstream_model
            state["polls"] = 0
            return _remote_wait(gen, state, None, route.typical_s)
        outcome = engine.poll(job, state["job"])
        if isinstance(outcome, Done):
            return _remote_collect(gen, state, outcome)
        state["queue_position"] = outcome.queue_position
        state["detail"] = outcome.detail[:200]
        return _remote_wait(gen, state, outcome.progress, route.typical_s)
    except Transient as exc:
        state["last_error"] = str(exc)[:300]
        if exc.resubmit:
            resubmits = int(state.get("resubmits", 0)) + 1
            if resubmits > RESUBMITS:
                return _remote_fail(gen, state, EngineError(
                    "upstream_failed", f"The {gen.engine} provider failed the job "
                    f"{resubmits} times: {exc}",
                ))  # fmt: skip
            state["resubmits"] = resubmits
            state.pop("job", None)
        log.info("generation %s: %s (will retry)", gen.generation_id, exc)
        return _remote_wait(gen, state, None, route.typical_s, retry_after=exc.retry_after)
    except EngineError as exc:
        return _remote_fail(gen, state, exc)


def _input_image(gen: Generation) -> routes.ImageInput | None:
    if not gen.input_image:
        return None
    from generations.media.images import image_mime_type, sniff_format

    with gen.input_image.open("rb") as fh:
        data = fh.read()
    return routes.ImageInput(data, image_mime_type(sniff_format(data) or "png"))


def _best_effort_cancel(engine: object, job: routes.Job, state: dict[str, object]) -> None:
    try:
        engine.cancel(job, state["job"])  # type: ignore[attr-defined]
    except (Transient, EngineError) as exc:
        log.warning("could not cancel upstream job: %s", exc)


def _remote_wait(
    gen: Generation,
    state: dict[str, object],
    progress: float | None,
    typical_s: float,
    *,
    retry_after: float | None = None,
) -> str:
    """Schedule the next step; progress is the provider's, or an estimate that approaches
    95 % over the model's typical run time."""
    polls = int(state.get("polls", 0))  # type: ignore[call-overload]
    state["polls"] = polls + 1
    delay = polling.backoff_delay(polls, retry_after)
    deadline = float(state["deadline"])  # type: ignore[arg-type]
    delay = max(0.05, min(delay, deadline - time.time() + 0.05))
    if progress is None:
        elapsed = time.time() - float(state["started"])  # type: ignore[arg-type]
        progress = 95 * (1 - math.exp(-elapsed / max(typical_s, 1.0)))
    updated = Generation.objects.filter(
        pk=gen.pk, claim=gen.claim, status=Generation.Status.IN_PROGRESS
    ).update(
        engine_handle=state,
        next_poll_at=timezone.now() + timedelta(seconds=delay),
        heartbeat_at=timezone.now(),
        progress=max(0, min(99, int(progress))),
    )
    return f"waiting {delay:.1f} s" if updated else "skipped: no longer ours"


def _remote_fail(gen: Generation, state: dict[str, object], exc: EngineError) -> str:
    Generation.objects.filter(pk=gen.pk, claim=gen.claim).update(engine_handle=state)
    services.generation_fail(generation=gen, code=exc.code, message=exc.message, claim=gen.claim)
    return f"failed: {exc.code}"


def _remote_collect(gen: Generation, state: dict[str, object], done: Done) -> str:
    """The provider finished: download, check and re-encode as needed, then store."""
    work_dir = Path(settings.DATA_DIR) / "work" / f"{gen.generation_id}-{gen.claim[:8]}"
    work_dir.mkdir(parents=True, exist_ok=True)
    reporter = _Reporter(gen.pk, gen.claim)
    try:
        source = work_dir / "upstream.bin"
        ingest.download(done.video_url, done.headers, source, settings.VIDEOGEN_REMOTE_MAX_BYTES)
        result = ingest.make_ours(
            source, spec_for(gen), work_dir, progress=reporter.progress,
            should_stop=reporter.should_stop,
        )  # fmt: skip
        return _store_result(gen, gen.claim, result)
    except ResultGone as exc:
        gone = int(state.get("result_gone", 0)) + 1  # type: ignore[call-overload]
        state["result_gone"] = gone
        if gone > RESULT_GONE_RETRIES:
            return _remote_fail(gen, state, EngineError(
                "upstream_result_expired",
                f"The {gen.engine} provider's result link no longer works ({exc}); the "
                "charge was refunded.",
            ))  # fmt: skip
        return _remote_wait(gen, state, None, 1.0)
    except Transient as exc:
        state["last_error"] = str(exc)[:300]
        return _remote_wait(gen, state, None, 1.0, retry_after=exc.retry_after)
    except Canceled:
        _finish_canceled(gen, gen.claim)
        return "canceled"
    except EngineError as exc:
        if exc.code == "upstream_bad_output":
            # A download cut short or an error page served as the file: fetch it again
            # (a few times) before blaming the provider.
            bad = int(state.get("bad_output", 0)) + 1  # type: ignore[call-overload]
            state["bad_output"] = bad
            if bad <= BAD_OUTPUT_RETRIES:
                return _remote_wait(gen, state, None, 1.0)
        return _remote_fail(gen, state, exc)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def reap_stale() -> str:
    """Runs every minute: no generation stays in_progress (or lost in a queue) forever."""
    health.record_heartbeat()  # the worker heartbeat that /healthz reports
    now = timezone.now()
    stale = now - timedelta(seconds=settings.VIDEOGEN_STALE_AFTER)
    requeued = failed = rearmed = 0
    for gen in Generation.objects.filter(
        status=Generation.Status.IN_PROGRESS, heartbeat_at__lt=stale, next_poll_at__isnull=True
    ):
        if gen.engine in catalog.REMOTE_ENGINES:
            # A remote job whose poll was lost (worker killed, broker restarted): poll again
            # rather than run it again, which would submit it to the provider twice.
            rearmed += _rearm_poll(gen, now)
            continue
        if gen.attempts >= settings.VIDEOGEN_MAX_ATTEMPTS:
            if services.generation_fail(
                generation=gen,
                code="worker_lost",
                message=f"The worker running this generation stopped responding "
                f"{gen.attempts} times; giving up. The charge was refunded.",
            ):
                failed += 1
            continue
        # Back to the queue, conditional on nobody having touched it since we looked.
        if Generation.objects.filter(
            pk=gen.pk, status=Generation.Status.IN_PROGRESS, heartbeat_at=gen.heartbeat_at
        ).update(status=Generation.Status.IN_QUEUE, queued_at=now, claim=""):
            services.generation_enqueue(generation=gen)
            requeued += 1
    requeued += _requeue_lost(now)
    forget_expired()
    webhooks.deliver_due()
    return f"requeued {requeued}, re-armed {rearmed} polls, failed {failed}"


def _requeue_lost(now: datetime) -> int:
    """Rows saved but never enqueued (the web process died between commit and enqueue, or the
    broker was down), and queued rows whose task is no longer in the broker (Redis restarted,
    a cluster SIGKILLed with tasks prefetched): enqueued again, once per grace period."""
    pending = settings.VIDEOGEN_PENDING_GRACE_S
    queued = settings.VIDEOGEN_QUEUED_GRACE_S
    candidates = list(
        Generation.objects.filter(
            Q(status=Generation.Status.PENDING, created_at__lt=now - timedelta(seconds=pending))
            | Q(status=Generation.Status.IN_QUEUE, queued_at__lt=now - timedelta(seconds=queued))
        ).values_list("pk", "status")
    )
    if not candidates:
        return 0
    from django_q.conf import Conf

    waiting = brokerscan.waiting_generation_pks({Conf.PREFIX, settings.VIDEOGEN_GPU_CLUSTER})
    requeued = 0
    for pk, status in candidates:
        if status == Generation.Status.IN_QUEUE and waiting is not None and pk in waiting:
            continue  # still in line: a long backlog, not a lost task
        gen = Generation.objects.get(pk=pk)
        Generation.objects.filter(pk=pk).update(queued_at=now)
        services.generation_enqueue(generation=gen)
        requeued += 1
    if requeued:
        log.warning("re-enqueued %d generations whose task was lost", requeued)
    return requeued


def _rearm_poll(gen: Generation, now: datetime) -> int:
    state = dict(gen.engine_handle or {})
    rearmed = int(state.get("rearmed", 0)) + 1
    if rearmed > settings.VIDEOGEN_MAX_ATTEMPTS:
        services.generation_fail(
            generation=gen,
            code="worker_lost",
            message=f"The worker polling this generation stopped responding {rearmed - 1} "
            "times; giving up. The charge was refunded.",
        )
        return 0
    state["rearmed"] = rearmed
    return Generation.objects.filter(
        pk=gen.pk, status=Generation.Status.IN_PROGRESS, heartbeat_at=gen.heartbeat_at
    ).update(engine_handle=state, next_poll_at=now, heartbeat_at=now)


def webhook_deliver(pk: int) -> str:
    return webhooks.deliver(pk)


def purge_expired_media() -> str:
    """Runs daily (migration 0012): the retention policy, when VIDEOGEN_RETENTION_DAYS is set;
    and, always, the sweep of media files no generation names."""
    orphans = retention.sweep_orphans()
    swept = f"; {orphans.files} orphaned files deleted"
    days = settings.VIDEOGEN_RETENTION_DAYS
    if not days:
        return "retention off: files are kept forever" + swept
    report = retention.purge_media(older_than_days=days)
    return f"purged {report.files} files of {report.generations} generations" + swept
