"""Retention: old generations lose their files, keep their records; the links say 410 Gone."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule

from generations import tasks
from generations.core import library
from generations.models import Generation
from generations.ops import retention
from tests.conftest import Account
from tests.ops_helpers import submit_and_render


@pytest.fixture
def old(owner: Account, sync_tasks: None, django_capture_on_commit_callbacks: Any) -> Generation:
    """A completed generation that finished 40 days ago, shared, with all its files."""
    gen = submit_and_render(owner, django_capture_on_commit_callbacks)
    library.generation_share(generation=gen)
    Generation.objects.filter(pk=gen.pk).update(finished_at=timezone.now() - timedelta(days=40))
    gen.refresh_from_db()
    return gen


def files_of(gen: Generation) -> list[str]:
    return [getattr(gen, name).name for name in retention.FILE_FIELDS if getattr(gen, name)]


@pytest.mark.django_db
def test_old_files_are_deleted_and_the_record_is_kept(old: Generation) -> None:
    names = files_of(old)
    token = old.share_token
    assert len(names) >= 3 and all(default_storage.exists(n) for n in names)
    report = retention.purge_media(older_than_days=30)
    assert (report.generations, report.files, report.errors) == (1, len(names), 0)
    assert report.bytes > 0
    assert not any(default_storage.exists(n) for n in names)
    old.refresh_from_db()
    assert old.status == Generation.Status.COMPLETED and old.prompt  # the record stays
    assert old.files_purged_at is not None and files_of(old) == []
    assert old.share_token is None  # the public page would have nothing to show
    assert Client().get(f"/s/{token}/video.mp4").status_code == 404
    assert old.usage.count() >= 1  # the ledger is untouched


@pytest.mark.django_db
def test_recent_and_unfinished_generations_are_left_alone(old: Generation) -> None:
    assert retention.purge_media(older_than_days=60).generations == 0
    Generation.objects.filter(pk=old.pk).update(
        status=Generation.Status.IN_PROGRESS, finished_at=timezone.now() - timedelta(days=90)
    )
    assert retention.purge_media(older_than_days=30).generations == 0
    assert all(default_storage.exists(n) for n in files_of(old))


@pytest.mark.django_db
def test_a_second_purge_finds_nothing(old: Generation) -> None:
    retention.purge_media(older_than_days=30)
    assert retention.purge_media(older_than_days=30).generations == 0


@pytest.mark.django_db
def test_the_api_says_the_files_expired_and_the_video_link_is_410_gone(
    old: Generation, owner: Account
) -> None:
    retention.purge_media(older_than_days=30)
    status = owner.client().get(f"/api/v1/status/{old.generation_id}").json()
    assert status["status"] == "completed" and status["files_expired"] is True
    assert status["files_expired_at"] is not None
    assert "video_url" not in status and "thumbnail_url" not in status
    for kind in ("video", "thumbnail", "preview"):
        response = Client().get(f"/api/v1/{kind}/{old.generation_id}")
        assert response.status_code == 410, kind
        error = response.json()["error"]
        assert error["code"] == "expired" and "retention policy" in error["message"]
    listed = owner.client().get("/api/v1/generations").json()
    assert "video_url" not in str(listed)


@pytest.mark.django_db
def test_the_dashboard_page_says_the_video_expired(old: Generation, owner: Account) -> None:
    retention.purge_media(older_than_days=30)
    client = Client()
    client.force_login(owner.user)
    page = client.get(f"/generations/{old.generation_id}").content.decode()
    assert "This video has expired" in page and "<video" not in page


@pytest.mark.django_db
def test_the_gallery_leaves_out_expired_videos_and_openai_content_is_410(
    old: Generation, owner: Account
) -> None:
    client = Client()
    client.force_login(owner.user)
    assert old.generation_id in client.get("/gallery").content.decode()
    retention.purge_media(older_than_days=30)
    assert old.generation_id not in client.get("/gallery").content.decode()  # no broken tiles
    assert old.generation_id in client.get("/generations/").content.decode()  # the record
    for variant in ("video", "thumbnail"):
        answer = owner.client().get(f"/v1/videos/{old.generation_id}/content", variant=variant)
        assert answer.status_code == 410, variant
        assert answer.json()["error"]["code"] == "video_expired"


@pytest.mark.django_db
def test_the_daily_task_follows_the_setting(old: Generation, settings: Any) -> None:
    settings.VIDEOGEN_RETENTION_DAYS = None
    assert tasks.purge_expired_media() == (
        "retention off: files are kept forever; 0 orphaned files deleted"
    )
    assert all(default_storage.exists(n) for n in files_of(old))
    settings.VIDEOGEN_RETENTION_DAYS = 30
    assert tasks.purge_expired_media().startswith("purged ")
    old.refresh_from_db()
    assert old.files_purged_at is not None


@pytest.mark.django_db
def test_a_daily_schedule_runs_the_retention_task() -> None:
    schedule = Schedule.objects.get(func="generations.tasks.purge_expired_media")
    assert schedule.schedule_type == Schedule.DAILY and schedule.repeats == -1


@pytest.mark.django_db
def test_the_command_dry_run_lists_and_deletes_nothing(old: Generation) -> None:
    out = StringIO()
    call_command("purge_media", "--older-than-days", "30", "--dry-run", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == old.generation_id
    assert lines[-1].startswith("would delete ")
    assert all(default_storage.exists(n) for n in files_of(old))


@pytest.mark.django_db
def test_the_command_deletes(old: Generation) -> None:
    out = StringIO()
    names = files_of(old)
    call_command("purge_media", "--older-than-days", "30", stdout=out)
    assert out.getvalue().startswith(f"deleted {len(names)} files")
    assert not any(default_storage.exists(n) for n in names)


@pytest.mark.django_db
def test_the_command_refuses_zero_days() -> None:
    with pytest.raises(CommandError, match="at least 1"):
        call_command("purge_media", "--older-than-days", "0")


def _orphan(name: str) -> str:
    return default_storage.save(name, ContentFile(b"left by a killed worker"))


@pytest.mark.django_db
def test_files_no_generation_names_are_swept_a_day_later(old: Generation) -> None:
    """A worker killed after saving a render's files but before committing the row leaves
    them behind; the retry saves new ones. The daily sweep deletes the strays, never a file
    a generation names, and never one young enough to belong to a run still going."""
    kept = files_of(old)
    strays = [_orphan("videos/gen_killed.mp4"), _orphan("posters/gen_killed.jpg"),
              _orphan("inputs/gen_refused.png")]  # fmt: skip
    assert retention.sweep_orphans().files == 0  # written just now: maybe a live run's
    tomorrow = timezone.now() + timedelta(days=1, minutes=1)
    dry = retention.sweep_orphans(now=tomorrow, dry_run=True)
    assert sorted(dry.names) == sorted(strays) and all(default_storage.exists(n) for n in strays)
    report = retention.sweep_orphans(now=tomorrow)
    assert (report.files, report.errors) == (3, 0) and report.bytes == 3 * 23
    assert not any(default_storage.exists(n) for n in strays)
    assert all(default_storage.exists(n) for n in kept)  # named by a generation: kept
    out = StringIO()
    call_command("purge_media", "--orphans", stdout=out)
    assert out.getvalue().startswith("deleted 0 orphaned files")


def test_the_command_needs_something_to_do() -> None:
    with pytest.raises(CommandError, match="--orphans"):
        call_command("purge_media")


@pytest.mark.django_db
def test_the_sweep_keeps_sequences_and_exports_and_purges_take_exports_along(
    old: Generation,
) -> None:
    """A sequence's stitched video and an export are named by their own rows, not by a
    generation: the sweep keeps them. Purging a generation's files takes its exports."""
    from generations.models import Export, Sequence

    video = _orphan("videos/seq_stitched.mp4")
    export = _orphan("exports/gen_old-gif.gif")
    stray = _orphan("exports/gen_gone-webm.webm")
    Sequence.objects.create(team=old.team, model="local", resolution="480p",
                            aspect_ratio="16:9", width=854, height=480, fps=30,
                            transition="cut", status="completed", video=video)  # fmt: skip
    Export.objects.create(generation=old, format="gif", state="ready", file=export)
    tomorrow = timezone.now() + timedelta(days=1, minutes=1)
    assert retention.sweep_orphans(now=tomorrow).names == [stray]
    assert default_storage.exists(video) and default_storage.exists(export)
    retention.generation_purge_files(generation=old)
    assert not default_storage.exists(export) and not Export.objects.exists()


@pytest.mark.django_db
def test_the_sweep_finds_each_file_by_its_owners_id_not_by_scanning_every_column(
    old: Generation,
) -> None:
    """A file named after its generation is checked against that generation's row (the
    unique index on its id); only names no row of theirs accounts for are looked for in
    every file column. A file named after one generation but used by another is kept."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from generations.ids import new_generation_id

    gone = _orphan(f"videos/{new_generation_id()}.mp4")  # a run whose row never came
    borrowed = _orphan(f"posters/{new_generation_id()}.jpg")
    other = Generation.objects.get(pk=old.pk)
    other.pk, other.generation_id, other.request_id = None, new_generation_id(), uuid.uuid4()
    other.mark = other.share_token = None
    other.poster = borrowed
    other.save()
    tomorrow = timezone.now() + timedelta(days=1, minutes=1)
    with CaptureQueriesContext(connection) as queries:
        report = retention.sweep_orphans(now=tomorrow)
    assert report.names == [gone]
    assert default_storage.exists(borrowed) and all(
        default_storage.exists(n) for n in files_of(old)
    )
    # Per folder: the owners' rows, their exports; every column only for the two strays.
    column = '"generations_generation"."poster" IN'
    scans = [q["sql"] for q in queries.captured_queries if column in q["sql"]]
    assert len(scans) == 2, scans  # videos/ (the orphan) and posters/ (the borrowed one)
