"""What every run shares, local or hosted: its progress and heartbeat, its scratch folder,
and storing what it made (the files, then the completion in one transaction)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from django.core.files import File
from django.db import connection
from django.utils import timezone

from generations.core import lifecycle, provenance, safety
from generations.errors import DATABASE_DOWN
from generations.models import Generation
from generations.ops import storage
from generations.rendering.base import RenderResult

log = logging.getLogger(__name__)

# Progress is written at most this often: each write is also the run's heartbeat.
PROGRESS_INTERVAL_S = 0.5
# Extra files an engine may return, and the Generation field each is stored in.
EXTRA_FIELDS = ("preview", "spritesheet")


def work_dir(gen: Generation, claim: str) -> Path:
    """A scratch folder of this run (the caller removes it)."""
    path = storage.scratch_dir() / f"{gen.generation_id}-{claim[:8]}"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Reporter:
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


def store_result(gen: Generation, claim: str, result: RenderResult) -> str:
    """Screen the video (when asked), store its files, then complete the generation."""
    if gen.enable_safety_checker:
        verdict = safety.screen_video(result.video_path)
        if verdict.blocked:
            lifecycle.fail(
                generation=gen,
                code="content_policy",
                message=f"The video was withheld by the safety checker ({verdict.category}).",
                claim=claim,
            )
            return "failed: content_policy"
    _sign(gen, claim, result.video_path)
    stem = gen.generation_id
    outputs = {"video": result.video_path, "poster": result.poster_path}
    outputs |= {name: result.extras[name] for name in EXTRA_FIELDS if name in result.extras}
    for name, path in outputs.items():
        with path.open("rb") as fh:
            getattr(gen, name).save(f"{stem}{path.suffix}", File(fh), save=False)
    # Completed and settled in one transaction: a worker killed in between must not leave a
    # delivered video whose charge the ledger never settles (or a webhook never queued).
    done = lifecycle.complete(
        generation=gen,
        claim=claim,
        video_size=result.video_path.stat().st_size,
        has_audio=result.has_audio,
        **{name: getattr(gen, name).name for name in outputs},
    )
    if not done:
        # Canceled or taken over while we rendered: our copies must not linger.
        for name in outputs:
            field = getattr(gen, name)
            field.storage.delete(field.name)
        lifecycle.stop(generation=gen, claim=claim)
        return "discarded: lost the claim"
    return "completed"


def _sign(gen: Generation, claim: str, video: Path) -> None:
    """The C2PA manifest, signed into the finished file: an extension names its source (the
    run's copy, `source.mp4`), a hosted result keeps the provider's own manifest (the
    download, `upstream.bin`) when it came with one."""
    folder = work_dir(gen, claim)
    source = folder / "source.mp4"
    upstream = folder / "upstream.bin"
    parent = None
    if upstream.exists() and provenance.has_manifest(upstream):
        # The ingredient is named after its file: name it for what it is.
        parent = folder / f"{gen.engine}-original.mp4"
        if not parent.exists():
            os.link(upstream, parent)
    provenance.sign(
        video,
        model=gen.model,
        engine=gen.engine,
        title=gen.prompt,
        ingredients=(source,) if gen.extended_from_id is not None and source.exists() else (),
        parent_manifest=parent,
    )
