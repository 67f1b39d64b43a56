"""The OpenAI (Sora 2) engine against the fake videos API over real HTTP: the exact upstream
requests for every model and mode the provider map routes to OpenAI (JSON, or multipart
with the reference image), the video lifecycle up to the authenticated download, and the
error split."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from generations.errors import ApiError
from generations.rendering.base import EngineError
from generations.rendering.hosted import providers, routes
from generations.rendering.hosted.base import Pending, Transient
from generations.rendering.hosted.openai import OpenAIEngine
from tests import engine_helpers as helpers
from tests.fake_openai import FakeOpenAI, result_video
from tests.fakeupstream import Faults

KEY = "sk-test-openai-key"
PROMPT = "a paper boat drifting down a rainy street"
# Catalog model -> the upstream model id the default map sends it to.
MODELS = {"sora-2": "sora-2"}


def png() -> bytes:
    return helpers.png(128, 72, (30, 90, 200))


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(key=KEY) as server:
        yield server


@pytest.fixture
def configure(settings: Any) -> Callable[..., OpenAIEngine]:
    def apply(server: FakeOpenAI, key: str = KEY) -> OpenAIEngine:
        settings.VIDEOGEN_PROVIDER_MAP = ""
        settings.FAL_KEY = settings.REPLICATE_API_TOKEN = settings.GEMINI_API_KEY = ""
        settings.OPENAI_API_KEY = key
        settings.OPENAI_BASE_URL = f"{server.url}/v1"
        engine = OpenAIEngine.from_settings()
        assert isinstance(engine, OpenAIEngine)
        return engine

    return apply


@pytest.fixture
def engine(fake: FakeOpenAI, configure: Callable[..., OpenAIEngine]) -> OpenAIEngine:
    return configure(fake)


def make_job(
    model: str = "sora-2", image: bytes | None = None, unchecked: bool = False, **data: Any
) -> routes.Job:
    request = {"model": model, "prompt": PROMPT, "duration": 4, **data}
    if image is not None:
        request["image_url"] = "data:image/png;base64," + base64.b64encode(image).decode()
    # `unchecked` builds what only the catalog allows, past the route's narrower limits,
    # to show what the provider itself answers.
    image_input = routes.ImageInput(image, "image/png") if image else None
    return helpers.routed_job("openai", request, image_input, test_mode=unchecked)


def refused(call: Callable[[], object], code: str) -> EngineError:
    return helpers.refused(call, code, secret=KEY)


# --- the exact requests, for every routed model and mode ------------------------------------


def test_every_openai_model_is_covered(engine: OpenAIEngine) -> None:
    routed = {
        m for m, rs in providers.all_routes().items() if any(r.provider == "openai" for r in rs)
    }
    assert routed == set(MODELS)


@pytest.mark.parametrize(
    ("aspect", "seconds", "size"), [("16:9", 4, "1280x720"), ("9:16", 12, "720x1280")]
)
def test_text_to_video_request(
    fake: FakeOpenAI, engine: OpenAIEngine, aspect: str, seconds: int, size: str
) -> None:
    handle = engine.submit(make_job(aspect_ratio=aspect, duration=seconds, resolution="720p"))

    (req,) = fake.api_requests("POST")
    assert req.path == "/v1/videos"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {
        "model": "sora-2",
        "prompt": PROMPT,
        "seconds": str(seconds),
        "size": size,
    }
    assert handle["id"].startswith("video_") and handle["id"] in fake.videos


def test_image_to_video_request_is_multipart(fake: FakeOpenAI, engine: OpenAIEngine) -> None:
    image = png()
    handle = engine.submit(make_job(image=image, duration=8))

    (req,) = fake.api_requests("POST")
    assert req.path == "/v1/videos"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["content-type"].startswith("multipart/form-data; boundary=")
    # The fake parsed the form: plain values plus the uploaded file.
    assert fake.videos[handle["id"]]["seconds"] == "8"
    assert fake.videos[handle["id"]]["size"] == "1280x720"
    assert fake.uploads[handle["id"]] == ("reference.png", "image/png", image)
    assert b'name="model"\r\n\r\nsora-2\r\n' in req.body
    assert PROMPT.encode() in req.body


# --- lifecycle ------------------------------------------------------------------------------


def test_submit_poll_download(fake: FakeOpenAI, engine: OpenAIEngine) -> None:
    fake.polls = 3
    job = make_job(image=png())
    pending, done = helpers.run(engine, job)

    assert [(p.detail, p.progress) for p in pending] == [
        ("queued", 0),
        ("in_progress", 33),
        ("in_progress", 67),
    ]
    handle_id = fake.api_requests("GET")[0].path.rsplit("/", 1)[1]
    assert done.video_url == f"{fake.url}/v1/videos/{handle_id}/content?variant=video"
    assert done.headers == {"Authorization": f"Bearer {KEY}"}

    response = requests.get(done.video_url, headers=dict(done.headers), timeout=10)
    assert response.status_code == 200 and response.content == result_video()
    assert response.headers["content-type"] == "video/mp4"
    assert response.content[4:8] == b"ftyp"
    assert requests.get(done.video_url, timeout=10).status_code == 401


def test_content_is_404_until_completed(fake: FakeOpenAI, engine: OpenAIEngine) -> None:
    job = make_job()
    handle = engine.submit(job)
    url = f"{fake.url}/v1/videos/{handle['id']}/content?variant=video"
    auth = {"Authorization": f"Bearer {KEY}"}
    response = requests.get(url, headers=auth, timeout=10)
    assert response.status_code == 404 and "error" in response.json()


def test_a_job_that_never_finishes_stays_pending(fake: FakeOpenAI, engine: OpenAIEngine) -> None:
    job = make_job(prompt="a clock ticking forever")
    handle = engine.submit(job)
    states = [engine.poll(job, handle) for _ in range(8)]
    assert all(isinstance(s, Pending) for s in states)


def test_expired_result(fake: FakeOpenAI, engine: OpenAIEngine) -> None:
    _, done = helpers.run(engine, make_job())
    fake.expire_results = True
    assert requests.get(done.video_url, headers=dict(done.headers), timeout=10).status_code == 404


def test_cancel_deletes_upstream(fake: FakeOpenAI, engine: OpenAIEngine) -> None:
    job = make_job()
    handle = engine.submit(job)
    engine.cancel(job, handle)
    assert handle["id"] not in fake.videos
    engine.cancel(job, handle)  # already gone: the 404 is ignored
    deletes = fake.api_requests("DELETE")
    assert [r.path for r in deletes] == [f"/v1/videos/{handle['id']}"] * 2


# --- refusals and failures ------------------------------------------------------------------


def test_prompt_blocked_at_create(engine: OpenAIEngine) -> None:
    error = refused(lambda: engine.submit(make_job(prompt="a forbidden scene")), "content_policy")
    assert "moderation" in error.message


def test_video_blocked_during_generation(engine: OpenAIEngine) -> None:
    error = refused(lambda: helpers.run(engine, make_job(prompt="a gory scene")), "content_policy")
    assert "moderation" in error.message


def test_generation_failure(engine: OpenAIEngine) -> None:
    error = refused(lambda: helpers.run(engine, make_job(prompt="crash it")), "upstream_failed")
    assert "Video generation failed" in error.message


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"resolution": "1080p"}, "size"),  # 1920x1080 is not an OpenAI size
        ({"aspect_ratio": "1:1"}, "size"),
        ({"duration": 10}, "seconds"),  # the catalog's 10 s is not an OpenAI `seconds`
    ],
)
def test_validation_error_names_the_parameter(
    engine: OpenAIEngine, data: dict[str, Any], param: str
) -> None:
    job = make_job(unchecked=True, **data)
    error = refused(lambda: engine.submit(job), "upstream_rejected")
    assert f"parameter `{param}`" in error.message and "Invalid value" in error.message
    # The route narrows the catalog to what OpenAI takes: our API refuses these first.
    with pytest.raises(ApiError) as info:
        make_job(**data)
    assert info.value.status == 400 and info.value.field == next(iter(data))


def test_bad_key(fake: FakeOpenAI, configure: Callable[..., OpenAIEngine]) -> None:
    engine = configure(fake, "sk-wrong-key-0123456789")
    error = refused(lambda: engine.submit(make_job()), "upstream_auth")
    assert "invalid_api_key" in error.message and "sk-wrong-key-0123456789" not in error.message
    assert "6789" not in error.message  # not even the part the provider echoes back
    assert fake.api_requests()[0].headers["authorization"] == "Bearer sk-wrong-key-0123456789"


def test_unknown_video_is_rejected(engine: OpenAIEngine) -> None:
    job = make_job()
    refused(lambda: engine.poll(job, {"id": "video_0123abcd"}), "upstream_rejected")


# --- transient faults -----------------------------------------------------------------------


def test_injected_faults_are_transient(configure: Callable[..., OpenAIEngine]) -> None:
    with FakeOpenAI(Faults(transient_rate=1.0, seed=5, retry_after="7"), key=KEY) as server:
        engine = configure(server)
        job = make_job()
        errors = []
        for _ in range(40):  # the seeded mix: 500, 503, 429 and malformed JSON
            with pytest.raises(Transient) as info:
                engine.poll(job, {"id": "video_0123abcd"})
            errors.append(info.value)
        assert server.injected == 40
        assert {e.retry_after for e in errors} == {None, 7.0}
        assert any("malformed JSON" in str(e) for e in errors)
        assert any("HTTP 500" in str(e) for e in errors)
        assert any("HTTP 503" in str(e) for e in errors)
        assert all(KEY not in str(e) for e in errors)


def test_rate_limit_429_reads_retry_after(fake: FakeOpenAI, engine: OpenAIEngine) -> None:
    fake.rate_limited = 1
    job = make_job()
    with pytest.raises(Transient) as info:
        engine.submit(job)
    assert info.value.retry_after == 20.0 and "rate_limit_exceeded" in str(info.value)
    assert engine.submit(job)["id"]


def test_an_account_out_of_quota_fails_at_once_instead_of_retrying(
    fake: FakeOpenAI, engine: OpenAIEngine
) -> None:
    """OpenAI answers 429 both for a rate limit (wait) and for an account without credit
    (no wait helps): the second fails the generation now, naming what the operator must do."""
    fake.out_of_quota = True
    with pytest.raises(EngineError) as info:
        engine.submit(make_job())
    assert info.value.code == "upstream_quota"
    assert "plan and billing" in info.value.message and KEY not in info.value.message
    with pytest.raises(EngineError):
        engine.poll(make_job(), {"id": "video_0123abcd"})


def test_unreachable_provider_is_transient(configure: Callable[..., OpenAIEngine]) -> None:
    with FakeOpenAI(key=KEY) as server:
        engine = configure(server)
    with pytest.raises(Transient):
        engine.submit(make_job())
