"""The safety checker: prompt word lists, plug-in frame classifiers, opt-out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from generations import tasks
from generations.core import safety
from generations.models import Generation, UsageEvent
from tests import safety_classifiers
from tests.conftest import Account

BODY = {"model": "local", "prompt": "a quiet harbour", "duration": 1, "resolution": "480p"}


@pytest.fixture(autouse=True)
def _fresh_lists() -> None:
    safety._patterns.cache_clear()


def test_a_listed_phrase_is_refused_with_content_policy(owner: Account) -> None:
    response = owner.client().post("/api/v1/generate", {**BODY, "prompt": "A BEHEADING scene"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("content_policy", "prompt")
    assert "gore" in error["message"] and not Generation.objects.exists()


def test_matching_is_by_whole_words_after_normalisation(owner: Account) -> None:
    assert safety.screen_text("ｐｏｒｎ").blocked  # full-width letters fold to ASCII
    assert not safety.screen_text("a pornographer's biography").blocked  # not a whole word
    assert not safety.screen_text("a quiet harbour").blocked


def test_the_audio_prompt_is_screened_too(owner: Account) -> None:
    response = owner.client().post(
        "/api/v1/generate", {**BODY, "add_audio": True, "audio_prompt": "snuff film soundtrack"}
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "content_policy"


def test_turning_the_checker_off_skips_screening(owner: Account) -> None:
    response = owner.client().post(
        "/v1/generate-video",
        {**BODY, "prompt": "a beheading", "enable_safety_checker": False},
    )
    assert response.status_code == 200


def test_operators_can_replace_and_extend_the_lists(
    owner: Account, settings: Any, tmp_path: Path
) -> None:
    wordlist = tmp_path / "words.txt"
    wordlist.write_text("# our own policy\nbrand: competitor logo\nrival cola\n")
    settings.VIDEOGEN_SAFETY_WORDLIST = str(wordlist)
    settings.VIDEOGEN_SAFETY_EXTRA_WORDS = ["forbidden fruit"]
    assert safety.screen_text("the competitor logo on a bus") == safety.Verdict(
        True, "brand", "competitor logo"
    )
    assert safety.screen_text("rival cola").category == "custom"
    assert safety.screen_text("forbidden fruit").blocked
    assert not safety.screen_text("a beheading").blocked  # the defaults were replaced


def test_a_plugged_in_classifier_withholds_the_video_and_refunds(
    owner: Account, settings: Any
) -> None:
    settings.VIDEOGEN_SAFETY_IMAGE_CLASSIFIER = "tests.safety_classifiers.block_everything"
    gen_id = owner.client().post("/api/v1/generate", BODY).json()["generation_id"]
    gen = Generation.objects.get(generation_id=gen_id)
    assert tasks.generation_run(gen.pk) == "failed: content_policy"
    gen.refresh_from_db()
    assert (gen.status, gen.error_code, bool(gen.video)) == ("failed", "content_policy", False)
    assert safety_classifiers.seen[-1] == safety.FRAMES_TO_SCREEN
    assert UsageEvent.objects.filter(generation=gen, kind="refund").exists()


def test_frames_pass_when_the_classifier_allows_them(owner: Account, settings: Any) -> None:
    settings.VIDEOGEN_SAFETY_IMAGE_CLASSIFIER = "tests.safety_classifiers.allow_everything"
    gen_id = owner.client().post("/api/v1/generate", BODY).json()["generation_id"]
    assert tasks.generation_run(Generation.objects.get(generation_id=gen_id).pk) == "completed"


def test_without_a_classifier_frames_are_not_screened(owner: Account) -> None:
    assert safety.image_classifier() is None
    gen_id = owner.client().post("/api/v1/generate", BODY).json()["generation_id"]
    assert tasks.generation_run(Generation.objects.get(generation_id=gen_id).pk) == "completed"


def test_the_nudenet_adapter_is_found_under_its_documented_name_and_its_new_one(
    settings: Any,
) -> None:
    """The README once documented `generations.safety.nudenet_classifier`; the adapter now
    lives in generations/core/safety.py and an operator's setting must keep working."""
    for path in (
        "generations.safety.nudenet_classifier",
        "generations.core.safety.nudenet_classifier",
    ):
        settings.VIDEOGEN_SAFETY_IMAGE_CLASSIFIER = path
        assert safety.image_classifier() is safety.nudenet_classifier
