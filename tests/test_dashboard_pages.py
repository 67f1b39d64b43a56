"""Gallery, sharing, API keys, usage and docs pages."""

from __future__ import annotations

import json
import re
from html import unescape
from io import BytesIO
from typing import Any

import pytest
from django.test import Client
from PIL import Image

from generations import tasks
from generations.models import ApiKey, Generation
from tests.asgi_client import AsgiClient
from tests.conftest import Account, body_bytes
from tests.test_dashboard import form, logged_in


@pytest.fixture
def finished(owner: Account) -> Generation:
    logged_in(owner).post("/generate", form(prompt="aurora over a frozen lake"))
    gen = Generation.objects.get(team=owner.team)
    assert tasks.generation_run(gen.pk) == "completed"
    gen.refresh_from_db()
    return gen


def test_the_gallery_shows_finished_videos_with_hover_previews(
    owner: Account, finished: Generation
) -> None:
    html = logged_in(owner).get("/gallery").content.decode()
    assert f"/api/v1/thumbnail/{finished.generation_id}" in html
    assert f"/api/v1/preview/{finished.generation_id}" in html and 'class="preview"' in html


def test_sharing_makes_a_public_page_and_unsharing_revokes_it(
    owner: Account, finished: Generation
) -> None:
    client = logged_in(owner)
    client.post(f"/generations/{finished.generation_id}/share", {"share": "1"})
    finished.refresh_from_db()
    token = finished.share_token
    assert token and len(token) >= 22 and token != finished.generation_id

    public = Client().get(f"/s/{token}")  # logged out
    html = public.content.decode()
    assert public.status_code == 200
    assert re.search(rf'property="og:video" content="http://testserver/s/{token}/video.mp4"', html)
    assert re.search(rf'property="og:image" content="http://testserver/s/{token}/poster.jpg"', html)
    assert 'name="twitter:card" content="player"' in html
    assert finished.generation_id not in html  # the share page does not reveal the id
    video = Client().get(f"/s/{token}/video.mp4", headers={"Range": "bytes=0-99"})
    assert video.status_code == 206 and len(body_bytes(video)) == 100

    # The player alone, for any site to frame; every other page still refuses to be framed.
    embed = Client().get(f"/s/{token}/embed")
    assert embed.status_code == 200 and "X-Frame-Options" not in embed
    assert "frame-ancestors *" in embed["Content-Security-Policy"]
    assert "script-src" not in embed["Content-Security-Policy"]  # default-src 'none': no JS
    assert f'src="/s/{token}/video.mp4"' in embed.content.decode()
    assert f'content="http://testserver/s/{token}/embed"' in html  # twitter:player
    assert public["X-Frame-Options"] == "DENY"
    assert (
        f"/s/{token}/embed" in client.get(f"/generations/{finished.generation_id}").content.decode()
    )

    client.post(f"/generations/{finished.generation_id}/share", {"share": "0"})
    assert Client().get(f"/s/{token}").status_code == 404
    assert Client().get(f"/s/{token}/video.mp4").status_code == 404
    assert Client().get(f"/s/{token}/embed").status_code == 404


def test_a_shared_video_discloses_that_it_is_ai_made_to_people_and_machines(
    owner: Account, finished: Generation
) -> None:
    """The share page and the embedded player say "AI-generated with <model>" and link to the
    /verify check of its Content Credentials; both carry a schema.org VideoObject (JSON-LD)
    with the IPTC digital source type its C2PA manifest names, as data no CSP blocks."""
    logged_in(owner).post(f"/generations/{finished.generation_id}/share", {"share": "1"})
    finished.refresh_from_db()
    token = finished.share_token
    base = "http://testserver"
    assert finished.finished_at is not None
    for path in (f"/s/{token}", f"/s/{token}/embed"):
        response = Client().get(path)
        html = unescape(response.content.decode())
        assert "AI-generated with Local (procedural)" in html
        assert "Content Credentials" in html and re.search(r'href="[^"]*/verify"', html)
        found = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
        assert len(found) == 1, path
        data = json.loads(found[0])
        assert data["@context"] == "https://schema.org" and data["@type"] == "VideoObject"
        assert data["name"] == finished.prompt
        assert data["contentUrl"] == f"{base}/s/{token}/video.mp4"
        assert data["thumbnailUrl"] == f"{base}/s/{token}/poster.jpg"
        assert data["uploadDate"] == finished.finished_at.isoformat()
        assert data["digitalSourceType"] == (
            "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"  # the local engine
        )
        assert data["creditText"] == "AI-generated with Local (procedural)"
        # A JSON-LD block is data, not script: the policy still allows no inline script.
        policy = dict(
            d.strip().split(" ", 1) for d in response["Content-Security-Policy"].split(";")
        )
        assert "'unsafe-inline'" not in policy.get("script-src", policy["default-src"])
        assert finished.generation_id not in html


def test_a_prompt_cannot_close_the_json_ld_block(owner: Account) -> None:
    logged_in(owner).post("/generate", form(prompt="</script><script>alert(1)</script> & more"))
    gen = Generation.objects.get(team=owner.team)
    assert tasks.generation_run(gen.pk) == "completed"
    logged_in(owner).post(f"/generations/{gen.generation_id}/share", {"share": "1"})
    gen.refresh_from_db()
    html = Client().get(f"/s/{gen.share_token}").content.decode()
    block = html.split('<script type="application/ld+json">')[1].split("</script>")[0]
    assert "<" not in block and json.loads(block)["name"].startswith("</script><script>")


def test_a_team_can_publish_a_gallery_of_its_shared_videos(
    owner: Account, finished: Generation
) -> None:
    client = logged_in(owner)
    client.post(f"/generations/{finished.generation_id}/share", {"share": "1"})
    client.post("/gallery/publish", {"public": "1"})
    owner.team.refresh_from_db()
    slug = owner.team.gallery_slug
    assert slug and Client().get(f"/g/{slug}").status_code == 200
    assert "aurora over a frozen lake" in Client().get(f"/g/{slug}").content.decode()
    client.post("/gallery/publish", {"public": "0"})
    assert Client().get(f"/g/{slug}").status_code == 404


def test_deleting_removes_the_generation_and_its_files(
    owner: Account, finished: Generation
) -> None:
    storage, name = finished.video.storage, finished.video.name
    logged_in(owner).post(f"/generations/{finished.generation_id}/delete", {"confirm": "yes"})
    assert not Generation.objects.filter(pk=finished.pk).exists()
    assert not storage.exists(name)


def test_a_new_key_is_shown_once_and_listed_by_prefix_and_last_four(owner: Account) -> None:
    client = logged_in(owner)
    html = client.post("/keys", {"name": "ci", "kind": "test"}).content.decode()
    raw = re.search(r'id="new-key">(vg_test_\w+)<', html).group(1)  # type: ignore[union-attr]
    assert (
        AsgiClient()
        .get("/api/v1/user", headers={"Authorization": f"Bearer {raw}"})
        .json()["test_mode"]
    )
    listing = client.get("/keys").content.decode()
    assert raw not in listing and f"vg_test_...{raw[-4:]}" in listing


def test_revoking_and_regenerating_keys(owner: Account) -> None:
    client = logged_in(owner)
    auth = {"Authorization": f"Bearer {owner.raw_key}"}
    html = client.post(f"/keys/{owner.key.pk}/regenerate", {"confirm": "yes"}).content.decode()
    new_raw = re.search(r'id="new-key">(vg_live_\w+)<', html).group(1)  # type: ignore[union-attr]
    assert AsgiClient().get("/api/v1/user", headers=auth).status_code == 401
    new_auth = {"Authorization": f"Bearer {new_raw}"}
    assert AsgiClient().get("/api/v1/user", headers=new_auth).status_code == 200
    new_key = ApiKey.objects.get(revoked_at=None, team=owner.team)
    client.post(f"/keys/{new_key.pk}/revoke", {"confirm": "yes"})
    assert AsgiClient().get("/api/v1/user", headers=new_auth).status_code == 401


def test_keys_of_other_teams_cannot_be_touched(owner: Account, outsider: Account) -> None:
    assert (
        logged_in(outsider).post(f"/keys/{owner.key.pk}/revoke", {"confirm": "yes"}).status_code
        == 404
    )
    assert ApiKey.objects.get(pk=owner.key.pk).revoked_at is None


def test_usage_shows_n_of_m_per_member_a_chart_and_csv(
    owner: Account, finished: Generation
) -> None:
    client = logged_in(owner)
    html = client.get("/usage").content.decode()
    assert "1 of 100 generations this month" in html
    assert "alice@example.com" in html and "<svg" in html and "<rect" in html
    csv_text = client.get("/usage", {"format": "csv"}).content.decode()
    assert csv_text.splitlines()[0].startswith("month,member,charged")
    assert ",alice@example.com,1,1,1,0,1" in csv_text
    # Made in the browser: the "Dashboard" row (it was "dashboard" with an empty name).
    assert "\n,Dashboard,1" in csv_text.replace("\r\n", "\n") and "local,1" in csv_text
    assert "<td>—</td><td>Dashboard</td><td>1</td>" in html
    # The chart's axis has dates: the 1st of the month, each week, and the last day.
    month = finished.created_at.strftime("%b")
    for day in (1, 8, 15, 22):
        assert f'text-anchor="middle">{month} {day}</text>' in html


def test_the_docs_use_this_servers_address_and_offer_copy_for_ai(db: None) -> None:
    html = Client().get("/docs").content.decode()
    assert "http://testserver/api/v1/generate" in html
    assert "Copy for AI" in html and 'id="docs-markdown"' in html
    expected = ("curl -X POST", "import os, time, requests", "await fetch(", "/v1/generate-video",
                "videos.create_and_poll", "client.videos.createAndPoll")  # fmt: skip
    for snippet in expected:
        assert snippet in html


def test_the_docs_are_html_with_every_character_of_the_markdown(db: None) -> None:
    """The Markdown went raw into a <pre>, and the browser took `<key>` for a tag and dropped
    it. It is rendered now: headings, tables and code blocks, all text escaped; the Markdown
    itself, intact, is what "Copy for AI" copies; the interactive reference is linked."""
    html = Client().get("/docs").content.decode()
    article = html[html.index('<article class="docs">') :]
    assert "Authorization: Bearer &lt;key&gt;</code>" in article
    assert '<h3 id="post-api-v1-generate">POST /api/v1/generate</h3>' in article
    assert "<table>" in article and "<th>field</th>" in article
    assert '<pre><code class="language-sh">curl -X POST' in article
    assert "<key>" not in html  # nowhere unescaped: not in the article, not in the textarea
    markdown = re.search(r'<textarea id="docs-markdown"[^>]*>(.*?)</textarea>', html, re.S)
    assert markdown is not None
    assert "`Authorization: Bearer <key>`" in unescape(markdown[1])
    assert unescape(markdown[1]).startswith("# videogen API reference")
    assert 'href="/api/docs"' in html and 'href="/api/openapi.json"' in html


def test_favicon_ico_is_the_sites_icon(db: None) -> None:
    """Pages that name no icon (the embed page, Swagger UI, the admin) make browsers ask for
    /favicon.ico; it was a 404 in every browser console."""
    response = Client().get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    icon = Image.open(BytesIO(response.content))
    assert icon.format == "ICO" and (32, 32) in icon.info["sizes"]


def test_pages_say_what_a_person_needs_next(
    owner: Account, finished: Generation, settings: Any
) -> None:
    """The share page says the video is AI-made and links home; the detail page offers a
    copy button for the share link and "generate another like this"; a canceled job can be
    retried or remixed; the gallery says that only shared videos go public; the logged-out
    home shows the public videos and how to log in, not a table of unavailable models."""
    client = logged_in(owner)
    client.post(f"/generations/{finished.generation_id}/share", {"share": "1"})
    finished.refresh_from_db()
    shared = unescape(Client().get(f"/s/{finished.share_token}").content.decode())
    assert "AI-generated with Local (procedural)." in shared
    assert "Rendered by a procedural engine" in shared
    assert 'Made with <a href="/">videogen</a> on this server.' in shared

    detail = client.get(f"/generations/{finished.generation_id}").content.decode()
    assert '<button type="button" class="copy" data-copy="share-link" hidden>' in detail
    assert f'href="/generate?remix={finished.generation_id}">Generate another like this' in detail

    client.post("/generate", form(prompt="to be canceled"))
    canceled = Generation.objects.get(prompt="to be canceled")
    client.post(f"/generations/{canceled.generation_id}/cancel")
    page = client.get(f"/generations/{canceled.generation_id}").content.decode()
    assert f'action="/generations/{canceled.generation_id}/retry"' in page
    assert f'href="/generate?remix={canceled.generation_id}">Change it and try again' in page

    gallery = client.get("/gallery").content.decode()
    assert "a public page of the videos you share" in gallery

    home = Client().get("/").content.decode()
    assert "No public videos yet" in home and 'href="/accounts/login/"' in home
    assert "<table" not in home and "unavailable here" not in home
    client.post("/gallery/publish", {"public": "1"})
    home = Client().get("/").content.decode()
    assert f'href="/s/{finished.share_token}"' in home and "aurora over a frozen lake" in home
    settings.VIDEOGEN_SIGNUP = "closed"
    assert "Sign-up here is by invitation." in Client().get("/").content.decode()


def test_the_gallery_filters_by_model_sorts_and_labels_each_video(
    owner: Account, finished: Generation
) -> None:
    client = logged_in(owner)
    client.post(f"/generations/{finished.generation_id}/share", {"share": "1"})
    html = client.get("/gallery").content.decode()
    assert '<span class="tag">1 s</span><span class="tag">local</span>' in html
    assert '<span class="tag shared">Shared</span>' in html and 'class="play"' in html
    assert (
        "aurora over a frozen lake" in client.get("/gallery", {"model": "local"}).content.decode()
    )
    other = client.get("/gallery", {"model": "sora-2", "sort": "longest"}).content.decode()
    assert "aurora over a frozen lake" not in other and "No finished videos yet." in other
    assert '<option value="longest" selected>' in other
    assert client.get("/gallery", {"sort": "nonsense"}).status_code == 200
