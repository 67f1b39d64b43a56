"""The dashboard in a real browser: Playwright driving Debian's Chromium.

Skips (saying why) only where Chromium or Playwright is not installed; CI installs both."""

from __future__ import annotations

import base64
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from generations import tasks
from generations.core import accounts, submissions
from generations.core.validation import build_spec
from generations.models import (
    Batch,
    Export,
    Generation,
    Membership,
    Sequence,
    Team,
    User,
    WebhookEndpoint,
)
from tests.test_provenance import foreign_video

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(os.environ.get("VIDEOGEN_SCREENSHOTS", "/tmp/videogen-screenshots"))

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture
def page(live_server: Any) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        tab = context.new_page()
        tab.set_default_timeout(15000)
        violations: list[str] = []
        tab.on("console", lambda msg: violations.append(msg.text)
               if "Content Security Policy" in msg.text else None)  # fmt: skip
        yield tab
        # Nothing the pages do is blocked by the site's own CSP.
        assert violations == [], violations
        context.close()
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def log_in(page: Any, base: str, email: str) -> None:
    """Create an account and log in through the login form."""
    accounts.user_create(email=email, password="a long pass phrase 9")
    page.goto(base + "/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("a long pass phrase 9")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/generate")


def wait_until(page: Any, expression: str, timeout_s: float = 15) -> None:
    """Poll a JavaScript expression until it is true. Playwright's `wait_for_function`
    compiles its predicate with eval inside the page, which the site's CSP forbids (as it
    should); `evaluate` goes through the DevTools protocol instead."""
    end = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < end, f"still false after {timeout_s} s: {expression}"
        time.sleep(0.05)


def generate_and_open(page: Any) -> None:
    """Submit the generate form; the new card appears in the page's queue strip (the page
    stays), and its link opens the generation's page."""
    before = page.locator(".queue-card").count()
    page.get_by_role("button", name="Generate").click()
    wait_until(page, f"document.querySelectorAll('.queue-card').length > {before}")
    page.locator(".queue-card a").first.click()
    page.wait_for_url("**/generations/gen_*")


@contextmanager
def _serving_page(html: str) -> Iterator[str]:
    """One static page on a loopback port of its own: the URL of a different origin."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_a_person_generates_a_video_and_watches_it_finish(
    page: Any, live_server: Any, transactional_db: None, settings: Any
) -> None:
    settings.FAL_KEY = "fal-test-key"  # ltxv-13b is served (through fal) and can be chosen
    log_in(page, live_server.url, "dana@example.com")

    # Choosing a model re-renders the allowed choices without a page load.
    page.get_by_label("Model").select_option("ltxv-13b")
    wait_until(page, "document.querySelectorAll('#id_resolution option').length === 1")
    assert page.get_by_label("Resolution").input_value() == "480p"
    page.get_by_label("Model").select_option("local")
    wait_until(page, "document.querySelectorAll('#id_resolution option').length === 4")

    page.get_by_label("Prompt", exact=True).fill("A lighthouse in a storm at night")
    page.get_by_label("Duration").fill("1")
    page.get_by_label("Resolution").select_option("480p")
    page.get_by_label("Seed", exact=True).fill("11")
    shot(page, "generate-form")
    generate_and_open(page)
    assert page.locator("progress").count() == 1  # queued: a progress bar, polling

    # The worker runs it (here, in the test's thread); the page notices by polling.
    gen = Generation.objects.get()
    assert tasks.generation_run(gen.pk) == "completed"
    video = page.locator("video")
    video.wait_for(state="visible")
    wait_until(page, "document.querySelector('video').readyState >= 2")
    assert page.locator("#status").get_attribute("hx-trigger") is None  # polling stopped
    assert page.get_by_role("link", name="Download").is_visible()
    shot(page, "generation-completed")


def test_errors_show_beside_their_field_in_the_browser(
    page: Any, live_server: Any, transactional_db: None
) -> None:
    log_in(page, live_server.url, "erin@example.com")
    page.get_by_label("Image URL").fill("http://127.0.0.1:9/private.png")
    page.get_by_label("Prompt", exact=True).fill("x")
    page.get_by_role("button", name="Generate").click()
    error = page.locator("p.error").first
    error.wait_for()
    assert "private or reserved address" in error.inner_text()
    assert not Generation.objects.exists()
    shot(page, "generate-error")


def test_a_shared_video_plays_for_someone_logged_out(
    page: Any, live_server: Any, transactional_db: None
) -> None:
    log_in(page, live_server.url, "fay@example.com")
    page.get_by_label("Prompt", exact=True).fill("Neon city at night, slow drift")
    page.get_by_label("Duration").fill("1")
    page.get_by_label("Resolution").select_option("480p")
    generate_and_open(page)
    assert tasks.generation_run(Generation.objects.get().pk) == "completed"
    page.locator("video").wait_for(state="visible")
    page.get_by_role("button", name="Share").click()
    link = page.get_by_role("link", name="/s/")
    shared_url = link.get_attribute("href")
    assert shared_url and shared_url.startswith("/s/")

    page.goto(live_server.url + "/gallery")
    page.locator(".tile a").first.hover()
    shot(page, "gallery")

    stranger = page.context.browser.new_context()
    other = stranger.new_page()
    other.goto(live_server.url + shared_url)
    wait_until(other, "document.querySelector('video').readyState >= 2")
    assert (
        other.locator('meta[property="og:video"]').get_attribute("content").endswith("/video.mp4")
    )
    shot(other, "shared-page")

    # Another site embeds the player (as X's player card does): it loads and plays, and
    # the browser refuses nothing (no frame-ancestors or X-Frame-Options block).
    embed_url = live_server.url + shared_url + "/embed"
    assert other.locator('meta[name="twitter:player"]').get_attribute("content") == embed_url
    refused: list[str] = []
    other.on("console", lambda msg: refused.append(msg.text) if "Refused" in msg.text else None)
    blog = f'<!doctype html><h1>My blog</h1><iframe src="{embed_url}" width="640" height="360">'
    with _serving_page(blog) as blog_url:  # another origin, on loopback like the live server
        other.goto(blog_url)
        end = time.monotonic() + 15
        while True:
            player = next((f for f in other.frames if f.url == embed_url), None)
            if player and player.evaluate("document.querySelector('video')?.readyState >= 2"):
                break
            assert time.monotonic() < end, f"the embedded player did not load: {refused}"
            time.sleep(0.1)
    assert not refused
    shot(other, "embedded-player")
    stranger.close()


def test_the_api_docs_render_under_the_content_security_policy(
    page: Any, live_server: Any, transactional_db: None
) -> None:
    # Swagger UI (served from static/vendor) fetched the schema and drew every surface; the
    # page fixture fails the test on any CSP violation in the console.
    page.goto(live_server.url + "/api/docs")
    page.locator(".swagger-ui .opblock-tag").first.wait_for(state="visible")
    assert page.locator(".opblock").count() > 10
    shot(page, "api-docs")


def test_the_team_and_webhooks_forms_work_without_javascript(
    page: Any, live_server: Any, transactional_db: None
) -> None:
    # Each form posts to its own URL; a browser with scripts off must get the same results.
    context = page.context.browser.new_context(java_script_enabled=False)
    tab = context.new_page()
    tab.set_default_timeout(15000)
    log_in(tab, live_server.url, "gus@example.com")
    tab.goto(live_server.url + "/teams")
    tab.get_by_label("Name").fill("Studio Plain")
    tab.get_by_role("button", name="Create team").click()
    team = Team.objects.get(name="Studio Plain")
    tab.wait_for_url(f"**/teams/{team.code}")
    mem = accounts.user_create(email="mem@example.com", password="a long pass phrase 9")
    Membership.objects.create(team=team, user=mem, role="member")
    tab.reload()

    tab.get_by_label("Email").fill("ivy@example.com")
    tab.get_by_role("button", name="Send invitation").click()
    assert "/invite/" in tab.locator("#invite-link").inner_text()
    tab.get_by_label("Role of mem@example.com").select_option("viewer")
    tab.get_by_role("button", name="Change").click()
    tab.wait_for_url(f"**/teams/{team.code}")
    assert Membership.objects.get(team=team, user=mem).role == "viewer"
    tab.get_by_role("button", name="Remove").click()
    # Without JavaScript the server asks first, on a page of its own with the dialog open.
    tab.get_by_role("heading", name="Remove mem@example.com from Studio Plain?").wait_for()
    assert Membership.objects.filter(team=team, user=mem).exists()
    tab.get_by_role("dialog").get_by_role("button", name="Remove").click()
    tab.wait_for_url(f"**/teams/{team.code}")
    assert not Membership.objects.filter(team=team, user=mem).exists()

    tab.goto(live_server.url + "/webhooks")
    tab.get_by_label("Endpoint URL").fill("https://hooks.example.com/plain")
    tab.get_by_role("button", name="Add endpoint").click()
    tab.wait_for_url("**/webhooks")
    assert WebhookEndpoint.objects.filter(team=team).count() == 1
    tab.get_by_role("button", name="Show secret").click()
    shown = tab.locator("#wh-secret").inner_text()
    tab.get_by_role("button", name="Rotate secret").click()
    tab.get_by_role("dialog").get_by_role("button", name="Rotate secret").click()
    rotated = tab.locator("#wh-secret").inner_text()
    assert shown.startswith("whsec_") and rotated.startswith("whsec_") and rotated != shown
    tab.get_by_role("button", name="Remove").click()
    tab.get_by_role("dialog").get_by_role("button", name="Remove").click()
    tab.wait_for_url("**/webhooks")
    assert not WebhookEndpoint.objects.filter(team=team).exists()
    shot(tab, "webhooks-no-js")

    # Generating without JavaScript: the form posts and the generation's page opens.
    tab.goto(live_server.url + "/generate")
    tab.get_by_label("Prompt", exact=True).fill("A plain form still works")
    tab.get_by_label("Duration").fill("1")
    tab.get_by_role("button", name="Generate").click()
    tab.wait_for_url("**/generations/gen_*")
    assert Generation.objects.get(prompt="A plain form still works").duration == 1
    context.close()


def test_the_docs_page_shows_every_character_and_copies_examples(
    page: Any, live_server: Any, transactional_db: None
) -> None:
    """`<key>` vanished from /docs (Markdown in a <pre>, parsed as a tag). Rendered, it reads
    as written; each code block copies itself, and "Copy for AI" copies the Markdown."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(live_server.url + "/docs")
    article = page.locator("article.docs")
    assert "Authorization: Bearer <key>" in article.inner_text()
    assert article.locator("table").count() >= 2
    blocks = article.locator("pre")
    wait_until(page, "document.querySelectorAll('article.docs .code button.copy').length > 0")
    assert article.locator("button.copy").count() == blocks.count() > 3
    article.locator("button.copy").first.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("curl -X POST") and copied == blocks.first.inner_text()
    page.get_by_role("button", name="Copy for AI").click()
    markdown = page.evaluate("navigator.clipboard.readText()")
    assert markdown.startswith("# videogen API reference") and "Bearer <key>" in markdown
    page.get_by_role("link", name="interactive reference (Swagger UI)").click()
    page.wait_for_url("**/api/docs")
    shot(page, "docs-swagger")


def test_the_generate_form_helps_without_getting_in_the_way(
    page: Any, live_server: Any, transactional_db: None, tmp_path: Path
) -> None:
    """Example prompts fill the prompt; the seed goes back to random in one click; the audio
    prompt shows only with audio on; a chosen image is previewed, rules out a URL, and can be
    cleared."""
    log_in(page, live_server.url, "hana@example.com")
    prompt = page.get_by_label("Prompt", exact=True)
    assert page.evaluate("document.activeElement.id") == "id_prompt"
    page.get_by_role("button", name="Aurora over a frozen lake, slow pan").click()
    assert prompt.input_value() == "Aurora over a frozen lake, slow pan"
    page.get_by_label("Seed", exact=True).fill("1234")
    page.get_by_role("button", name="Random").click()
    assert page.get_by_label("Seed", exact=True).input_value() == "-1"
    audio_prompt = page.get_by_label("Audio prompt")
    assert not audio_prompt.is_visible()
    page.get_by_label("Add audio").check()
    assert audio_prompt.is_visible()
    image = tmp_path / "red.png"
    PILImage.new("RGB", (64, 48), (200, 20, 20)).save(image)
    page.locator("#id_image").set_input_files(str(image))
    page.get_by_alt_text("The chosen image").wait_for(state="visible")
    assert page.get_by_label("Image URL").is_disabled()
    shot(page, "generate-helpers")
    page.get_by_role("button", name="Clear image").click()
    assert not page.get_by_alt_text("The chosen image").is_visible()
    assert page.get_by_label("Image URL").is_enabled()
    page.get_by_label("Duration").fill("2")
    generate_and_open(page)
    gen = Generation.objects.get()
    assert (gen.prompt, gen.duration, gen.add_audio, gen.mode) == (
        "Aurora over a frozen lake, slow pan",
        2,
        True,
        "text-to-video",
    )


def test_deleting_asks_first_in_a_dialog(
    page: Any, live_server: Any, transactional_db: None
) -> None:
    """With JavaScript, Delete opens the page's <dialog>: Cancel keeps the video, Delete
    deletes it and History comes back with its filters."""
    log_in(page, live_server.url, "ida@example.com")
    for prompt in ("a red kite", "a red boat"):
        page.get_by_label("Prompt", exact=True).fill(prompt)
        generate_and_open(page)
        page.goto(live_server.url + "/generate")
    page.goto(live_server.url + "/generations/?q=red")
    page.get_by_role("button", name="Delete a red boat").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    assert "Delete “a red boat”?" in dialog.inner_text()
    shot(page, "confirm-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    assert not dialog.is_visible() and Generation.objects.count() == 2
    page.get_by_role("button", name="Delete a red boat").click()
    with page.expect_navigation():
        dialog.get_by_role("button", name="Delete").click()
    assert page.url.endswith("/generations/?q=red")
    assert page.get_by_text("Deleted.").is_visible()
    assert list(Generation.objects.values_list("prompt", flat=True)) == ["a red kite"]


def test_the_queue_strip_takes_several_prompts_and_shows_them_live(
    page: Any, live_server: Any, transactional_db: None
) -> None:
    """Generate without leaving the page: each submit adds a card with live status (queue
    position, then progress, then done), the form keeps its values for the next take, and
    the tab's title follows the work; History and the Recent list update live too."""
    log_in(page, live_server.url, "jun@example.com")
    prompt = page.get_by_label("Prompt", exact=True)
    for text in ("a red kite over the dunes", "a blue kite over the sea"):
        prompt.fill(text)
        page.get_by_label("Duration").fill("1")
        page.get_by_label("Resolution").select_option("480p")
        page.get_by_role("button", name="Generate").click()
        page.locator(".queue-card", has_text=text).wait_for()
    assert page.url.endswith("/generate") and prompt.input_value() == "a blue kite over the sea"
    first, second = Generation.objects.order_by("created_at")
    card = page.locator(".queue-card", has_text="a blue kite")
    # Queued behind the first: its position, live.
    wait_until(page, "[...document.querySelectorAll('.queue-card')].some("
                     "c => c.textContent.includes('1 ahead'))")  # fmt: skip
    history = page.context.new_page()
    history.goto(live_server.url + "/generations/")
    assert tasks.generation_run(first.pk) == "completed"
    assert tasks.generation_run(second.pk) == "completed"
    wait_until(page, "document.querySelectorAll('.queue-card .badge.completed').length === 2")
    assert "Completed" in card.inner_text()
    wait_until(page, "document.title.startsWith('✓')")
    wait_until(history, "document.querySelectorAll('.history .badge.completed').length === 2")
    shot(page, "queue-strip")
    history.close()


def test_remix_keeps_the_image_teams_switch_and_unserved_models_cannot_be_chosen(
    page: Any, live_server: Any, transactional_db: None, tmp_path: Path
) -> None:
    """Bugs a new user hit, in the browser: remixing a video made from an upload (it failed
    on the shortened data: URL), your own generation after creating a team (a 404), and
    models this server does not serve (listed first, and submittable)."""
    log_in(page, live_server.url, "kai@example.com")
    picker = page.get_by_label("Model")
    assert picker.locator("option").first.get_attribute("value") == "local"
    assert picker.locator('option[value="sora-2"]').is_disabled()

    image = tmp_path / "green.png"
    PILImage.new("RGB", (96, 64), (20, 180, 60)).save(image)
    page.get_by_label("Prompt", exact=True).fill("A green field from a photo")
    page.locator("#id_image").set_input_files(str(image))
    page.get_by_label("Duration").fill("1")
    generate_and_open(page)
    source = Generation.objects.get()
    assert tasks.generation_run(source.pk) == "completed"
    page.get_by_role("link", name="Generate another like this").click()
    page.wait_for_url("**/generate?remix=*")
    assert page.get_by_label("Image URL").input_value() == ""
    page.get_by_alt_text("The starting image of “A green field from a photo”").wait_for()
    assert page.get_by_label("Keep it").is_checked()
    shot(page, "remix-keeps-image")
    page.get_by_label("Prompt", exact=True).fill("The same field at night")
    generate_and_open(page)
    remix = Generation.objects.get(prompt="The same field at night")
    assert remix.mode == "image-to-video" and remix.remixed_from == source
    with source.input_image.open("rb") as a, remix.input_image.open("rb") as b:
        assert a.read() == b.read()

    # A new team: the header says where you are; your earlier video still opens.
    page.goto(live_server.url + "/teams")
    page.get_by_label("Name").fill("Night Shift")
    page.get_by_role("button", name="Create team").click()
    page.get_by_text("Created Night Shift. You now work in it").wait_for()
    assert page.locator("#team-switch option:checked").inner_text() == "Night Shift"
    page.goto(live_server.url + f"/generations/{source.generation_id}")
    page.get_by_text("Switched to kai's team").wait_for()
    assert page.locator("#team-switch option:checked").inner_text() == "kai's team"
    # The switcher moves back (it submits on change).
    with page.expect_navigation():
        page.locator("#team-switch").select_option(label="Night Shift")
    assert page.locator("#team-switch option:checked").inner_text() == "Night Shift"


def test_takes_make_a_batch_that_plays_in_sync_and_keeps_its_pick(
    page: Any, live_server: Any, transactional_db: None
) -> None:
    """Four takes of one prompt: the batch page shows each as it finishes; one Play button
    starts all four together and one scrubber seeks them all; the pick survives a reload."""
    log_in(page, live_server.url, "lena@example.com")
    page.get_by_label("Prompt", exact=True).fill("A paper lantern rising over a lake")
    page.get_by_label("Duration").fill("1")
    page.get_by_label("Resolution").select_option("480p")
    page.get_by_text("Takes: variations").click()
    page.get_by_label("Takes", exact=True).fill("4")
    shot(page, "generate-takes")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url("**/batches/bat_*")
    batch = Batch.objects.get()
    items = list(batch.items.order_by("pk"))
    assert len(items) == 4 and len({g.seed for g in items}) == 4
    assert page.locator(".take").count() == 4 and page.locator(".take video").count() == 0
    for gen in items:
        assert tasks.generation_run(gen.pk) == "completed"
    # The live poll marks each take done; batch.js gives it its video.
    wait_until(page, "[...document.querySelectorAll('.take video')].filter("
                     "v => v.readyState >= 2).length === 4", timeout_s=40)  # fmt: skip
    assert page.locator(".take .badge.completed").count() == 4

    page.get_by_role("button", name="Play all").click()
    wait_until(page, "[...document.querySelectorAll('.take video')].every("
                     "v => !v.paused && v.currentTime > 0.05)")  # fmt: skip
    for _ in range(3):
        spread = page.evaluate(SPREAD)
        assert spread <= 0.25, spread
        time.sleep(0.3)
    shot(page, "batch-playing")

    page.get_by_role("button", name="Pause all").click()
    wait_until(page, "[...document.querySelectorAll('.take video')].every(v => v.paused)")
    page.evaluate("""() => { const s = document.querySelector('[data-sync-scrub]');
                      s.value = '0.5'; s.dispatchEvent(new Event('input')); }""")  # fmt: skip
    wait_until(page, "[...document.querySelectorAll('.take video')].every("
                     "v => !v.seeking && Math.abs(v.currentTime - 0.5) < 0.05)")  # fmt: skip

    with page.expect_navigation():
        page.get_by_role("button", name="Mark as pick: take 2").click()
    picked = page.locator(".take.picked")
    assert picked.count() == 1 and picked.get_attribute("data-take") == items[1].generation_id
    page.reload()
    assert page.locator(".take.picked").get_attribute("data-take") == items[1].generation_id
    assert page.locator(".take.picked .badge.pick").inner_text() == "Pick"
    batch.refresh_from_db()
    assert batch.pick == items[1]
    shot(page, "batch-picked")


# The largest distance between the batch's videos' positions, across the loop (1 s clips
# loop: 0.98 and 0.02 are 0.04 apart).
SPREAD = """() => {
  const videos = [...document.querySelectorAll('.take video')];
  let worst = 0;
  for (const a of videos) for (const b of videos) {
    const d = Math.abs(a.currentTime - b.currentTime);
    worst = Math.max(worst, Math.min(d, Math.max(a.duration, b.duration) - d));
  }
  return worst;
}"""


def test_a_storyboard_is_edited_in_the_page_and_renders_its_shots_in_order(
    page: Any, live_server: Any, transactional_db: None
) -> None:
    """Two shot cards filled, a third added and moved up, the first removed, a transition
    picked: Render makes the sequence, whose page lists the shots in the edited order."""
    log_in(page, live_server.url, "sam@example.com")
    page.get_by_role("link", name="Sequences").click()
    page.wait_for_url("**/sequences/")
    page.get_by_role("link", name="New sequence").click()
    page.wait_for_url("**/sequences/new")
    page.get_by_label("Title").fill("The lighthouse keeper")
    page.get_by_label("Resolution").select_option("480p")
    cards = page.locator(".shot-card")
    assert cards.count() == 2
    prompts = ("A lighthouse at dusk", "The keeper climbs the stairs", "The lamp turns on")
    for index, prompt in enumerate(prompts[:2]):
        cards.nth(index).get_by_label("Prompt").fill(prompt)
        cards.nth(index).get_by_label("Duration (s)").fill("2")

    # Continue: the shots after the first start on the frame before, so have no image.
    page.get_by_label("Continue from the last frame").check()
    assert cards.nth(0).get_by_label("Image URL").is_visible()
    assert not cards.nth(1).get_by_label("Image URL").is_visible()
    assert cards.nth(1).locator(".shot-follows").is_visible()

    page.get_by_role("button", name="Add a shot").click()
    assert cards.count() == 3
    third = cards.nth(2)
    assert third.get_by_label("Prompt").input_value() == ""
    assert not third.get_by_label("Image URL").is_visible()
    third.get_by_label("Prompt").fill(prompts[2])
    third.get_by_label("Duration (s)").fill("2")

    page.get_by_role("button", name="Move up: shot 3").click()
    order = [cards.nth(i).get_by_label("Prompt").input_value() for i in range(3)]
    assert order == [prompts[0], prompts[2], prompts[1]]
    # Renumbered: the fields post in the order shown.
    assert cards.nth(1).locator("textarea").get_attribute("name") == "shots-1-prompt"
    assert cards.nth(1).locator(".shot-title").inner_text() == "Shot 2"
    assert page.get_by_role("button", name="Move up: shot 1").is_disabled()

    page.get_by_role("button", name="Remove: shot 1").click()
    assert cards.count() == 2
    # At the smallest sequence, nothing more can be removed.
    assert page.get_by_role("button", name="Remove: shot 1").is_disabled()
    page.get_by_label("Crossfade").check()
    assert cards.nth(1).get_by_label("Image URL").is_visible()  # images again
    assert page.locator("[data-total]").inner_text() == "2 shots, 3.5 s in all"
    shot(page, "storyboard-edited")

    page.get_by_role("button", name="Render").click()
    page.wait_for_url("**/sequences/seq_*")
    seq = Sequence.objects.get()
    assert seq.transition == "crossfade" and seq.title == "The lighthouse keeper"
    made = [g.prompt for g in seq.shots.order_by("shot_index")]
    assert made == [prompts[2], prompts[1]]
    listed = page.locator(".shot-row a").all_inner_texts()
    assert listed == [prompts[2], prompts[1]]
    assert page.locator("#status progress").count() == 1  # live until final
    shot(page, "sequence-rendering")

    # The workers render each shot and stitch them (here, in the test's thread); the page
    # notices by polling, and shows the video with a marker per shot under it.
    for gen in seq.shots.order_by("shot_index"):
        assert tasks.generation_run(gen.pk) == "completed"
        tasks.sequence_advance(seq.pk)
    seq.refresh_from_db()
    assert seq.status == "completed" and len(seq.markers) == 2, seq.error_message
    wait_until(page, "document.querySelector('video[data-sequence-video]')?.readyState >= 2",
               timeout_s=30)  # fmt: skip
    timeline = page.locator("[data-timeline]")
    assert timeline.is_visible() and timeline.locator(".segment").count() == 2
    assert page.locator("#status").get_attribute("hx-trigger") is None  # polling stopped
    second = timeline.locator(".segment").nth(1)
    page.get_by_role("button", name=re.compile(r"^Shot 2 at ")).click()
    wait_until(page, f"Math.abs(document.querySelector('video').currentTime - "
                     f"{seq.markers[1]}) < 0.1")  # fmt: skip
    assert "current" in (second.get_attribute("class") or "")
    assert "current" in (page.locator(".shot-row").nth(1).get_attribute("class") or "")
    # Left to right, as long as each shot: the second starts where its marker says.
    box, whole = second.bounding_box(), timeline.bounding_box()
    assert box is not None and whole is not None
    assert abs((box["x"] - whole["x"]) / whole["width"] - seq.markers[1] / seq.duration) < 0.02
    page.evaluate("document.querySelector('video').play()")
    wait_until(page, "!document.querySelector('video').paused")
    page.get_by_role("button", name=re.compile(r"^Shot 1 at ")).click()
    wait_until(page, "document.querySelector('.segment').classList.contains('current')")
    shot(page, "sequence-completed")

    # An export: "preparing…" while it is made, then it downloads.
    with page.expect_download(timeout=60000) as download:
        page.get_by_role("link", name="GIF").click()
        wait_until(page, "document.querySelector('[data-export-state]').textContent"
                         ".includes('preparing')")  # fmt: skip
        end = time.monotonic() + 15
        while not Export.objects.filter(sequence=seq).exists():
            assert time.monotonic() < end, "the GIF was never asked for"
            time.sleep(0.05)
        assert tasks.export_make(Export.objects.get(sequence=seq).pk) == "ready"
    assert download.value.suggested_filename == f"{seq.sequence_id}.gif"


# A file dropped on an element, as a person drags one from their desktop: a DataTransfer
# holding it, in a drop event (Playwright's set_input_files covers choosing one instead).
DROP = """([selector, b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, {type: "video/mp4"}));
  const target = document.querySelector(selector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    const init = {dataTransfer: data, bubbles: true, cancelable: true};
    target.dispatchEvent(new DragEvent(type, init));
  }
}"""


def test_the_verify_page_recognises_our_video_and_not_a_foreign_one(
    page: Any, live_server: Any, transactional_db: None, tmp_path: Path
) -> None:
    log_in(page, live_server.url, "vera@example.com")
    user = User.objects.get(email="vera@example.com")
    fields = {"model": "local", "prompt": "A paper lantern drifting on a river", "duration": 1,
              "resolution": "480p", "seed": 4}  # fmt: skip
    spec = build_spec(fields, test_mode=False)
    gen, _ = submissions.generation_create(team=accounts.team_personal_get(user=user), user=user,
                                           spec=spec, source="dashboard")  # fmt: skip
    assert tasks.generation_run(gen.pk) == "completed"
    gen.refresh_from_db()

    # The header links the page; one of our videos dropped on the zone is recognised, and
    # its maker (logged in) gets a link to it.
    page.get_by_role("link", name="Verify", exact=True).click()
    page.wait_for_url("**/verify")
    ours = base64.b64encode(Path(gen.video.path).read_bytes()).decode()
    page.evaluate(DROP, ["#drop-zone", ours, "lantern.mp4"])
    page.get_by_role("heading", name="Made with videogen").wait_for(timeout=60000)
    result = page.locator("#verify-result").inner_text()
    assert "C2PA Content Credentials present and intact" in result
    assert "AI-generated: algorithmic (procedural) media" in result
    assert "Invisible watermark found: this video was made on this server." in result
    link = page.get_by_role("link", name="Open it in your team's library")
    assert link.get_attribute("href") == f"/generations/{gen.generation_id}"
    assert page.locator("#verify-progress").is_hidden()
    shot(page, "verify-ours")

    # Someone logged out chooses a video made elsewhere: nothing of ours in it.
    stranger = page.context.browser.new_context(viewport={"width": 390, "height": 844})
    other = stranger.new_page()
    other.set_default_timeout(15000)
    other.goto(live_server.url + "/verify")
    other.set_input_files("#verify-file", str(foreign_video(tmp_path / "holiday.mp4")))
    heading = "No videogen watermark or Content Credentials found"
    other.get_by_role("heading", name=heading).wait_for(timeout=60000)
    assert other.get_by_role("link", name="Open it in your team's library").count() == 0
    shot(other, "verify-foreign-phone")

    # And what is not a video is refused, in words.
    notes = tmp_path / "notes.mp4"
    notes.write_bytes(b"not a video at all" * 100)
    other.set_input_files("#verify-file", str(notes))
    other.locator("#verify-result .error").wait_for()
    assert "not a video this server can read" in other.locator("#verify-result").inner_text()
    stranger.close()
