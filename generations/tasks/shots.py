"""The worker's part of shots (CONTRACT 6): the first frame of a generation that continues
another (an extension, a `continue` shot), the join of an extension with its source, a
sequence's next step and its stitch, and exports.

The first frame is taken when the generation starts, not when it is submitted: a `continue`
shot's predecessor has no video yet at submit, and a web process never decodes video. It is
stored as the generation's input image, so a rerun (the reaper's) starts from the same."""

from __future__ import annotations

import functools
import io
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from django.core.files import File
from django.core.files.base import ContentFile
from django.db.models.fields.files import FieldFile
from PIL import Image

from generations.core import exports, provenance, sequences
from generations.media import exports as media_exports
from generations.media.audio import synthesize
from generations.media.encode import probe
from generations.media.stitch import StitchCanceled, StitchResult, last_frame, stitch
from generations.models import Export, Generation, Sequence
from generations.ops import storage
from generations.rendering import registry
from generations.rendering.base import Canceled, EngineError, RenderResult
from generations.rendering.hosted import routes
from generations.vocabulary import Status

log = logging.getLogger(__name__)

# Heartbeat of a stitch (its claim goes stale after VIDEOGEN_STALE_AFTER without one).
STITCH_BEAT_S = 5.0


def predecessor(gen: Generation) -> Generation | None:
    """The generation whose last frame `gen` starts on: its source (an extension), or the
    shot before it in a `continue` sequence; None for every other generation."""
    if gen.extended_from_id is not None:
        return Generation.objects.filter(pk=gen.extended_from_id).first()
    if gen.sequence_id is not None and gen.shot_index:
        seq = Sequence.objects.only("transition").get(pk=gen.sequence_id)
        if seq.transition == Sequence.Transition.CONTINUE:
            return Generation.objects.filter(
                sequence_id=gen.sequence_id, shot_index=gen.shot_index - 1
            ).first()
    return None


def ensure_start_frame(gen: Generation) -> None:
    """Store the predecessor's last frame as `gen`'s input image, if it needs one and has
    none yet. EngineError when the predecessor's video is gone."""
    if gen.input_image:
        return
    before = predecessor(gen)
    if before is None:
        return
    if before.status != Status.COMPLETED or not before.video:
        raise EngineError(
            "source_unavailable",
            f"{before.generation_id} has no video to "
            "continue from (failed, or deleted by the retention policy).",
        )
    with tempfile.TemporaryDirectory(dir=storage.scratch_dir()) as folder:
        clip = _copy(before.video, Path(folder) / "source.mp4")
        frame = last_frame(clip)
    buffer = io.BytesIO()
    Image.fromarray(frame, mode="RGB").save(buffer, format="PNG")
    gen.input_image.save(
        f"{gen.generation_id}-start.png", ContentFile(buffer.getvalue()), save=False
    )
    Generation.objects.filter(pk=gen.pk).update(input_image=gen.input_image.name)


def source_clip(gen: Generation, folder: Path) -> tuple[Generation, Path]:
    """The generation `gen` extends and its video, copied into the run's folder (once)."""
    source = Generation.objects.filter(pk=gen.extended_from_id or 0).first()
    if source is None or not source.video:
        raise EngineError("source_unavailable", "The generation this one extends was deleted.")
    clip = folder / "source.mp4"
    if not clip.exists():
        _copy(source.video, clip)
    return source, clip


def native_source(gen: Generation, route: routes.Route) -> routes.VideoInput | None:
    """The clip to send upstream when `gen` extends it on a route that extends natively."""
    if gen.extended_from_id is None or not route.takes("source_video"):
        return None
    source = Generation.objects.filter(pk=gen.extended_from_id).first()
    if source is None or not source.video:
        raise EngineError("source_unavailable", "The generation this one extends was deleted.")
    with source.video.open("rb") as fh:
        return routes.VideoInput(fh.read(), "video/mp4")


def native_skip_s(gen: Generation, route: routes.Route, folder: Path) -> float:
    """Where the continuation starts in a native extension's file: the provider returns the
    source first (Veo: one combined video), so its length is skipped. 0 for the others."""
    if gen.extended_from_id is None or not route.takes("source_video"):
        return 0.0
    _, clip = source_clip(gen, folder)
    info = probe(clip, count_frames=False)
    return float(info["duration"] or 0.0)


def join_extension(gen: Generation, result: RenderResult, folder: Path) -> RenderResult:
    """An extension's result: the source's frames, then the continuation's (one timeline,
    at the same size, rate and audio settings)."""
    source, clip = source_clip(gen, folder)
    out = folder / "joined"
    out.mkdir(exist_ok=True)
    soundtrack = None
    if source.has_audio and source.engine == gen.engine == registry.LOCAL:
        # Both beds are ours: one bed, the source's, runs on across the join (each clip's
        # own would fade out and in there).
        text = source.audio_prompt or source.prompt
        soundtrack = functools.partial(synthesize, text, source.seed)
    try:
        joined = stitch(
            [clip, result.video_path],
            out,
            width=gen.width,
            height=gen.height,
            fps=gen.fps,
            transition=Sequence.Transition.CONTINUE,
            audio=source.has_audio or result.has_audio,
            soundtrack=soundtrack,
        )
    except StitchCanceled:
        raise Canceled() from None
    return _as_render_result(joined)


def _as_render_result(joined: StitchResult) -> RenderResult:
    return RenderResult(
        video_path=joined.video,
        poster_path=joined.poster,
        frame_count=joined.frame_count,
        fps=joined.fps,
        width=joined.width,
        height=joined.height,
        has_audio=joined.has_audio,
        extras={"preview": joined.preview, "spritesheet": joined.spritesheet},
    )


# --- sequences -----------------------------------------------------------------------------


def sequence_advance(pk: int) -> str:
    sequence = Sequence.objects.filter(pk=pk).first()
    if sequence is None:
        return "skipped: no such sequence"
    step = sequences.advance(sequence)
    if step != sequences.STITCH:
        return step
    return sequence_stitch(sequence)


def sequence_stitch(sequence: Sequence) -> str:
    claim = sequences.stitch_claim(sequence)
    if claim is None:
        return "skipped: stitched, or stitching elsewhere"
    shots = list(sequence.shots.order_by("shot_index"))
    beat = [time.monotonic()]

    def should_stop() -> bool:
        if time.monotonic() - beat[0] < STITCH_BEAT_S:
            return False
        beat[0] = time.monotonic()
        return not sequences.stitch_heartbeat(sequence, claim)

    with tempfile.TemporaryDirectory(dir=storage.scratch_dir()) as scratch:
        folder = Path(scratch)
        try:
            clips = [_copy(shot.video, folder / f"shot{i}.mp4") for i, shot in enumerate(shots)]
            out = folder / "out"
            out.mkdir()
            joined = stitch(
                clips,
                out,
                width=sequence.width,
                height=sequence.height,
                fps=sequence.fps,
                transition=sequence.transition,
                crossfade_s=sequences.CROSSFADE_S,
                audio=sequence.add_audio or any(shot.has_audio for shot in shots),
                should_stop=should_stop,
            )
            provenance.sign(
                joined.video,
                model=sequence.model,
                engine=shots[0].engine,
                title=sequence.title,
                ingredients=tuple(clips),
            )
        except StitchCanceled:
            return "abandoned: another run took the stitch"
        except Exception as exc:
            log.exception("stitching %s failed", sequence.sequence_id)
            sequences.stitch_fail(sequence, claim, f"The shots could not be stitched: {exc}")
            return "failed: stitch"
        names = {}
        for field, path in (
            ("video", joined.video),
            ("poster", joined.poster),
            ("preview", joined.preview),
            ("spritesheet", joined.spritesheet),
        ):
            stored: FieldFile = getattr(sequence, field)
            with path.open("rb") as fh:
                stored.save(f"{sequence.sequence_id}{path.suffix}", File(fh), save=False)
            names[field] = stored.name
        done = sequences.stitch_complete(
            sequence,
            claim,
            video_size=joined.video.stat().st_size,
            num_frames=joined.frame_count,
            has_audio=joined.has_audio,
            markers=[round(m, 3) for m in joined.markers],
            **names,
        )
    if not done:
        for field in names:
            stored = getattr(sequence, field)
            stored.storage.delete(stored.name or "")
        return "discarded: lost the stitch"
    return "completed"


# --- exports -------------------------------------------------------------------------------

MAKERS: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    Export.Format.GIF: (media_exports.export_gif, ".gif"),
    Export.Format.WEBM: (media_exports.export_webm, ".webm"),
    Export.Format.LOOP: (media_exports.export_loop, ".mp4"),
}


def export_make(pk: int) -> str:
    export = Export.objects.select_related("generation", "sequence").filter(pk=pk).first()
    if export is None or not exports.export_start(export):
        return "skipped: made, failed, or gone"
    owner = export.generation or export.sequence
    assert owner is not None
    owner_id = getattr(owner, "generation_id", None) or getattr(owner, "sequence_id", "")
    make, suffix = MAKERS[export.format]
    with tempfile.TemporaryDirectory(dir=storage.scratch_dir()) as scratch:
        folder = Path(scratch)
        try:
            clip = _copy(owner.video, folder / "source.mp4")
            made = make(clip, folder / f"export{suffix}")
            if suffix == ".mp4":  # the loop: an MP4 of its own, made from the video
                model = owner.model
                engine = getattr(owner, "engine", "") or ""
                provenance.sign(made, model=model, engine=engine, title=f"{owner_id} (loop)",
                                ingredients=(clip,))  # fmt: skip
        except Exception as exc:
            log.exception("export %s of %s failed", export.format, owner_id)
            exports.export_failed(export, f"The {export.format} export failed: {exc}")
            return "failed"
        with made.open("rb") as fh:
            export.file.save(f"{owner_id}-{export.format}{suffix}", File(fh), save=False)
        exports.export_done(export, name=export.file.name or "", size=made.stat().st_size)
    return "ready"


# --- helpers -------------------------------------------------------------------------------


def _copy(stored: FieldFile, dest: Path) -> Path:
    with stored.open("rb") as src, dest.open("wb") as out:
        shutil.copyfileobj(src, out)
    return dest
