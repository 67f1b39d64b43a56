"""`seed_demo --generations N [--teams T]`: fill the database with N finished generations over
T teams, with their ledger and shared media, for demos and benchmarks (generations/core/demo.py;
CONTRACT 10). Never run by anything else; run it on a server nobody else writes to."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generations.core import demo


class Command(BaseCommand):
    help = "Fill the database with N finished demo generations over T teams (rows, ledger, media)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--generations", type=int, required=True, metavar="N")
        parser.add_argument("--teams", type=int, default=10, metavar="T")
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    def handle(self, *args: Any, **options: Any) -> None:
        count, teams = options["generations"], options["teams"]
        if count < 1:
            raise CommandError("--generations must be at least 1.")
        if teams < 1:
            raise CommandError("--teams must be at least 1.")
        verbose = options["verbosity"] > 1
        made = demo.seed(
            generations=count, teams=teams, seed=options["seed"],
            say=(lambda line: self.stdout.write(line)) if verbose else None,
        )  # fmt: skip
        self.stdout.write(
            f"seeded {made.generations} generations ({made.ledger_rows} ledger rows) over "
            f"{made.teams} teams in {made.seconds:.1f} s ({made.per_second:.0f} generations/s)"
        )
