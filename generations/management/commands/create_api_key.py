"""`create_api_key --email E [--create-user] [--name N] [--test] [--monthly-limit N]`.

The raw key is the last line of stdout and appears nowhere else."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generations.core import accounts, apikeys, quotas
from generations.models import User


class Command(BaseCommand):
    help = "Create an API key for a user's personal team; prints the key as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--create-user", action="store_true", help="create the user if missing")
        parser.add_argument("--name", default="", help="a label for the key")
        parser.add_argument(
            "--test", action="store_true", help="a vg_test_ key: local engine, free"
        )
        parser.add_argument("--monthly-limit", type=int, help="set the team's monthly limit")

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["email"].strip().lower()
        user = User.objects.filter(email=email).first()
        if user is None:
            if not options["create_user"]:
                raise CommandError(f"No user {email}; pass --create-user to create one.")
            user = accounts.user_create(email=email)
            self.stderr.write(f"Created user {email} (no password; set one with changepassword).")
        team = accounts.team_personal_get(user=user)
        if options["monthly_limit"] is not None:
            if options["monthly_limit"] < 0:
                raise CommandError("--monthly-limit must be 0 or more.")
            quotas.team_set_plan_limits(team=team, monthly_limit=options["monthly_limit"])
        key, raw = apikeys.api_key_create(
            team=team, user=user, name=options["name"], test=options["test"]
        )
        self.stderr.write(
            f"Created {'test' if key.is_test else 'live'} key {key.display} for team {team.name!r}."
        )
        self.stdout.write(raw)
