"""The dashboard's /verify page and its check, `/verify/check` (CONTRACT 8): anyone may check
a video; a member of the team that made it gets a link to it, nobody else does."""

from __future__ import annotations

from html import unescape
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from tests.asgi_client import AsgiClient
from tests.conftest import Account
from tests.test_dashboard import logged_in
from tests.test_provenance import foreign_video, render, upload


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    # Checks are counted per address (every test client is 127.0.0.1) for a minute.
    cache.clear()


def check(client: Client, path: Path, **headers: str) -> Any:
    with path.open("rb") as fh:
        return client.post("/verify/check", {"file": fh}, headers=headers)


def text(response: Any) -> str:
    return " ".join(unescape(response.content.decode()).split())


def test_the_page_is_open_to_anyone_and_linked_from_every_header(db: None) -> None:
    page = Client().get("/verify")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'action="/verify/check"' in html and 'enctype="multipart/form-data"' in html
    assert 'name="csrfmiddlewaretoken"' in html and 'type="file" name="file"' in html
    assert "js/verify.js" in html and "<script>" not in html  # no inline script (CSP)
    assert '<a href="/verify">Verify</a>' in Client().get("/").content.decode()


def test_our_video_is_recognised_and_linked_only_for_its_team(
    owner: Account, outsider: Account, sync_tasks: None, tmp_path: Path
) -> None:
    gen = render(owner, prompt="a paper lantern on a river")
    path = Path(gen.video.path)
    link = f'<a href="/generations/{gen.generation_id}">'

    mine = check(logged_in(owner), path)
    words = text(mine)
    assert mine.status_code == 200 and link in mine.content.decode()
    assert "Made with videogen" in words
    assert ("C2PA Content Credentials present and intact, signed by a development certificate "
            "no one else trusts.") in words  # fmt: skip
    assert "Generator: videogen/" in words
    assert "AI-generated: algorithmic (procedural) media" in words
    assert "Model: Local (procedural)" in words
    assert "Invisible watermark found: this video was made on this server." in words

    for client in (logged_in(outsider), Client()):
        answer = check(client, path)
        assert "this video was made on this server" in text(answer)
        assert gen.generation_id not in answer.content.decode()

    # The page's script asks for the answer alone (a fragment it swaps in).
    fragment = check(logged_in(owner), path, HX_Request="true").content.decode()
    assert fragment.lstrip().startswith('<section id="verify-result"') and "<html" not in fragment

    data = bytearray(path.read_bytes())
    mdat = data.index(b"mdat")
    data[mdat + (len(data) - mdat) // 2] ^= 0x01
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    assert "the manifest has been altered" in text(check(Client(), tampered))


def test_a_foreign_video_is_not_recognised(db: None, tmp_path: Path) -> None:
    answer = check(Client(), foreign_video(tmp_path / "theirs.mp4"))
    words = text(answer)
    assert answer.status_code == 200
    assert "No videogen watermark or Content Credentials found" in words
    assert "Made with videogen" not in words


def test_bad_uploads_are_refused_in_plain_words(db: None, settings: Any, tmp_path: Path) -> None:
    client = Client()
    nothing = client.post("/verify/check", {})
    assert nothing.status_code == 400 and "Choose a video file to check." in text(nothing)
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"not a video at all" * 100)
    answer = check(client, notes)
    assert answer.status_code == 400 and "not a video this server can read" in text(answer)
    settings.VIDEOGEN_VERIFY_MAX_BYTES = 50_000
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * 2_000_000)
    answer = check(client, big)
    assert answer.status_code == 413 and "This file is too large" in text(answer)


def test_a_body_past_the_cap_is_refused_unread(db: None, settings: Any) -> None:
    """Through the production ASGI application, as the API's upload is (videogen_site/asgi.py):
    Django's handler would otherwise spool any size to disk before the view could refuse it."""
    settings.VIDEOGEN_VERIFY_MAX_BYTES = 1000
    answer = AsgiClient().post("/verify/check", {"file": b"\0" * 3_000_000})
    assert answer.status_code == 413


def test_checks_are_rate_limited_per_address_with_the_api(
    transactional_db: None, settings: Any, tmp_path: Path
) -> None:
    settings.VIDEOGEN_VERIFY_PER_MINUTE = 2
    clip = foreign_video(tmp_path / "clip.mp4", seconds=1)
    # One count per address for the page and the API together.
    codes = [check(Client(), clip).status_code, upload(None, clip).status_code,
             check(Client(), clip).status_code]  # fmt: skip
    assert codes == [200, 200, 429]
    assert check(Client(REMOTE_ADDR="203.0.113.7"), clip).status_code == 200  # another address
    refused = check(Client(), clip)
    assert "Too many checks from your address. Retry in" in text(refused)
    assert int(refused["Retry-After"]) > 0


def test_the_check_needs_the_pages_csrf_token(db: None, tmp_path: Path) -> None:
    clip = foreign_video(tmp_path / "clip.mp4", seconds=1)
    assert check(Client(enforce_csrf_checks=True), clip).status_code == 403
