from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from generations import ids
from generations.core import apikeys
from generations.models import ApiKey, Team, User


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_api_key_prints_the_key_as_the_last_line_and_nothing_else(db: None) -> None:
    out, err = run("create_api_key", "--email", "Bob@Example.com", "--create-user", "--name", "ci")
    lines = out.strip().splitlines()
    raw = lines[-1]
    assert apikeys.is_well_formed(raw) and raw.startswith("vg_live_")
    assert len(lines) == 1 and raw not in err
    key = ApiKey.objects.get(digest=ids.digest(raw))
    assert key.user.email == "bob@example.com" and key.name == "ci"


def test_create_api_key_makes_test_keys_and_sets_the_monthly_limit(db: None) -> None:
    out, _ = run("create_api_key", "--email", "t@example.com", "--create-user", "--test",
                 "--monthly-limit", "7")  # fmt: skip
    raw = out.strip().splitlines()[-1]
    assert raw.startswith("vg_test_")
    team = Team.objects.get(memberships__user__email="t@example.com")
    assert team.monthly_limit == 7 and team.plan.name != "Default"


def test_create_api_key_refuses_an_unknown_user_without_create_user(db: None) -> None:
    with pytest.raises(CommandError):
        run("create_api_key", "--email", "nobody@example.com")


def test_bootstrap_prints_the_admin_login_and_a_key_once(db: None) -> None:
    out, _ = run("bootstrap")
    assert "admin@localhost" in out and "vg_live_" in out
    admin = User.objects.get(email="admin@localhost")
    assert admin.is_superuser and admin.api_keys.count() == 1
    again, _ = run("bootstrap")
    assert "vg_live_" not in again and User.objects.count() == 1


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VIDEOGEN_DATA_DIR": str(tmp_path),
        "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-0123456789",
        "ALLOWED_HOSTS": "videogen.example",
        "SECURE_SSL_REDIRECT": "1",
        "SECURE_COOKIES": "1",
        "SECURE_HSTS_SECONDS": "31536000",
        "DEBUG": "0",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
