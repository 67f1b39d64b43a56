"""`purge_media --older-than-days N [--dry-run]`: delete the media files of generations that
finished more than N days ago, keeping their records (generations/retention.py). The daily
schedule does the same with VIDEOGEN_RETENTION_DAYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generations import retention


class Command(BaseCommand):
    help = "Delete the files (not the records) of generations finished more than N days ago."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than-days", type=int, required=True, metavar="N")
        parser.add_argument(
            "--dry-run", action="store_true", help="list what would be deleted, delete nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than_days"]
        if days < 1:
            raise CommandError("--older-than-days must be at least 1.")
        dry_run = options["dry_run"]
        report = retention.purge_media(older_than_days=days, dry_run=dry_run)
        if dry_run:
            for generation_id in report.ids:
                self.stdout.write(generation_id)
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(
            f"{verb} {report.files} files ({report.bytes} bytes) of {report.generations} "
            f"generations finished more than {days} days ago"
            + (f"; {report.errors} files could not be deleted" if report.errors else "")
        )
        if report.errors:
            raise CommandError(f"{report.errors} files could not be deleted (see the log).")
