"""`purge_media --older-than-days N [--orphans] [--dry-run]`: delete the media files of
generations that finished more than N days ago, keeping their records; with `--orphans`, also
the media files no generation names (generations/retention.py). The daily schedule does both,
the first only with VIDEOGEN_RETENTION_DAYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generations.ops import retention


class Command(BaseCommand):
    help = (
        "Delete the files (not the records) of generations finished more than N days ago, "
        "and/or (--orphans) media files that no generation names."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than-days", type=int, metavar="N")
        parser.add_argument(
            "--orphans",
            action="store_true",
            help="delete media files no generation names (written more than a day ago)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="list what would be deleted, delete nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days, orphans, dry_run = options["older_than_days"], options["orphans"], options["dry_run"]
        if days is None and not orphans:
            raise CommandError("Give --older-than-days N, --orphans, or both.")
        if days is not None and days < 1:
            raise CommandError("--older-than-days must be at least 1.")
        verb = "would delete" if dry_run else "deleted"
        errors = 0
        if days is not None:
            report = retention.purge_media(older_than_days=days, dry_run=dry_run)
            if dry_run:
                for generation_id in report.ids:
                    self.stdout.write(generation_id)
            self.stdout.write(
                f"{verb} {report.files} files ({report.bytes} bytes) of {report.generations} "
                f"generations finished more than {days} days ago"
                + (f"; {report.errors} files could not be deleted" if report.errors else "")
            )
            errors += report.errors
        if orphans:
            swept = retention.sweep_orphans(dry_run=dry_run)
            if dry_run:
                for name in swept.names:
                    self.stdout.write(name)
            self.stdout.write(
                f"{verb} {swept.files} orphaned files ({swept.bytes} bytes) that no "
                "generation names"
                + (f"; {swept.errors} files could not be deleted" if swept.errors else "")
            )
            errors += swept.errors
        if errors:
            raise CommandError(f"{errors} files could not be deleted (see the log).")
