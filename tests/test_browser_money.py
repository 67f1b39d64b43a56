"""The Generate form's estimate in a real browser (Playwright driving Debian's Chromium):
credits, US dollars and time follow the model, duration, resolution and audio as they
change, without a submit. Skips (saying why) where Chromium or Playwright is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_browser import CHROMIUM, log_in, page, shot, wait_until  # noqa: F401

MAP = """
[wan-25.fal]
text-to-video = "fal-ai/wan-25-preview/text-to-video"
image-to-video = "fal-ai/wan-25-preview/image-to-video"
typical_s = 40
usd_per_s = { 480p = 0.30, 720p = 0.50 }
usd_per_s_audio = 0.45
[wan-25.fal.input]
prompt = "prompt"
"""

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def estimate_says(tab: Any, text: str) -> None:
    wait_until(tab, f"document.getElementById('estimate').textContent.includes({text!r})")


def test_the_estimate_follows_the_form_as_it_changes(
    page: Any,  # noqa: F811  (the fixture of tests/test_browser.py)
    live_server: Any,
    transactional_db: None,
    settings: Any,
    tmp_path: Path,
) -> None:
    path = tmp_path / "providers.toml"
    path.write_text(MAP)
    settings.VIDEOGEN_PROVIDER_MAP = str(path)
    settings.FAL_KEY = "fal-browser-key"
    log_in(page, live_server.url, "mona@example.com")
    estimate = page.locator("#estimate")
    assert estimate.text_content().startswith("Estimate:")  # rendered with the page
    page.get_by_label("Model").select_option("wan-25")
    estimate_says(page, "$2.50 at fal")  # 5 s at 720p, $0.50 a second
    assert "about 40 s" in estimate.text_content()  # never run here: the route's typical time
    page.get_by_label("Duration").fill("2")
    estimate_says(page, "$1.00 at fal")
    page.get_by_label("Resolution").select_option("480p")
    estimate_says(page, "$0.60 at fal")
    page.get_by_label("Add audio").check()
    estimate_says(page, "$0.90 at fal")
    shot(page, "generate-estimate")
    page.get_by_label("Model").select_option("local")
    estimate_says(page, "$0.00 at local")
