"""Provenance on every hosted provider (issue 18): a result from each fake provider (fal,
Replicate, Gemini, OpenAI: real HTTP servers on loopback) is stored signed, as trained
algorithmic media of its model, and marked; a result that arrived with the provider's own
C2PA manifest keeps it as an ingredient."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.test import TestCase

from generations.media import c2pa_manifest, watermark
from generations.models import Generation, Plan
from generations.tasks import dispatch as polling
from tests.conftest import Account
from tests.fake_fal import FakeFal
from tests.fake_gemini import FakeGemini
from tests.fake_openai import FakeOpenAI
from tests.fake_replicate import FakeReplicate
from tests.fakeupstream import make_mp4
from tests.ops_helpers import operator_c2pa_chain

# provider -> (model it serves first, request)
CASES = {
    "fal": ("kling_25", {"duration": 5, "resolution": "480p"}),
    "replicate": ("kling_25", {"duration": 5, "resolution": "480p"}),
    "gemini": ("veo-31", {"duration": 8, "resolution": "720p"}),
    "openai": ("sora-2", {"duration": 4, "resolution": "720p"}),
}


@pytest.fixture
def upstream(request: pytest.FixtureRequest, settings: Any, sync_tasks: None) -> Iterator[Any]:
    name = request.param
    settings.VIDEOGEN_POLL_FIRST_S = 0.001
    settings.VIDEOGEN_POLL_MAX_S = 0.004
    with ExitStack() as stack:
        if name == "fal":
            fake: Any = stack.enter_context(FakeFal(key="fal-k"))
            settings.FAL_KEY, settings.FAL_QUEUE_URL = "fal-k", fake.url
        elif name == "replicate":
            fake = stack.enter_context(FakeReplicate(token="r8-k"))
            settings.REPLICATE_API_TOKEN, settings.REPLICATE_API_URL = "r8-k", fake.url + "/v1"
        elif name == "gemini":
            fake = stack.enter_context(FakeGemini(key="gm-k", polls=1))
            settings.GEMINI_API_KEY, settings.GEMINI_API_URL = "gm-k", fake.url + "/v1beta"
        else:
            fake = stack.enter_context(FakeOpenAI(key="sk-k", polls=1))
            settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL = "sk-k", fake.url + "/v1"
        yield name, fake


def finish(gen_id: str, timeout_s: float = 120) -> Generation:
    end = time.monotonic() + timeout_s
    while not (gen := Generation.objects.get(generation_id=gen_id)).is_final:
        assert time.monotonic() < end, "still running"
        if not polling.dispatch_due():
            time.sleep(0.002)
    return gen


def submit(account: Account, model: str, **fields: Any) -> str:
    Plan.objects.update(premium_allowed=True)  # Veo 3.1 is premium
    body = {"model": model, "prompt": "a harbour at noon", **fields}
    with TestCase.captureOnCommitCallbacks(execute=True):
        answer = account.client().post("/api/v1/generate", body)
    assert answer.status_code == 200, answer.content
    return str(answer.json()["generation_id"])


@pytest.mark.parametrize("upstream", list(CASES), indirect=True)
def test_every_provider_result_is_signed_and_marked(upstream: Any, owner: Account) -> None:
    name, _ = upstream
    model, fields = CASES[name]
    gen = finish(submit(owner, model, **fields))
    assert gen.status == "completed" and gen.engine == name, gen.error_message
    report = c2pa_manifest.read(Path(gen.video.path))
    assert report.present and report.valid and not report.trusted
    assert report.digital_source_type == c2pa_manifest.TRAINED_ALGORITHMIC_MEDIA
    assert report.model == model
    found = watermark.detect(gen.video.path)
    assert found.found and found.payload == gen.mark


@pytest.mark.parametrize("upstream", ["fal"], indirect=True)
def test_a_providers_own_manifest_is_kept_as_an_ingredient(
    upstream: Any, owner: Account, tmp_path: Path
) -> None:
    _, fal = upstream
    cert, key, _ = operator_c2pa_chain(tmp_path / "provider-chain")
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "theirs.mp4"
        make_mp4(clip)
        claim = c2pa_manifest.Claim(
            generator="upstream-model/1.0", model="kling", title="their clip",
            digital_source_type=c2pa_manifest.TRAINED_ALGORITHMIC_MEDIA,
            created=datetime.now(UTC),
        )  # fmt: skip
        creds = c2pa_manifest.Credentials(cert.read_bytes(), key.read_bytes())
        c2pa_manifest.sign(clip, clip, claim, creds)
        fal.video = clip.read_bytes()
    gen = finish(submit(owner, "kling_25", duration=5, resolution="480p"))
    assert gen.status == "completed", gen.error_message
    report = c2pa_manifest.read(Path(gen.video.path))
    assert report.valid and report.ingredients == ["fal-original.mp4"]
