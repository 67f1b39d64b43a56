"""The audio step: a hosted video without sound, asked for with `add_audio`, gets it from a
video-to-audio model on fal (Mirelo SFX v1.5, then MMAudio), polled in short steps like the
video, muxed into our own frames and stored once; when no audio route serves or all fail,
the procedural sound bed, said so.

The providers are the fake fal and Replicate servers (real HTTP on loopback). An operator
map sends `wan-25` to fal (or Replicate) at 480p for 1 s, whose file has no sound."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from django.test import TestCase

from generations.media.encode import probe
from generations.models import Generation
from generations.routing import prices
from generations.tasks import dispatch as polling
from tests.conftest import Account, body_bytes
from tests.fake_fal import MIRELO, MMAUDIO, SOUND_HZ, FakeFal
from tests.fake_replicate import FakeReplicate

FAL_MAP = """
[wan-25.fal]
text-to-video = "fal-ai/wan-25-preview/text-to-video"
typical_s = 1
[wan-25.fal.input]
prompt = "prompt"
"""
REPLICATE_MAP = """
[wan-25.replicate]
text-to-video = "wan-video/wan-2.5-t2v"
typical_s = 1
[wan-25.replicate.input]
prompt = "prompt"
"""
FAL_KEY = "fal-audio-key"
FINAL = Generation.FINAL_STATUSES


@pytest.fixture
def fal(settings: Any, tmp_path: Path, sync_tasks: None) -> Iterator[FakeFal]:
    with FakeFal(key=FAL_KEY) as fake:
        path = tmp_path / "providers.toml"
        path.write_text(FAL_MAP)
        settings.VIDEOGEN_PROVIDER_MAP = str(path)
        settings.FAL_KEY = FAL_KEY
        settings.FAL_QUEUE_URL = fake.url
        settings.VIDEOGEN_POLL_FIRST_S = 0.001
        settings.VIDEOGEN_POLL_MAX_S = 0.004
        yield fake


def drive(until: Any = None, timeout_s: float = 120) -> None:
    """Dispatch due polls (as the workers' dispatcher threads do) until every generation is
    final, or `until()` is true."""
    end = time.monotonic() + timeout_s
    while Generation.objects.exclude(status__in=FINAL).exists():
        if until is not None and until():
            return
        assert time.monotonic() < end, "generations still running"
        if not polling.dispatch_due():
            time.sleep(0.002)


def submit(account: Account, **body: Any) -> str:
    data = {"model": "wan-25", "prompt": "a storm over the harbour", "duration": 1,
            "resolution": "480p", "add_audio": True, **body}  # fmt: skip
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = account.client().post("/api/v1/generate", data)
    assert response.status_code == 200, response.content
    return str(response.json()["generation_id"])


def stored(account: Account, gen_id: str, tmp_path: Path) -> Path:
    out = tmp_path / f"{gen_id}.mp4"
    out.write_bytes(body_bytes(account.client().http.get(f"/api/v1/video/{gen_id}")))
    return out


def tone_share(path: Path, hz: float = SOUND_HZ) -> float:
    """How much of the soundtrack's energy lies within 20 Hz of `hz`."""
    with av.open(str(path)) as container:
        chunks = [f.to_ndarray()[0] for f in container.decode(audio=0)]  # planar: the left
        rate = container.streams.audio[0].rate
    samples = np.concatenate(chunks)
    spectrum = np.abs(np.fft.rfft(samples[: rate // 2 * 2])) ** 2
    freqs = np.fft.rfftfreq(rate // 2 * 2, 1 / rate)
    return float(spectrum[np.abs(freqs - hz) < 20].sum() / spectrum.sum())


def mean_blue(path: Path) -> float:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    return float(frame[..., 2].mean())


def test_a_hosted_video_without_sound_gets_mirelos(
    fal: FakeFal, owner: Account, tmp_path: Path
) -> None:
    gen_id = submit(owner, audio_prompt="thunder and rain")
    drive()
    status = owner.client().get(f"/api/v1/status/{gen_id}").json()
    assert status["status"] == "completed", status
    assert status["audio_source"] == "mirelo-sfx-v1.5" and "phase" not in status
    gen = Generation.objects.get(generation_id=gen_id)
    assert gen.audio_source == "mirelo-sfx-v1.5" and gen.has_audio
    # The sound is paid for on top of the video ($0.01 a second on fal), and settled with it.
    video = prices.hosted_cost(gen.spec(), gen.engine).usd
    assert gen.cost_usd == video + Decimal("0.0100")
    assert sum(e.usd for e in gen.usage.all()) == gen.cost_usd

    out = stored(owner, gen_id, tmp_path)
    info = probe(out)
    assert (info["width"], info["height"], info["fps"], info["frame_count"]) == (854, 480, 30, 30)
    assert info["audio_codec"] == "aac"
    assert tone_share(out) > 0.8  # Mirelo's soundtrack, not our sound bed
    assert mean_blue(out) < 200  # the video model's frames (Mirelo's are blue), made ours

    # What went to fal: the documented fields, the silent video inline, our prompt and seed.
    [sent] = [r for r in fal.api_requests("POST") if r.path == f"/{MIRELO}"]
    body = sent.json()
    assert set(body) == {"video_url", "text_prompt", "seed", "duration"}
    assert body["text_prompt"] == "thunder and rain" and body["seed"] == gen.seed
    assert body["duration"] == 1.0 and sent.headers["authorization"] == f"Key {FAL_KEY}"
    head, data = body["video_url"].split(",", 1)
    assert head == "data:video/mp4;base64" and base64.b64decode(data) == fal.video
    # The silent copy kept between steps is gone.
    assert not list((tmp_path / "media" / "videos").glob("*silent*"))


def test_the_prompt_stands_in_for_a_missing_audio_prompt(fal: FakeFal, owner: Account) -> None:
    submit(owner)
    drive()
    [sent] = [r for r in fal.api_requests("POST") if r.path == f"/{MIRELO}"]
    assert sent.json()["text_prompt"] == "a storm over the harbour"


def test_the_status_shows_the_audio_phase(fal: FakeFal, owner: Account) -> None:
    fal.queue_polls = 3  # the audio job waits a few polls at fal
    gen_id = submit(owner)

    def in_audio_phase() -> bool:
        return bool(owner.client().get(f"/api/v1/status/{gen_id}").json().get("phase"))

    drive(until=in_audio_phase)
    status = owner.client().get(f"/api/v1/status/{gen_id}").json()
    assert status["status"] == "in_progress" and status["phase"] == "audio"
    assert 90 <= status["progress"] <= 99  # never backwards from the video phase
    assert Generation.objects.get(generation_id=gen_id).engine == "fal"
    drive()
    status = owner.client().get(f"/api/v1/status/{gen_id}").json()
    assert status["status"] == "completed" and "phase" not in status


def test_a_failing_route_fails_over_to_the_next(
    fal: FakeFal, owner: Account, tmp_path: Path
) -> None:
    fal.audio_fail = {MIRELO}  # 503 every time: retried, then MMAudio
    gen_id = submit(owner)
    drive()
    gen = Generation.objects.get(generation_id=gen_id)
    assert gen.status == "completed" and gen.audio_source == "mmaudio-v2"
    assert len([r for r in fal.api_requests("POST") if r.path == f"/{MIRELO}"]) == 4
    [sent] = [r for r in fal.api_requests("POST") if r.path == f"/{MMAUDIO}"]
    assert sent.json()["prompt"] == "a storm over the harbour"
    assert tone_share(stored(owner, gen_id, tmp_path)) > 0.8


def test_when_every_route_fails_the_video_gets_the_procedural_bed(
    fal: FakeFal, owner: Account, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fal.audio_fail = {MIRELO, MMAUDIO}
    gen_id = submit(owner)
    drive()
    status = owner.client().get(f"/api/v1/status/{gen_id}").json()
    assert status["status"] == "completed" and status["audio_source"] == "procedural"
    out = stored(owner, gen_id, tmp_path)
    assert probe(out)["audio_codec"] == "aac" and tone_share(out) < 0.5
    assert "procedural sound bed" in caplog.text
    assert not list((tmp_path / "media" / "videos").glob("*silent*"))


def test_without_fal_key_the_sound_is_procedural(
    settings: Any, tmp_path: Path, sync_tasks: None, owner: Account
) -> None:
    with FakeReplicate() as fake:
        path = tmp_path / "providers.toml"
        path.write_text(REPLICATE_MAP)
        settings.VIDEOGEN_PROVIDER_MAP = str(path)
        settings.REPLICATE_API_TOKEN = fake.token
        settings.REPLICATE_API_URL = f"{fake.url}/v1"
        settings.FAL_KEY = ""
        settings.VIDEOGEN_POLL_FIRST_S = 0.001
        settings.VIDEOGEN_POLL_MAX_S = 0.004
        gen_id = submit(owner)
        drive()
    gen = Generation.objects.get(generation_id=gen_id)
    assert gen.status == "completed" and gen.engine == "replicate"
    assert gen.audio_source == "procedural" and gen.has_audio
    assert probe(stored(owner, gen_id, tmp_path))["audio_codec"] == "aac"


def test_without_add_audio_there_is_no_audio_step(fal: FakeFal, owner: Account) -> None:
    gen_id = submit(owner, add_audio=False)
    drive()
    gen = Generation.objects.get(generation_id=gen_id)
    assert gen.status == "completed" and gen.audio_source == "" and not gen.has_audio
    assert not [r for r in fal.api_requests("POST") if r.path == f"/{MIRELO}"]


def test_a_cancel_during_the_audio_phase_stops_it(fal: FakeFal, owner: Account) -> None:
    fal.queue_polls = 50  # the audio job (and the video job) wait long in fal's queue
    gen_id = submit(owner)

    def audio_submitted() -> bool:
        return any(r.path == f"/{MIRELO}" for r in fal.api_requests("POST"))

    drive(until=audio_submitted)
    assert owner.client().post(f"/api/v1/generations/{gen_id}/cancel", {}).status_code == 200
    drive()
    gen = Generation.objects.get(generation_id=gen_id)
    assert gen.status == "canceled" and not gen.video
    assert any(r.path.endswith("/cancel") for r in fal.api_requests("PUT"))


def test_our_own_engines_sound_is_procedural(owner: Account, sync_tasks: None) -> None:
    body = {"model": "local", "prompt": "rain on a tin roof", "duration": 1,
            "resolution": "480p", "add_audio": True}  # fmt: skip
    with TestCase.captureOnCommitCallbacks(execute=True):
        gen_id = owner.client().post("/api/v1/generate", body).json()["generation_id"]
    status = owner.client().get(f"/api/v1/status/{gen_id}").json()
    assert status["status"] == "completed" and status["audio_source"] == "procedural"
