"""Shared fixtures: three standing users (owner, teammate-free outsider, test-key holder)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from generations.core import accounts, apikeys, quotas
from generations.models import ApiKey, Team, User
from generations.routing import breaker
from tests.asgi_client import AsgiClient

# Hypothesis (and schemathesis) keep their example database inside the venv, like the other
# tool caches, not in a folder of its own at the top of the project.
set_hypothesis_home_dir(Path(__file__).resolve().parent.parent / ".venv" / ".hypothesis")


@pytest.fixture(autouse=True)
def _isolated_storage(settings: Any, tmp_path: Any) -> None:
    # Each test writes media into its own folder, never into ./var.
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.DATA_DIR = tmp_path
    # Each test's database starts with every circuit closed: no estimate remembers one.
    breaker.forget_open_providers()


@pytest.fixture
def sync_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """django-q2 runs tasks inline (its `sync` mode), so a submit renders at once."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@dataclass
class Account:
    user: User
    team: Team
    key: ApiKey
    raw_key: str

    def client(self) -> ApiClient:
        return ApiClient(self.raw_key)


class ApiClient:
    """A client of the production ASGI application (tests/asgi_client.py) with a Bearer key
    and JSON bodies."""

    def __init__(self, raw_key: str | None) -> None:
        self.raw_key = raw_key
        self.http = AsgiClient()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.raw_key}"} if self.raw_key else {}

    def post(self, path: str, body: Any) -> Any:
        return self.http.post(
            path, data=json.dumps(body), content_type="application/json", headers=self._headers()
        )

    def get(self, path: str, **params: Any) -> Any:
        return self.http.get(path, params, headers=self._headers())


def make_account(email: str, *, test: bool = False, monthly_limit: int = 100) -> Account:
    user = accounts.user_create(email=email, password="correct horse battery")
    team = accounts.team_personal_get(user=user)
    if monthly_limit != team.plan.monthly_limit:
        quotas.team_set_plan_limits(team=team, monthly_limit=monthly_limit)
    key, raw = apikeys.api_key_create(team=team, user=user, name="k", test=test)
    return Account(user=user, team=team, key=key, raw_key=raw)


# The accounts commit (transactional_db): the API runs its handlers on the DB-thread pool,
# whose connections see only what is committed.
@pytest.fixture
def owner(transactional_db: None) -> Account:
    return make_account("alice@example.com")


@pytest.fixture
def outsider(transactional_db: None) -> Account:
    return make_account("mallory@example.com")


@pytest.fixture
def tester(transactional_db: None) -> Account:
    return make_account("tess@example.com", test=True)


def body_bytes(response: Any) -> bytes:
    """The whole body of a test-client response, streaming (sync or async) or not."""
    if not getattr(response, "streaming", False):
        return bytes(response.content)
    if response.is_async:

        async def collect() -> bytes:
            return b"".join([chunk async for chunk in response.streaming_content])

        return asyncio.run(collect())
    return b"".join(response.streaming_content)
