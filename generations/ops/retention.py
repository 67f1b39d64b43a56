"""Retention: the media files of old generations are deleted, their records are kept.

A generation that finished (completed, failed or canceled) more than N days ago loses its
video, poster, preview, spritesheet and input image; `files_purged_at` records when. Usage,
the ledger and the status API stay as they were; the video links answer 410 Gone. A shared
link is withdrawn at the same time (its page would have nothing to show).

Run daily by the schedule created in migration 0012 when VIDEOGEN_RETENTION_DAYS is set,
or by hand: `manage.py purge_media --older-than-days N [--dry-run]`. The same daily run (and
`purge_media --orphans`) deletes media files no generation names, a day after they were
written: what a worker killed between saving a render and committing its row leaves.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.files.storage import default_storage
from django.db.models import Q, QuerySet
from django.utils import timezone

from generations.db import keyset
from generations.models import Export, Generation, Sequence

log = logging.getLogger(__name__)

FILE_FIELDS = Generation.FILE_FIELDS
# Rows taken per query: bounded memory however large the backlog is.
BATCH = 200


@dataclass
class PurgeReport:
    generations: int = 0
    files: int = 0
    bytes: int = 0
    errors: int = 0
    ids: list[str] = field(default_factory=list)


def expired(older_than_days: int, now: datetime | None = None) -> QuerySet[Generation]:
    """Finished generations older than the limit whose files are still there."""
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    return Generation.objects.filter(
        status__in=Generation.FINAL_STATUSES,
        finished_at__lt=cutoff,
        files_purged_at__isnull=True,
    )


# Oldest first, through the index of unpurged finished rows (gen_unpurged): a run reads
# only what it purges, however many rows were purged before.
EXPIRED_ORDER = ("finished_at", "pk")


def _stored_files(gen: Generation) -> list[str]:
    return [getattr(gen, name).name for name in FILE_FIELDS if getattr(gen, name)]


def _size(gen: Generation, name: str) -> int:
    try:
        return int(gen.video.storage.size(name))
    except Exception:  # already gone, or the storage cannot say
        return 0


def generation_purge_files(
    *, generation: Generation, now: datetime | None = None
) -> list[str] | None:
    """Clear the file fields (conditional UPDATE: one purge wins), then delete the files;
    the names deleted, or None when another purge took the row. The record goes first: a
    reader never finds a row that points at a missing file."""
    names = _stored_files(generation)
    taken = Generation.objects.filter(pk=generation.pk, files_purged_at__isnull=True).update(
        files_purged_at=now or timezone.now(),
        share_token=None,
        shared_at=None,
        **dict.fromkeys(FILE_FIELDS, ""),
    )
    if not taken:
        return None
    # Its exports are made from the video: they go with it.
    exports = Export.objects.filter(generation=generation).exclude(file="")
    names += list(exports.values_list("file", flat=True))
    Export.objects.filter(generation=generation).delete()
    storage = generation.video.storage
    deleted = []
    for name in names:
        try:
            storage.delete(name)
            deleted.append(name)
        except Exception:
            log.warning("retention: could not delete %s of %s", name, generation, exc_info=True)
    return deleted


def purge_media(
    *, older_than_days: int, dry_run: bool = False, now: datetime | None = None
) -> PurgeReport:
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    now = now or timezone.now()
    report = PurgeReport()
    after: list[Any] | None = None
    while True:
        batch = keyset.window(
            expired(older_than_days, now), EXPIRED_ORDER, size=BATCH, after=after
        ).items
        if not batch:
            break
        after = [batch[-1].finished_at, batch[-1].pk]
        for gen in batch:
            names = _stored_files(gen)
            size = sum(_size(gen, name) for name in names)
            if dry_run:
                deleted = names
            else:
                purged = generation_purge_files(generation=gen, now=now)
                if purged is None:
                    continue  # another purge took it
                deleted = purged
                report.errors += len(names) - len(deleted)
            report.generations += 1
            report.files += len(deleted)
            report.bytes += size
            report.ids.append(gen.generation_id)
    if not dry_run and report.generations:
        log.info(
            "retention: deleted %d files (%d bytes) of %d generations older than %d days",
            report.files, report.bytes, report.generations, older_than_days,
        )  # fmt: skip
    return report


# --- files no generation names ----------------------------------------------------------------

# Where generations keep their files (the upload_to of each file field).
MEDIA_FOLDERS = ("videos/", "posters/", "previews/", "spritesheets/", "inputs/", "exports/")
# A run saves its files just before the commit that names them on the row, and a submit its
# input image just before its transaction: anything younger may still be claimed.
ORPHAN_MIN_AGE = timedelta(hours=24)


@dataclass
class SweepReport:
    files: int = 0
    bytes: int = 0
    errors: int = 0
    names: list[str] = field(default_factory=list)


def _listed(folder: str) -> list[str]:
    try:
        _, files = default_storage.listdir(folder)
    except FileNotFoundError:  # a local folder nothing was ever saved in
        return []
    return [folder + name for name in files]


# Files are named after their owner: `<generation_id>...`, `<sequence_id>...`, and exports
# `<owner id>-<format>...` (tasks/results.py, core/submissions.py, tasks/shots.py).
OWNER_ID = re.compile(r"(gen|seq)_[0-9A-Za-z]{24}")


def _named(names: list[str]) -> set[str]:
    """The names a row points at: a generation's files, a sequence's stitched video and
    images, an export's file. The rows a name's own id points to are read first, through
    their unique indexes; only names they do not account for (an orphan, a file named
    otherwise) are looked for in every file column, which no index serves."""
    ids: dict[str, set[str]] = {"gen": set(), "seq": set()}
    for name in names:
        found = OWNER_ID.match(name.rpartition("/")[2])
        if found is not None:
            ids[found.group(1)].add(found.group(0))
    found_names: set[str] = set()
    if ids["gen"]:
        for row in Generation.objects.filter(generation_id__in=ids["gen"]).values_list(
            *FILE_FIELDS
        ):
            found_names.update(row)
    if ids["seq"]:
        for row in Sequence.objects.filter(sequence_id__in=ids["seq"]).values_list(
            *Sequence.FILE_FIELDS
        ):
            found_names.update(row)
    if ids["gen"] or ids["seq"]:
        found_names.update(
            Export.objects.filter(
                Q(generation__generation_id__in=ids["gen"])
                | Q(sequence__sequence_id__in=ids["seq"])
            ).values_list("file", flat=True)
        )
    rest = [name for name in names if name not in found_names]
    if not rest:
        return found_names
    owners: tuple[tuple[type[Generation | Sequence | Export], tuple[str, ...]], ...] = (
        (Generation, FILE_FIELDS), (Sequence, Sequence.FILE_FIELDS), (Export, ("file",))
    )  # fmt: skip
    for model, fields in owners:
        for field_name in fields:
            found_names.update(
                model.objects.filter(**{f"{field_name}__in": rest}).values_list(
                    field_name, flat=True
                )
            )
    return found_names


def sweep_orphans(
    *, min_age: timedelta = ORPHAN_MIN_AGE, dry_run: bool = False, now: datetime | None = None
) -> SweepReport:
    """Delete media files that no generation names and that are older than `min_age`: what
    a worker killed between saving a render's files and committing the row leaves behind
    (the run that follows saves new ones). Run daily with the retention task."""
    cutoff = (now or timezone.now()) - min_age
    report = SweepReport()
    for folder in MEDIA_FOLDERS:
        listed = _listed(folder)
        for start in range(0, len(listed), BATCH):
            chunk = listed[start : start + BATCH]
            named = _named(chunk)
            for name in chunk:
                if name in named:
                    continue
                try:
                    if default_storage.get_modified_time(name) >= cutoff:
                        continue
                    size = default_storage.size(name)
                    if not dry_run:
                        default_storage.delete(name)
                except FileNotFoundError:
                    continue  # deleted meanwhile
                except Exception:
                    log.warning("orphan sweep: could not delete %s", name, exc_info=True)
                    report.errors += 1
                    continue
                report.files += 1
                report.bytes += size
                report.names.append(name)
    if report.files and not dry_run:
        log.warning(
            "orphan sweep: deleted %d media files (%d bytes) that no generation names",
            report.files, report.bytes,
        )  # fmt: skip
    return report
