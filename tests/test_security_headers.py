"""Security headers on dashboard and API responses, `check --deploy`, HTTPS-only API."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from django.test import Client

from generations.web import csp
from tests.conftest import Account
from tests.ops_helpers import operator_c2pa_env

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["/", "/accounts/login/", "/docs", "/no-such-page"]
API = ["/api/v1/models", "/api/openapi.json", "/api/v1/no-such-thing"]


def _assert_common(response: Any, where: str) -> None:
    policy = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy, where
    assert response["X-Content-Type-Options"] == "nosniff", where
    assert response["Referrer-Policy"] == "same-origin", where
    assert response["X-Frame-Options"] == "DENY", where


def test_dashboard_and_api_responses_carry_the_security_headers(db: None) -> None:
    client = Client()
    for path in PAGES:
        response = client.get(path)
        _assert_common(response, path)
        policy = response["Content-Security-Policy"]
        assert (
            "script-src 'self' 'unsafe-hashes'" in policy
            and "'unsafe-inline'" not in (policy.split("script-src", 1)[1].split(";")[0])
        )
        assert "object-src 'none'" in policy and "base-uri 'self'" in policy
    for path in API:
        response = client.get(path)
        _assert_common(response, path)
        assert response["Content-Security-Policy"].startswith("default-src 'none'"), path


def test_every_inline_handler_in_the_templates_is_allowed_by_hash() -> None:
    handlers = set()
    for template in (ROOT / "templates").rglob("*.html"):
        handlers |= set(re.findall(r'\son[a-z]+="([^"]*)"', template.read_text()))
    assert handlers == set(csp.INLINE_HANDLERS)
    # No inline script: a script element either loads a file, or is a JSON-LD data block
    # (the share pages' VideoObject), which browsers never run and CSP does not govern.
    data_block = '<script type="application/ld+json">'
    assert not any(
        "<script>" in t.read_text()
        or "<script " in t.read_text().replace("<script src", "").replace(data_block, "")
        for t in (ROOT / "templates").rglob("*.html")
    )


def test_hsts_in_production_on_https_only(db: None, settings: Any) -> None:
    settings.SECURE_HSTS_SECONDS = 31_536_000
    response = Client().get("/accounts/login/", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in Client().get("/accounts/login/")


def _production(settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.VIDEOGEN_REQUIRE_HTTPS = True
    settings.SECURE_HSTS_SECONDS = 31_536_000


def test_in_production_the_api_refuses_plain_http_and_never_redirects(
    owner: Account, settings: Any
) -> None:
    _production(settings)
    client = Client()
    headers = {"Authorization": f"Bearer {owner.raw_key}"}
    for method, path in [("post", "/api/v1/generate"), ("get", "/api/v1/generations"),
                         ("post", "/v1/videos"), ("post", "/v1/generate-video")]:  # fmt: skip
        if method == "get":
            response = client.get(path, headers=headers)
        else:
            response = client.post(path, "{}", content_type="application/json", headers=headers)
        assert response.status_code == 403, path
        error = response.json()["error"]
        assert error["code"] == "https_required" and "https://" in error["message"]
        _assert_common(response, path)
    # Over HTTPS, directly or behind a proxy that says so, the API answers.
    assert client.get("/api/v1/generations", headers=headers, secure=True).status_code == 200
    proxied = client.get("/api/v1/generations", headers={**headers, "X-Forwarded-Proto": "https"})
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"].startswith("max-age=31536000")
    # The dashboard may redirect a GET to https.
    page = client.get("/accounts/login/")
    assert page.status_code == 301 and page["Location"].startswith("https://")


def _asgi(method: str, path: str, scheme: str, headers: list[tuple[bytes, bytes]]) -> Any:
    from videogen_site.asgi import application

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(b"host", b"127.0.0.1"), *headers],
             "scheme": scheme, "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5),
             "asgi": {"version": "3.0"}, "http_version": "1.1"}  # fmt: skip
    loop = threading.Thread(target=asyncio.run, args=(application(scope, receive, send),))
    loop.start()
    loop.join(30)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


def test_the_asgi_api_handler_refuses_plain_http_in_production(settings: Any) -> None:
    _production(settings)
    status, headers, body = _asgi("POST", "/api/v1/generate", "http", [])
    assert status == 403
    assert json.loads(body)["error"]["code"] == "https_required"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    status, headers, _ = _asgi("GET", "/api/openapi.json", "https", [])
    assert status == 200
    assert headers["strict-transport-security"].startswith("max-age=31536000")
    assert headers["x-content-type-options"] == "nosniff"
    status, _, _ = _asgi("GET", "/api/openapi.json", "http", [(b"x-forwarded-proto", b"https")])
    assert status == 200


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "videogen.example.com",
        "SECURE_SSL_REDIRECT": "1",
        "SECURE_COOKIES": "1",
        "SECURE_HSTS_SECONDS": "31536000",
        "VIDEOGEN_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "videogen_site.settings",
        # Production signs videos with its own certificate (else: videogen.W201).
        **operator_c2pa_env(tmp_path / "c2pa-operator"),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout, done.stdout + done.stderr
