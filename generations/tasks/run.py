"""A generation's run: claimed, then rendered here by a local engine (procedural, diffusers),
or handed to the hosted step when a provider serves it."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.db import connection
from django.db.models.fields.files import FieldFile

from generations import catalog
from generations.core import fairshare, lifecycle, provenance
from generations.errors import DATABASE_DOWN
from generations.models import Generation
from generations.rendering import registry
from generations.rendering.base import Canceled, EngineError, RenderContext
from generations.rendering.hosted.audio_routes import PROCEDURAL
from generations.tasks import hosted, shots
from generations.tasks.results import Reporter, store_result, work_dir

log = logging.getLogger(__name__)


def generation_run(pk: int) -> str:
    claim = lifecycle.claim(pk)
    if claim is None:
        return "skipped: not claimable"
    fairshare.release_quietly()  # its place in the queue is free: let the next one in
    gen = Generation.objects.select_related("team").get(pk=pk)
    model = catalog.get_model(gen.model)
    engine_name = registry.engine_name_for(model, test_mode=gen.test_mode) if model else None
    if engine_name is None:
        lifecycle.fail(
            generation=gen,
            code="model_unavailable",
            message=f"Model {gen.model!r} is no longer served by this server.",
            claim=claim,
        )
        return "failed: model unavailable"
    if registry.is_hosted(engine_name) and registry.is_hosted(gen.engine):
        # Run again (its task delivered twice): it stays on the provider it failed over
        # to, which may hold its job; the hosted step decides where it goes from there.
        engine_name = gen.engine
    Generation.objects.filter(pk=pk, claim=claim).update(engine=engine_name)
    gen.engine, gen.claim = engine_name, claim
    try:
        shots.ensure_start_frame(gen)  # an extension, a `continue` shot: the frame before
    except EngineError as exc:
        lifecycle.fail(generation=gen, code=exc.code, message=exc.message, claim=claim)
        return f"failed: {exc.code}"
    if registry.is_hosted(engine_name):
        return hosted.step(gen)
    return _render(gen, claim, engine_name)


def _local_copy(stored: FieldFile, folder: Path) -> Path | None:
    """A stored input (the first or the last frame) copied into the run's folder."""
    if not stored or not stored.name:
        return None
    path = folder / Path(stored.name).name
    with stored.open("rb") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def _render(gen: Generation, claim: str, engine_name: str) -> str:
    folder = work_dir(gen, claim)
    reporter = Reporter(gen.pk, claim)
    try:
        ctx = RenderContext(
            output_dir=folder,
            progress=reporter.progress,
            should_stop=reporter.should_stop,
            input_image=_local_copy(gen.input_image, folder),
            end_image=_local_copy(gen.end_image, folder),
            mark=provenance.mark_for(gen),
            label=provenance.visible_label(),
        )
        result = registry.get_engine(engine_name).render(gen.spec(), ctx)
        if gen.extended_from_id is not None:
            result = shots.join_extension(gen, result, folder)
        if gen.add_audio and result.has_audio:
            # Our engines' sound is the procedural bed (media/audio.py), and says so.
            gen.audio_source = PROCEDURAL
            Generation.objects.filter(pk=gen.pk, claim=claim).update(audio_source=PROCEDURAL)
        return store_result(gen, claim, result)
    except Canceled:
        lifecycle.stop(generation=gen, claim=claim)
        return "canceled"
    except EngineError as exc:
        lifecycle.fail(generation=gen, code=exc.code, message=exc.message, claim=claim)
        return f"failed: {exc.code}"
    except DATABASE_DOWN:
        # Not the generation's fault: nothing is failed or refunded. The row stays claimed
        # and in progress; once its heartbeat is stale the reaper runs it again.
        log.warning("database unreachable while storing %s: left to the reaper", gen.generation_id)
        connection.close()
        raise
    except Exception:
        log.exception("generation %s crashed", gen.generation_id)
        lifecycle.fail(
            generation=gen,
            code="internal_error",
            message="The engine stopped with an internal error; the charge was refunded.",
            claim=claim,
        )
        return "failed: internal error"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
