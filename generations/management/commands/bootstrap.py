"""Makes sure an admin account exists; on the first run prints its login and an API key."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from generations.core import accounts, apikeys
from generations.models import User

DEFAULT_ADMIN_EMAIL = "admin@localhost"


class Command(BaseCommand):
    help = "Create the first admin user and API key if there is no admin yet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", default=DEFAULT_ADMIN_EMAIL)

    def handle(self, *args: Any, **options: Any) -> None:
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write(
                "Admin account exists (log in at /admin/; a lost password is reset with "
                "`.venv/bin/python manage.py changepassword <email>`)."
            )
            return
        password = secrets.token_urlsafe(12)
        user = accounts.user_create(email=options["email"], password=password, staff=True)
        _, raw = apikeys.api_key_create(
            team=accounts.team_personal_get(user=user), user=user, name="bootstrap"
        )
        # Printed once, on the operator's own terminal; nothing of it is stored in plain text.
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "=" * 64,
                    " videogen is set up. Save these, they are shown only once:",
                    f"   admin login   {user.email}",
                    f"   password      {password}",
                    f"   API key       {raw}",
                    " Lost the password? .venv/bin/python manage.py changepassword " + user.email,
                    "=" * 64,
                    "",
                ]
            )
        )
