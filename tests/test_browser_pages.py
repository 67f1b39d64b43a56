"""Every page of the dashboard in Chromium at a desktop and a phone size: nothing wider than
the screen (a phone must never scroll sideways), no console errors, no CSP violations, and no
serious or critical accessibility violation by axe-core (vendored in tests/vendor/axe-core from
npm's axe-core 4.14.1, MPL-2.0; injected through the DevTools protocol, so the pages' CSP
stays as strict as it is).

Screenshots of each page at both sizes go to $VIDEOGEN_SCREENSHOTS (see tests/test_browser.py)
for a person to look at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generations import tasks
from generations.core import (
    accounts,
    apikeys,
    batches,
    fairshare,
    library,
    sequences,
    submissions,
    webhooks,
)
from generations.core.validation import build_spec
from generations.models import Generation, Team, User
from tests.test_browser import ARGS, CHROMIUM, SCREENSHOTS

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

SIZES = {"desktop": (1366, 850), "phone": (390, 844)}
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => `${v.id} (${v.impact}): ${v.help}: ` +
         v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "));
}"""
PASSWORD = "a long pass phrase 9"


def _studio() -> dict[str, str]:
    """A user with a finished, shared video in a team with a public gallery, a key, a
    webhook and a teammate: something on every page. The paths to visit, by name."""
    user = accounts.user_create(email="page.checker@example.com", password=PASSWORD)
    personal = accounts.team_personal_get(user=user)
    team = accounts.team_create(name="Northern Lights Studio", owner=user)
    mate = accounts.user_create(email="a.rather.long.address.for.a.teammate@example.com",
                                password=PASSWORD)  # fmt: skip
    team.memberships.create(user=mate, role="member")
    for owner_team, prompt in ((personal, "Paper boat drifting on a calm pond at dawn"),
                               (team, "Aurora over a frozen lake, slow pan")):  # fmt: skip
        spec = build_spec({"model": "local", "prompt": prompt, "duration": 1,
                           "resolution": "480p", "seed": 3}, test_mode=False)  # fmt: skip
        gen, _ = submissions.generation_create(team=owner_team, user=user, spec=spec,
                                               source="dashboard")  # fmt: skip
        assert tasks.generation_run(gen.pk) == "completed"
    gen = Generation.objects.get(team=team)
    gen.refresh_from_db()
    library.generation_share(generation=gen)
    library.team_gallery_set(team=team, public=True)
    apikeys.api_key_create(team=team, user=user, name="render farm", test=False)
    webhooks.endpoint_add(team=team, url="https://hooks.example.com/videogen/finished")
    _, invite = accounts.invitation_create(
        team=team, email="newcomer@example.com", role="member", invited_by=user
    )
    # Takes in the personal team (the one the member works in): a finished batch of two
    # with its pick, and a paused queue with a generation waiting in it.
    specs = [build_spec({"model": "local", "prompt": "Lanterns over a harbour at dusk",
                         "duration": 1, "resolution": "480p", "seed": seed},
                        test_mode=False) for seed in (1, 2)]  # fmt: skip
    batch, takes, _ = batches.batch_create(team=personal, user=user, specs=specs,
                                           source="dashboard")  # fmt: skip
    for take in takes:
        assert tasks.generation_run(take.pk) == "completed"
    batches.batch_pick(batch=batch, generation=takes[1])
    fairshare.team_queue_pause(team=personal, paused=True)
    waiting = build_spec({"model": "local", "prompt": "A night train crossing a bridge",
                          "duration": 1, "resolution": "480p"}, test_mode=False)  # fmt: skip
    submissions.generation_create(team=personal, user=user, spec=waiting, source="dashboard")
    # A sequence of two shots in the personal team, stitched: its video and shot timeline.
    plan = sequences.plan({"model": "local", "resolution": "480p", "transition": "cut",
                           "shots": [{"prompt": "A harbour at dawn", "duration": 1},
                                     {"prompt": "Boats leave the harbour", "duration": 1}]},
                          test_mode=False)  # fmt: skip
    seq, shots, _ = sequences.sequence_create(team=personal, user=user, plan=plan,
                                              images=[None, None], source="dashboard")  # fmt: skip
    for one in shots:
        assert tasks.generation_run(one.pk) == "completed"
        tasks.sequence_advance(seq.pk)
    gen.refresh_from_db()
    team.refresh_from_db()
    return {
        "sequences": "/sequences/",
        "storyboard": "/sequences/new",
        "sequence": f"/sequences/{seq.sequence_id}",
        "batches": "/batches/",
        "batch": f"/batches/{batch.batch_id}",
        "queue": "/queue",
        "invitation": f"/invite/{invite}",
        "generate": "/generate",
        "history": "/generations/",
        "generation": f"/generations/{gen.generation_id}",
        "gallery": "/gallery",
        "usage": "/usage",
        "api-keys": "/keys",
        "webhooks": "/webhooks",
        "teams": "/teams",
        "team": f"/teams/{team.code}",
        "docs-in": "/docs",
        "verify-in": "/verify",
        "shared": f"/s/{gen.share_token}",
        "team-gallery": f"/g/{team.gallery_slug}",
    }


PUBLIC = ("/", "/accounts/login/", "/accounts/signup/", "/accounts/password_reset/", "/docs",
          "/api/docs", "/verify", "/no-such-page")  # fmt: skip
PUBLIC_OF_STUDIO = ("shared", "team-gallery", "invitation")


@pytest.fixture
def chromium() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _check(tab: Any, url: str, name: str, problems: list[str], console: list[str]) -> None:
    console.clear()
    tab.goto(url)
    tab.wait_for_load_state("networkidle")
    width = tab.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1]:
        wide = tab.evaluate(
            """() => [...document.querySelectorAll('body *')]
                 .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                 .filter(e => { for (let p = e.parentElement; p; p = p.parentElement) {
                     if (getComputedStyle(p).overflowX !== 'visible') return false; }
                   return true; })
                 .slice(0, 4).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                   + (typeof e.className === 'string' && e.className
                      ? '.' + e.className.split(' ')[0] : '')
                   + ' ' + Math.round(e.getBoundingClientRect().right))"""
        )  # fmt: skip
        problems.append(f"{name}: {width[0]} px wide on a {width[1]} px screen ({wide})")
    if "/api/docs" in url:  # Swagger UI draws the page after it loads the schema
        tab.locator(".swagger-ui .opblock").first.wait_for(state="visible")
    for violation in tab.evaluate(AXE_RUN):
        problems.append(f"{name}: axe: {violation}")
    for message in console:
        problems.append(f"{name}: console: {message}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"page-{name}.png"), full_page=True)


@pytest.mark.parametrize("size", SIZES)
def test_every_page_fits_the_screen_without_errors(
    chromium: Any, live_server: Any, transactional_db: None, size: str
) -> None:
    paths = _studio()
    width, height = SIZES[size]
    problems: list[str] = []
    console: list[str] = []

    def watch(tab: Any) -> None:
        def on_console(msg: Any) -> None:
            # A failed load is reported with its address by on_response instead.
            if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
                console.append(msg.text)

        def on_response(response: Any) -> None:
            if response.status >= 400:
                console.append(f"{response.status} for {response.url}")

        tab.on("console", on_console)
        tab.on("response", on_response)
        tab.on("pageerror", lambda exc: console.append(f"uncaught {exc}"))

    guest = chromium.new_context(viewport={"width": width, "height": height})
    guest.add_init_script(path=str(AXE))
    tab = guest.new_page()
    tab.set_default_timeout(15000)
    watch(tab)
    for path in PUBLIC:
        name = f"{size}-guest{path.rstrip('/').replace('/', '-') or '-home'}"
        # The 404 page is the one page whose console names an error: its own status.
        _check(tab, live_server.url + path, name, problems, console)
        if path == "/no-such-page":
            problems[:] = [p for p in problems if not p.startswith(f"{name}: console: 404 for")]
    for key in PUBLIC_OF_STUDIO:
        _check(tab, live_server.url + paths[key], f"{size}-guest-{key}", problems, console)
    _check(tab, live_server.url + paths["shared"] + "/embed", f"{size}-embed", problems, console)
    guest.close()

    member = chromium.new_context(viewport={"width": width, "height": height})
    member.add_init_script(path=str(AXE))
    tab = member.new_page()
    tab.set_default_timeout(15000)
    watch(tab)
    tab.goto(live_server.url + "/accounts/login/")
    tab.get_by_label("Email").fill("page.checker@example.com")
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url("**/generate")
    for key, path in paths.items():
        if key not in PUBLIC_OF_STUDIO:
            _check(tab, live_server.url + path, f"{size}-{key}", problems, console)
    member.close()
    assert User.objects.count() == 2 and Team.objects.count() == 3
    assert problems == [], "\n".join(problems)
