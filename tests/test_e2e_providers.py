"""End to end on hosted providers: the real ASGI server and a real django-q2 cluster, with
fal and OpenAI played by the fake servers of tests/ on loopback. The polls are scheduled by
the dispatcher thread inside the worker processes, exactly as in production."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from generations.media.encode import probe
from tests.fake_fal import FakeFal
from tests.fake_openai import FakeOpenAI
from tests.fakeupstream import Faults
from tests.servers import provider_site

pytestmark = pytest.mark.e2e
FAL_KEY = "fal-e2e-key"
OPENAI_KEY = "sk-e2e-openai"
TIMEOUT_S = 90


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeFal, FakeOpenAI]]:
    # Some calls fail on the way, as they do in production.
    with (
        FakeFal(Faults(transient_rate=0.2, seed=11), key=FAL_KEY) as fal,
        FakeOpenAI(key=OPENAI_KEY, polls=3) as openai,
    ):
        yield fal, openai


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, fakes: tuple[FakeFal, FakeOpenAI]
) -> Iterator[dict[str, str]]:
    fal, openai = fakes
    # fal fails a fifth of its calls at random: now and then five in a row, which opens its
    # circuit breaker; a short cool-down keeps this test about retries, not about waiting.
    provider_env = {"FAL_KEY": FAL_KEY, "FAL_QUEUE_URL": fal.url, "OPENAI_API_KEY": OPENAI_KEY,
                    "OPENAI_BASE_URL": f"{openai.url}/v1",
                    "VIDEOGEN_BREAKER_COOLDOWN_S": "2"}  # fmt: skip
    data_dir = tmp_path_factory.mktemp("e2e-providers")
    with provider_site(data_dir, "p2e@example.com", provider_env) as site:
        yield site


def call(site: dict[str, str], method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {site['key']}"}
    return requests.request(method, site["base"] + path, headers=headers, timeout=30, **kwargs)


def wait_final(site: dict[str, str], gen_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_S
    seen: list[int] = []
    while time.monotonic() < deadline:
        body = call(site, "GET", f"/api/v1/status/{gen_id}").json()
        seen.append(int(body["progress"]))
        if body["status"] in ("completed", "failed", "canceled"):
            body["seen_progress"] = seen
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"{gen_id} not final; log:\n" + Path(site["log"]).read_text()[-5000:])


def test_models_become_available_with_provider_keys(site: dict[str, str]) -> None:
    models = {m["key"]: m for m in call(site, "GET", "/api/v1/models").json()["models"]}
    assert models["kling_25"]["available"] and models["kling_25"]["engine"] == "fal"
    assert models["sora-2"]["engine"] == "openai"
    assert models["veo_3"]["engine"] == "fal"  # no Gemini key: the next provider in the map
    assert not models["higgsfield_v1"]["available"]


def test_generations_run_on_fal_and_openai_through_real_workers(
    site: dict[str, str], fakes: tuple[FakeFal, FakeOpenAI], tmp_path: Path
) -> None:
    fal, openai = fakes
    fal.queue_polls = 2
    kling = call(site, "POST", "/api/v1/generate", json={
        "model": "kling_25", "prompt": "a lantern festival", "duration": 5,
        "resolution": "480p", "aspect_ratio": "16:9", "negative_prompt": "blur",
    }).json()  # fmt: skip
    sora = call(site, "POST", "/v1/videos", json={
        "model": "sora-2", "prompt": "a paper plane", "seconds": "4", "size": "1280x720",
    }).json()  # fmt: skip
    done = wait_final(site, kling["generation_id"])
    assert done["status"] == "completed", done
    assert any(0 < p < 100 for p in done["seen_progress"])  # progress while upstream works
    video = requests.get(str(done["video_url"]), timeout=30)  # public link, no key
    (tmp_path / "k.mp4").write_bytes(video.content)
    info = probe(tmp_path / "k.mp4")
    assert (info["width"], info["height"], info["fps"], info["frame_count"]) == (854, 480, 30, 150)
    submitted = [r for r in fal.api_requests("POST") if "kling-video" in r.path]
    assert submitted[-1].json() == {"prompt": "a lantern festival", "duration": "5",
                                    "aspect_ratio": "16:9", "negative_prompt": "blur"}  # fmt: skip

    sora_done = wait_final(site, sora["id"])
    assert sora_done["status"] == "completed", sora_done
    content = call(site, "GET", f"/v1/videos/{sora['id']}/content")
    assert content.status_code == 200 and content.headers["Content-Type"] == "video/mp4"
    (tmp_path / "s.mp4").write_bytes(content.content)
    assert probe(tmp_path / "s.mp4")["width"] == 1280
    assert openai.api_requests("POST")[-1].json()["size"] == "1280x720"


def test_cancel_on_a_real_worker_reaches_fal(
    site: dict[str, str], fakes: tuple[FakeFal, FakeOpenAI]
) -> None:
    fal, _ = fakes
    fal.never_finish = True
    try:
        gen = call(site, "POST", "/api/v1/generate", json={
            "model": "kling_25", "prompt": "a slow sunrise", "duration": 5, "resolution": "480p",
        }).json()  # fmt: skip
        deadline = time.monotonic() + 30
        # Wait until fal holds the job and we have polled it at least once.
        while not [j for j in fal.jobs.values() if j.input.get("prompt") == "a slow sunrise"
                   and j.polls > 0]:  # fmt: skip
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert call(site, "POST", f"/api/v1/generations/{gen['generation_id']}/cancel").ok
        final = wait_final(site, gen["generation_id"])
        assert final["status"] == "canceled"
        # Reached fal, whose request now says canceled (a failed PUT is asked again).
        cancels = [r for r in fal.api_requests("PUT") if r.path.endswith("/cancel")]
        assert cancels and any(job.canceled for job in fal.jobs.values())
    finally:
        fal.never_finish = False
