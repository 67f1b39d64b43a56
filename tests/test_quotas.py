"""Plans: premium models, per-member caps, credits and request rates."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.cache import cache

from generations.core import apikeys, lifecycle, quotas
from generations.models import Generation, Membership, UsageEvent
from generations.rendering import registry
from tests.conftest import Account, make_account

LOCAL = {"model": "local", "prompt": "tide pools", "duration": 2, "resolution": "720p"}


def test_a_premium_model_on_a_plan_without_premium_is_a_clear_403(
    owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if a provider engine served Veo here (hosted engines come with their own issue).
    monkeypatch.setattr(registry, "engine_name_for", lambda model, test_mode, mode=None: "local")
    response = owner.client().post("/api/v1/generate", {"model": "veo_3", "prompt": "x"})
    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("premium_not_allowed", "model")
    assert "premium" in error["message"] and not Generation.objects.exists()
    quotas.team_set_plan_limits(team=owner.team, premium_allowed=True)
    assert (
        owner.client().post("/api/v1/generate", {"model": "veo_3", "prompt": "x"}).status_code
        == 200
    )


def test_the_member_cap_limits_each_member_not_the_team(owner: Account) -> None:
    quotas.team_set_plan_limits(team=owner.team, member_monthly_cap=1)
    teammate = make_account("bob@example.com")
    Membership.objects.create(team=owner.team, user=teammate.user, role="member")
    bob_key, bob_raw = apikeys.api_key_create(team=owner.team, user=teammate.user)
    from tests.conftest import ApiClient

    assert owner.client().post("/api/v1/generate", LOCAL).status_code == 200
    refused = owner.client().post("/api/v1/generate", LOCAL)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "member_limit_exceeded"
    assert ApiClient(bob_raw).post("/api/v1/generate", LOCAL).status_code == 200


def test_credits_are_taken_at_submit_and_a_shortfall_is_a_402(owner: Account) -> None:
    quotas.team_grant_credits(team=owner.team, amount=Decimal("3"), note="trial")
    # local costs 1 credit per second at 720p: 2 s = 2 credits.
    assert owner.client().post("/api/v1/generate", LOCAL).status_code == 200
    owner.team.refresh_from_db()
    assert owner.team.credits == Decimal("1.00")
    short = owner.client().post("/api/v1/generate", LOCAL)
    assert short.status_code == 402
    body = short.json()
    assert body["error"]["code"] == "insufficient_credits"
    assert (body["credits_needed"], body["credits_left"]) == ("2.00", "1.00")
    assert Generation.objects.filter(team=owner.team).count() == 1


def test_a_failed_generation_gives_its_credits_back(owner: Account) -> None:
    quotas.team_grant_credits(team=owner.team, amount=Decimal("10"))
    gen_id = owner.client().post("/api/v1/generate", LOCAL).json()["generation_id"]
    gen = Generation.objects.get(generation_id=gen_id)
    lifecycle.fail(generation=gen, code="engine_error", message="boom")
    owner.team.refresh_from_db()
    assert owner.team.credits == Decimal("10.00")
    ledger = list(UsageEvent.objects.filter(team=owner.team).order_by("pk").values_list(
        "kind", "credits"))  # fmt: skip
    assert ledger == [("grant", Decimal("10")), ("charge", Decimal("2")), ("refund", Decimal("-2"))]


def test_every_api_response_carries_rate_limit_headers(owner: Account) -> None:
    cache.clear()
    response = owner.client().get("/api/v1/user")
    assert response["X-RateLimit-Limit"] == "600"
    assert response["X-RateLimit-Remaining"] == "599"
    assert 1 <= int(response["X-RateLimit-Reset"]) <= 60
    assert response["RateLimit-Policy"] == '"default";q=600;w=60'
    assert response["RateLimit"].startswith('"default";r=599;t=')
    error = owner.client().get("/api/v1/status/gen_nope")
    assert error.status_code == 404 and error["X-RateLimit-Remaining"] == "598"


def test_past_the_rate_limit_requests_get_429_with_retry_after(owner: Account) -> None:
    cache.clear()
    quotas.team_set_plan_limits(team=owner.team, requests_per_minute=3)
    client = owner.client()
    assert [client.get("/api/v1/user").status_code for _ in range(3)] == [200, 200, 200]
    limited = client.get("/api/v1/user")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(limited["Retry-After"]) <= 60 and limited["X-RateLimit-Remaining"] == "0"


def test_rate_limits_are_per_key(owner: Account) -> None:
    cache.clear()
    quotas.team_set_plan_limits(team=owner.team, requests_per_minute=1)
    _, second = apikeys.api_key_create(team=owner.team, user=owner.user)
    from tests.conftest import ApiClient

    assert owner.client().get("/api/v1/user").status_code == 200
    assert owner.client().get("/api/v1/user").status_code == 429
    assert ApiClient(second).get("/api/v1/user").status_code == 200


def test_user_shows_plan_usage_limits_and_credits(owner: Account) -> None:
    quotas.team_grant_credits(team=owner.team, amount=Decimal("5"))
    body = owner.client().get("/api/v1/user").json()
    assert body["plan"]["premium_allowed"] is False
    assert body["plan"]["requests_per_minute"] == 600
    assert body["credits"] == {"balance": "5.00"}


def test_admins_grant_credits_from_the_team_list(owner: Account) -> None:
    from django.test import Client

    from generations.models import User

    User.objects.create_superuser("root@example.com", "a long admin pass 1")
    admin = Client()
    admin.force_login(User.objects.get(email="root@example.com"))
    url = "/admin/generations/team/"
    page = admin.post(url, {"action": "grant_credits", "_selected_action": [owner.team.pk]})
    assert page.status_code == 200 and b"Grant credits" in page.content
    done = admin.post(
        url,
        {"action": "grant_credits", "_selected_action": [owner.team.pk], "amount": "25",
         "note": "welcome"},
    )  # fmt: skip
    assert done.status_code == 302
    owner.team.refresh_from_db()
    assert owner.team.credits == Decimal("25.00")
    key_page = admin.get(f"/admin/generations/apikey/{owner.key.pk}/change/").content.decode()
    assert owner.raw_key not in key_page and owner.key.digest not in key_page
