from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from generations import ids
from generations.core import apikeys
from generations.models import ApiKey, Team, User
from tests.ops_helpers import operator_c2pa_env


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
        # Production signs videos with its own certificate (else: videogen.W201).
        **operator_c2pa_env(tmp_path / "c2pa-operator"),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_the_first_run_reads_cleanly_and_ctrl_c_ends_it_cleanly(tmp_path: Path) -> None:
    """What `make run` prints on a fresh data dir, in a terminal: the admin login stays
    readable (no django-q INFO lines scroll it away), says how to reset a lost password, and
    Ctrl-C ends everything with status 0 (make then prints no "Error 1")."""
    env = {**os.environ, "VIDEOGEN_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("VIDEOGEN_Q_SYNC", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, timeout=120)
    banner = subprocess.run([*manage, "bootstrap"], env=env, check=True, timeout=60,
                            capture_output=True, text=True).stdout  # fmt: skip
    assert "password" in banner and "manage.py changepassword admin@localhost" in banner

    pid, fd = pty.fork()  # a terminal, as a person has: Ctrl-C is the byte \x03
    if pid == 0:  # pragma: no cover - the child
        os.execvpe(sys.executable, [*manage, "serve", "--port", "0"], env)
    out = b""

    def read_for(seconds: float, until: bytes | None = None) -> None:
        nonlocal out
        end = time.monotonic() + seconds
        while time.monotonic() < end and (until is None or until not in out):
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    return

    read_for(60, b"(Ctrl-C stops)")
    assert b"(Ctrl-C stops)" in out, out.decode(errors="replace")
    read_for(4)  # the worker starts and polls its queue
    assert b"INFO django-q" not in out and b"INFO django_q" not in out, out.decode()
    os.write(fd, b"\x03")
    read_for(20, b"videogen stopped.")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert b"videogen stopped." in out and os.waitstatus_to_exitcode(status) == 0, out.decode()
