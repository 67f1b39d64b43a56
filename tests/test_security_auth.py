"""Access control across teams (IDOR), revoked keys, CSRF on every form, XSS, login throttle.

The URL patterns are enumerated from the resolver: a new route that takes an object id, or a
new API route, fails these tests until it is added to the tables below."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from generations.core import accounts, apikeys, library
from generations.dashboard import throttle
from generations.models import ApiKey, Generation, Invitation, Membership, WebhookEndpoint
from tests.conftest import Account

ROUTE_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")


def all_routes() -> dict[str, str]:
    """name -> route (with <params>) for every named pattern outside the admin."""
    found: dict[str, str] = {}

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                if not route.startswith("admin/"):
                    walk(p.url_patterns, route)
            elif isinstance(p, URLPattern) and p.name:
                found[p.name] = "/" + route

    walk(get_resolver().url_patterns, "")
    return found


def with_params(route: str, **values: object) -> str:
    return ROUTE_PARAM.sub(lambda m: str(values[m.group(1)]), route)


# Routes whose path id is itself the unguessable capability (>= 128 random bits), public by
# design: anyone holding the link may read, nothing there writes.
CAPABILITY_ROUTES = {
    "shared": "share token of a shared video",
    "shared-file": "share token of a shared video",
    "shared-embed": "share token of a shared video",
    "team-gallery": "slug of a gallery its team chose to publish",
    "invitation": "invitation token sent by e-mail",
    "password_reset_confirm": "Django's signed, expiring password-reset token",
    "api-video": "generation id (random, 'public video link' of the reference API)",
    "api-thumbnail": "generation id, as api-video",
    "api-preview": "generation id, as api-video",
    "api-spritesheet": "generation id, as api-video",
}
# Dashboard routes with an object id: method, tried by the outsider's session.
DASHBOARD_IDOR = {
    "generation": "GET",
    "generation-input": "GET",
    "generation-cancel": "POST",
    "generation-retry": "POST",
    "generation-share": "POST",
    "generation-delete": "POST",
    "api-key-revoke": "POST",
    "api-key-regenerate": "POST",
    "team": "GET",
    "team-invite": "POST",
    "team-member-role": "POST",
    "team-member-remove": "POST",
    "webhook-endpoint-remove": "POST",
    "batch": "GET",
    "batch-pick": "POST",
    "batch-cancel": "POST",
    "generation-extend": "POST",
    "sequence": "GET",
    "sequence-cancel": "POST",
}
# API routes with an object id: method, tried with the outsider's key.
API_IDOR = {
    "api-status": "GET",
    "api-cancel": "POST",
    "api-batch": "GET",
    "api-batch-cancel": "POST",
    "api-batch-pick": "POST",
    "openai-video": "GET",
    "openai-content": "GET",
    "openai-remix": "POST",
    "api-extend": "POST",
    "api-sequence": "GET",
    "api-sequence-cancel": "POST",
}
# API routes any caller may use without a key.
PUBLIC_API = {"openapi", "api-docs", "api-models", *CAPABILITY_ROUTES}
# Under /api/ for the lean handler, but the dashboard's: read-only GETs that a session
# authenticates and a key never does (test_the_dashboards_live_status_takes_no_key).
SESSION_API = {"dashboard-live", "dashboard-estimate"}


def _login(account: Account, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(account.user)
    return client


def _queued(account: Account, prompt: str = "a quiet harbour") -> Generation:
    response = account.client().post(
        "/api/v1/generate", {"model": "local", "prompt": prompt, "duration": 1}
    )
    assert response.status_code in (200, 201, 202), response.content
    return Generation.objects.get(generation_id=response.json()["generation_id"])


def test_every_route_with_an_object_id_is_covered() -> None:
    with_ids = {name for name, route in all_routes().items() if ROUTE_PARAM.search(route)}
    covered = set(CAPABILITY_ROUTES) | set(DASHBOARD_IDOR) | set(API_IDOR)
    assert with_ids == covered


def test_another_teams_objects_are_404_everywhere(owner: Account, outsider: Account) -> None:
    gen = _queued(owner)
    made = owner.client().post("/api/v1/batches", {"model": "local", "prompt": "takes",
                                                   "duration": 1, "count": 2})  # fmt: skip
    assert made.status_code == 200, made.content
    story = owner.client().post("/api/v1/sequences", {"model": "local", "shots": [
        {"prompt": "shot one", "duration": 1}, {"prompt": "shot two", "duration": 1}]})  # fmt: skip
    assert story.status_code == 200, story.content
    routes = all_routes()
    values = {
        "batch_id": made.json()["batch_id"],
        "sequence_id": story.json()["sequence_id"],
        "generation_id": gen.generation_id,
        "video_id": gen.generation_id,
        "pk": owner.key.pk,
        "code": owner.team.code,
        "user_id": owner.user.pk,
    }
    session = _login(outsider)
    for name, method in DASHBOARD_IDOR.items():
        url = with_params(routes[name], **values)
        response = session.get(url) if method == "GET" else session.post(url, {"share": "1"})
        assert response.status_code == 404, (name, response.status_code)
        assert gen.generation_id not in response.content.decode()
    api = outsider.client()
    for name, method in API_IDOR.items():
        url = with_params(routes[name], **values)
        response = api.get(url) if method == "GET" else api.post(url, {"prompt": "mine now"})
        assert response.status_code == 404, (name, response.status_code, response.content)
        assert gen.prompt not in response.content.decode()
    endpoint = WebhookEndpoint.objects.create(team=owner.team, url="https://hooks.example.com/")
    assert (
        session.post(f"/webhooks/endpoints/{endpoint.pk}/remove", {"confirm": "yes"}).status_code
        == 404
    )
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    # Ids carried in query strings and bodies.
    assert session.get(f"/generate?remix={gen.generation_id}").status_code == 404
    assert session.post("/teams/switch", {"team": str(owner.team.code)}).status_code == 404
    found = api.post("/v1/generate-video", {"request_id": str(gen.request_id)})
    assert found.status_code == 404 or gen.prompt not in found.content.decode()
    listing = api.get("/v1/videos", after=gen.generation_id)
    assert gen.prompt not in listing.content.decode()
    assert gen.generation_id not in api.get("/api/v1/generations").content.decode()
    history = session.get("/generations/", q=gen.generation_id).content.decode()
    assert gen.generation_id not in history
    # Nothing of the owner's changed.
    gen.refresh_from_db()
    assert gen.status == Generation.Status.IN_QUEUE and gen.share_token is None
    assert ApiKey.objects.get(pk=owner.key.pk).revoked_at is None
    assert Generation.objects.filter(team=owner.team, batch=None, sequence=None).count() == 1
    assert Generation.objects.filter(team=owner.team, status="canceled").count() == 0
    assert Membership.objects.get(team=owner.team, user=owner.user).role == "owner"
    assert not Invitation.objects.exists()


def test_capability_routes_do_not_open_unshared_things(owner: Account) -> None:
    gen = _queued(owner)
    client = Client()
    routes = all_routes()
    video = with_params(routes["api-video"], generation_id=gen.generation_id)
    assert client.get(video).status_code == 404  # not finished: nothing to show
    for name in ("shared", "shared-embed"):
        assert client.get(with_params(routes[name], token=gen.generation_id)).status_code == 404
    assert client.get(with_params(routes["team-gallery"], slug="alice")).status_code == 404


def _api_call(client: Client, route: str, key: str) -> Any:
    url = with_params(route, generation_id="x", video_id="x", batch_id="x", sequence_id="x")
    headers = {"Authorization": f"Bearer {key}"}
    response = client.get(url, headers=headers)
    if response.status_code == 405:
        response = client.post(url, "{}", content_type="application/json", headers=headers)
    return response


def test_a_revoked_key_gets_401_on_every_api_route(owner: Account) -> None:
    apikeys.api_key_revoke(key=owner.key)
    api_routes = {
        name: route
        for name, route in all_routes().items()
        if route.startswith(("/api/", "/v1/")) and name not in PUBLIC_API | SESSION_API
    }
    assert len(api_routes) >= 10
    client = Client()
    for name, route in api_routes.items():
        response = _api_call(client, route, owner.raw_key)
        assert response.status_code == 401, (name, response.status_code)
        assert "WWW-Authenticate" in response or name.startswith(("openai", "framepack"))
        # And a made-up key, and no key at all.
        assert _api_call(client, route, "vg_live_" + "a" * 38).status_code == 401, name
        assert client.get(
            with_params(route, generation_id="x", video_id="x", batch_id="x", sequence_id="x")
        ).status_code in (  # fmt: skip
            401,
            405,
        )


def test_a_dashboard_session_is_not_an_api_credential(owner: Account) -> None:
    # API routes are CSRF-exempt: that is only safe because a cookie never authenticates them.
    session = _login(owner)
    response = session.post(
        "/api/v1/generate", json.dumps({"prompt": "x"}), content_type="application/json"
    )
    assert response.status_code == 401


def test_every_dashboard_post_without_a_csrf_token_is_403(owner: Account) -> None:
    gen = _queued(owner)
    values = {
        "generation_id": gen.generation_id, "pk": owner.key.pk, "code": owner.team.code,
        "user_id": owner.user.pk, "token": "t", "kind": "video.mp4", "slug": "s", "uidb64": "x",
        "batch_id": "bat_x", "sequence_id": "seq_x",
    }  # fmt: skip
    routes = {
        name: route
        for name, route in all_routes().items()
        if not route.startswith(("/api/", "/v1/"))
    }
    routes["admin-login"] = "/admin/login/"
    assert {"login", "logout", "signup", "generate", "api-keys", "webhooks", "teams"} <= set(routes)
    for csrf_client in (_login(owner, csrf=True), Client(enforce_csrf_checks=True)):
        for name, route in routes.items():
            response = csrf_client.post(with_params(route, **values), {"name": "x"})
            assert response.status_code == 403, (name, response.status_code)
    gen.refresh_from_db()
    assert gen.status == Generation.Status.IN_QUEUE


XSS = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"


def _assert_escaped(html: str, where: str) -> None:
    assert "<script>alert(1)" not in html, where
    assert "<img src=x" not in html, where
    assert '"><img' not in html, where
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, where


def test_prompts_and_team_names_are_escaped_everywhere_they_are_shown(
    owner: Account, outsider: Account
) -> None:
    team = accounts.team_create(name=XSS, owner=owner.user)
    apikeys.api_key_create(team=team, user=owner.user, name=XSS, test=False)
    key, raw = apikeys.api_key_create(team=team, user=owner.user, name="k", test=False)
    in_team = Account(user=owner.user, team=team, key=key, raw_key=raw)
    gen = _queued(in_team, prompt=XSS)
    made = in_team.client().post("/api/v1/batches", {"model": "local", "prompt": XSS,
                                                     "duration": 1, "count": 2})  # fmt: skip
    batch_id = made.json()["batch_id"]
    Generation.objects.filter(pk=gen.pk).update(
        status=Generation.Status.COMPLETED, share_token="tok" + "x" * 30
    )
    library.team_gallery_set(team=team, public=True)
    team.refresh_from_db()
    _, invite = accounts.invitation_create(
        team=team, email="bob@example.com", role="member", invited_by=owner.user
    )
    session = _login(owner)
    session.post("/teams/switch", {"team": str(team.code)})
    pages = [
        "/generate", "/generations/", f"/generations/{gen.generation_id}", "/gallery",
        "/teams", f"/teams/{team.code}", "/keys", "/usage", "/webhooks",
        f"/s/{'tok' + 'x' * 30}", f"/g/{team.gallery_slug}", "/batches/",
        f"/batches/{batch_id}", "/queue",
    ]  # fmt: skip
    for page in pages:
        response = session.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        if page not in ("/keys", "/usage", "/webhooks"):
            _assert_escaped(html, page)
        else:
            assert "<script>alert(1)" not in html and "<img src=x" not in html, page
    shared = Client().get(f"/s/{'tok' + 'x' * 30}").content.decode()
    og = re.findall(r'<meta property="og:title" content="([^"]*)">', shared)
    assert og and "<" not in og[0] and "&lt;script&gt;" in og[0]
    invitation = Client().get(f"/invite/{invite}").content.decode()
    _assert_escaped(invitation, "invitation")
    # JSON carries the text as data, never as markup, and is not sniffed as HTML.
    status = Client().get(
        f"/api/v1/status/{gen.generation_id}", headers={"Authorization": f"Bearer {raw}"}
    )
    assert status["Content-Type"] == "application/json"
    assert status["X-Content-Type-Options"] == "nosniff"
    assert json.loads(status.content)["prompt"] == XSS


@pytest.fixture
def clean_cache() -> Any:
    cache.clear()
    yield
    cache.clear()


def _try(client: Client, email: str, password: str, address: str = "203.0.113.7") -> Any:
    return client.post(
        "/accounts/login/", {"username": email, "password": password}, REMOTE_ADDR=address
    )


def test_login_is_throttled_per_account_and_address(
    owner: Account, settings: Any, clean_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.VIDEOGEN_LOGIN_MAX_FAILURES = 3
    settings.VIDEOGEN_LOGIN_LOCKOUT_S = 600
    email = owner.user.email
    client = Client()
    for _ in range(3):
        assert _try(client, email, "wrong").status_code == 200
    locked = _try(client, email, "correct horse battery")  # even the right password
    assert locked.status_code == 429
    assert 595 <= int(locked["Retry-After"]) <= 600  # every 429 says when to come back
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert "10 minutes" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # The owner signing in from elsewhere is not locked out by the attacker.
    assert _try(Client(), email, "correct horse battery", "198.51.100.2").status_code == 302
    # Another account from the attacking address is not locked by the first.
    assert _try(Client(), "mallory@example.com", "wrong").status_code == 200
    # When the window has passed, the pair may try again.
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 601)
    cache.clear()  # locmem expiry follows the real clock; the stored window end is checked too
    assert _try(client, email, "correct horse battery").status_code == 302


def test_one_address_spraying_many_accounts_is_stopped(
    db: None, settings: Any, clean_cache: None
) -> None:
    settings.VIDEOGEN_LOGIN_MAX_FAILURES = 2
    client = Client()
    limit = 2 * throttle.ADDRESS_FACTOR
    for i in range(limit):
        assert _try(client, f"user{i}@example.com", "x").status_code == 200
    assert _try(client, "someone-new@example.com", "x").status_code == 429


def test_a_successful_login_resets_the_count(
    owner: Account, settings: Any, clean_cache: None
) -> None:
    settings.VIDEOGEN_LOGIN_MAX_FAILURES = 3
    email = owner.user.email
    for _ in range(2):
        _try(Client(), email, "wrong")
    assert _try(Client(), email, "correct horse battery").status_code == 302
    for _ in range(2):
        assert _try(Client(), email, "wrong").status_code == 200


def test_the_dashboards_live_status_takes_no_key(owner: Account) -> None:
    """/api/dashboard/live is the one route under /api/ that a session authenticates. It only
    reads (GET), and an API key, even a valid one, does not open it."""
    gen = _queued(owner)
    key = {"Authorization": f"Bearer {owner.raw_key}"}
    assert (
        Client().get("/api/dashboard/live", {"ids": gen.generation_id}, headers=key).status_code
        == 401
    )
    session = _login(owner)
    assert session.get("/api/dashboard/live", {"ids": gen.generation_id}).status_code == 200
    assert session.post("/api/dashboard/live", {"ids": gen.generation_id}).status_code == 405
    # So is the Generate form's live estimate.
    form = {"model": "local", "duration": "3"}
    assert Client().get("/api/dashboard/estimate", form, headers=key).status_code == 401
    assert session.get("/api/dashboard/estimate", form).status_code == 200
