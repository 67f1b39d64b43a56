"""The Gemini (Veo) engine against the fake Gemini API over real HTTP: the exact upstream
requests for every model and mode the provider map routes to Gemini, the operation
lifecycle up to the authenticated, redirected download, and the error split."""

from __future__ import annotations

import base64
import io
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import requests

from generations.core.validation import build_spec
from generations.errors import ApiError
from generations.media.encode import probe
from generations.rendering.base import EngineError
from generations.rendering.hosted import providers, routes
from generations.rendering.hosted.base import Done, Pending, Transient
from generations.rendering.hosted.gemini import GeminiEngine
from tests import engine_helpers as helpers
from tests.fake_gemini import FakeGemini, result_video
from tests.fakeupstream import Faults, make_mp4

KEY = "gm-test-key"
# Catalog model -> the upstream model id the default map sends it to.
MODELS = {"veo_3": "veo-3.0-fast-generate-001", "veo-31": "veo-3.1-generate-preview"}


def png() -> bytes:
    return helpers.png(64, 36, (200, 40, 90))


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(key=KEY) as server:
        yield server


@pytest.fixture
def configure(settings: Any) -> Callable[..., GeminiEngine]:
    def apply(server: FakeGemini, key: str = KEY) -> GeminiEngine:
        settings.VIDEOGEN_PROVIDER_MAP = ""
        settings.FAL_KEY = settings.REPLICATE_API_TOKEN = settings.OPENAI_API_KEY = ""
        settings.GEMINI_API_KEY = key
        settings.GEMINI_API_URL = f"{server.url}/v1beta"
        engine = GeminiEngine.from_settings()
        assert isinstance(engine, GeminiEngine)
        return engine

    return apply


@pytest.fixture
def engine(fake: FakeGemini, configure: Callable[..., GeminiEngine]) -> GeminiEngine:
    return configure(fake)


def make_job(
    model: str = "veo-31", image: bytes | None = None, unchecked: bool = False, **data: Any
) -> routes.Job:
    request = {"model": model, "prompt": "a lighthouse at dusk", **data}
    if image is not None:
        request["image_url"] = "data:image/png;base64," + base64.b64encode(image).decode()
    # `unchecked` builds what only the catalog allows, past the route's narrower limits,
    # to show what the provider itself answers.
    image_input = routes.ImageInput(image, "image/png") if image else None
    return helpers.routed_job("gemini", request, image_input, test_mode=unchecked)


def refused(call: Callable[[], object], code: str) -> EngineError:
    return helpers.refused(call, code, secret=KEY)


# --- the exact requests, for every routed model and mode ------------------------------------


def test_every_gemini_model_is_covered(engine: GeminiEngine) -> None:
    routed = {
        m for m, rs in providers.all_routes().items() if any(r.provider == "gemini" for r in rs)
    }
    assert routed == set(MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_text_to_video_request(fake: FakeGemini, engine: GeminiEngine, model: str) -> None:
    job = make_job(model, aspect_ratio="9:16", resolution="1080p", negative_prompt="blurry")
    handle = engine.submit(job)

    (req,) = fake.api_requests("POST")
    assert req.path == f"/v1beta/models/{MODELS[model]}:predictLongRunning"
    assert req.headers["x-goog-api-key"] == KEY and not req.query
    assert req.json() == {
        "instances": [{"prompt": "a lighthouse at dusk"}],
        "parameters": {"aspectRatio": "9:16", "resolution": "1080p", "durationSeconds": 8,
                       "negativePrompt": "blurry"},
    }  # fmt: skip
    assert handle["operation"].startswith(f"models/{MODELS[model]}/operations/")


@pytest.mark.parametrize("model", MODELS)
def test_image_to_video_request(fake: FakeGemini, engine: GeminiEngine, model: str) -> None:
    image = png()
    engine.submit(make_job(model, image=image, duration=8, negative_prompt="text, watermark"))

    (req,) = fake.api_requests("POST")
    assert req.path == f"/v1beta/models/{MODELS[model]}:predictLongRunning"
    body = req.json()
    instance = body["instances"][0]
    assert instance["prompt"] == "a lighthouse at dusk"
    assert instance["image"] == {
        "bytesBase64Encoded": base64.b64encode(image).decode(),
        "mimeType": "image/png",
    }
    assert body["parameters"] == {
        "aspectRatio": "16:9",
        "resolution": "720p",
        "durationSeconds": 8,
        "negativePrompt": "text, watermark",
    }
    assert type(body["parameters"]["durationSeconds"]) is int


def test_empty_fields_are_left_out(fake: FakeGemini, engine: GeminiEngine) -> None:
    engine.submit(make_job("veo_3"))
    params = fake.api_requests("POST")[0].json()["parameters"]
    assert "negativePrompt" not in params


# --- lifecycle ------------------------------------------------------------------------------


def test_submit_poll_download(fake: FakeGemini, engine: GeminiEngine) -> None:
    fake.polls = 3
    pending, done = helpers.run(engine, make_job(image=png()))

    assert [p.progress for p in pending] == [0.0, 33.0, 67.0]
    assert done.headers == {"x-goog-api-key": KEY}
    assert "/v1beta/files/" in done.video_url and ":download" in done.video_url
    polls = fake.api_requests("GET")
    assert all(r.path.startswith("/v1beta/models/veo-3.1-generate-preview/operations/")
               for r in polls)  # fmt: skip
    assert all(r.headers["x-goog-api-key"] == KEY for r in polls)

    response = requests.get(done.video_url, headers=dict(done.headers), timeout=10)
    assert response.status_code == 200 and response.content == result_video()
    assert response.content[4:8] == b"ftyp"
    assert response.history and response.history[0].status_code == 302  # followed to storage
    # The file link wants the key.
    assert requests.get(done.video_url, timeout=10).status_code == 403


def test_short_operation_names_and_missing_done(fake: FakeGemini, engine: GeminiEngine) -> None:
    fake.short_names = fake.omit_done = True
    fake.report_progress = False
    job = make_job()
    handle = engine.submit(job)
    assert handle["operation"].startswith("operations/")
    assert engine.poll(job, handle) == Pending(progress=None, detail="running")
    engine.poll(job, handle)
    assert isinstance(engine.poll(job, handle), Done)
    assert fake.api_requests("GET")[0].path == f"/v1beta/{handle['operation']}"


def test_a_job_that_never_finishes_stays_pending(fake: FakeGemini, engine: GeminiEngine) -> None:
    job = make_job(prompt="waves forever")
    handle = engine.submit(job)
    assert all(isinstance(engine.poll(job, handle), Pending) for _ in range(10))


def test_expired_result(fake: FakeGemini, engine: GeminiEngine) -> None:
    _, done = helpers.run(engine, make_job())
    fake.expire_results = True
    assert requests.get(done.video_url, headers=dict(done.headers), timeout=10).status_code == 404


def test_cancel_is_best_effort(fake: FakeGemini, engine: GeminiEngine) -> None:
    job = make_job()
    handle = engine.submit(job)
    engine.cancel(job, handle)  # the API has no cancel: the 404 is ignored
    (_, cancel) = fake.api_requests("POST")
    assert cancel.path == f"/v1beta/{handle['operation']}:cancel"


# --- refusals and failures ------------------------------------------------------------------


def test_content_filtered_after_generation(fake: FakeGemini, engine: GeminiEngine) -> None:
    error = refused(
        lambda: helpers.run(engine, make_job(prompt="something forbidden")), "content_policy"
    )
    assert "safety policies" in error.message


def test_prompt_refused_at_create(fake: FakeGemini, engine: GeminiEngine) -> None:
    error = refused(lambda: engine.submit(make_job(prompt="banned words")), "content_policy")
    assert "Responsible AI" in error.message


def test_operation_error_fails_the_job(fake: FakeGemini, engine: GeminiEngine) -> None:
    refused(lambda: helpers.run(engine, make_job(prompt="crash now")), "upstream_failed")
    for code, status in ((4, "DEADLINE_EXCEEDED"), (8, "RESOURCE_EXHAUSTED"), (14, "UNAVAILABLE")):
        fake.fail_error = {"code": code, "message": "try later", "status": status}
        error = refused(
            lambda: helpers.run(engine, make_job(prompt="crash now")), "upstream_failed"
        )
        assert status in error.message


@pytest.mark.parametrize(
    ("data", "words"),
    [({"resolution": "480p"}, "Resolution 480p"), ({"aspect_ratio": "4:3"}, "Aspect ratio 4:3")],
)
def test_validation_error(engine: GeminiEngine, data: dict[str, Any], words: str) -> None:
    # The catalog offers these for Veo; the Gemini API refuses them ...
    job = make_job("veo_3", unchecked=True, **data)
    error = refused(lambda: engine.submit(job), "upstream_rejected")
    assert "INVALID_ARGUMENT" in error.message and words in error.message
    # ... so the route narrows them, and our API refuses them first, naming the field.
    with pytest.raises(ApiError) as info:
        make_job("veo_3", **data)
    assert info.value.status == 400 and info.value.field == next(iter(data))


def test_bad_key(fake: FakeGemini, configure: Callable[..., GeminiEngine]) -> None:
    engine = configure(fake, "gm-wrong-key-123")
    job = make_job()
    error = refused(lambda: engine.submit(job), "upstream_auth")
    assert "gm-wrong-key-123" not in error.message
    # A missing key is a 403 PERMISSION_DENIED: also the operator's problem.
    refused(lambda: GeminiEngine(f"{fake.url}/v1beta", "").submit(job), "upstream_auth")


# --- transient faults -----------------------------------------------------------------------


def test_injected_faults_are_transient(configure: Callable[..., GeminiEngine]) -> None:
    with FakeGemini(Faults(transient_rate=1.0, seed=3, retry_after="7"), key=KEY) as server:
        engine = configure(server)
        job = make_job()
        errors = []
        for _ in range(40):  # the seeded mix: 500, 503, 429 and malformed JSON
            with pytest.raises(Transient) as info:
                engine.submit(job)
            errors.append(info.value)
        assert server.injected == 40
        assert {e.retry_after for e in errors} == {None, 7.0}
        assert any("malformed JSON" in str(e) for e in errors)
        assert any("HTTP 503" in str(e) for e in errors)
        assert all(KEY not in str(e) for e in errors)


def test_quota_429_reads_retry_info(fake: FakeGemini, engine: GeminiEngine) -> None:
    fake.exhausted = 1
    job = make_job()
    with pytest.raises(Transient) as info:
        engine.submit(job)
    assert info.value.retry_after == 37.0 and "RESOURCE_EXHAUSTED" in str(info.value)
    assert engine.submit(job)["operation"]


def test_unreachable_provider_is_transient(configure: Callable[..., GeminiEngine]) -> None:
    with FakeGemini(key=KEY) as server:
        engine = configure(server)
    with pytest.raises(Transient):
        engine.submit(make_job())


# --- shots: the last frame and the video extension -----------------------------------------


def clip() -> bytes:
    """A one-second 24 fps clip, as a finished generation's video."""
    with tempfile.TemporaryDirectory() as tmp:
        return make_mp4(Path(tmp) / "source.mp4", width=64, height=36)


def test_an_end_image_is_sent_as_veo_31s_last_frame(fake: FakeGemini, engine: GeminiEngine):
    first, last = png(), helpers.png(64, 36, (20, 200, 90))
    job = helpers.routed_job(
        "gemini",
        {"model": "veo-31", "prompt": "a lighthouse at dusk", "duration": 8,
         "image_url": "data:image/png;base64," + base64.b64encode(first).decode()},
        routes.ImageInput(first, "image/png"),
        end_image=routes.ImageInput(last, "image/png"),
    )  # fmt: skip
    helpers.run(engine, job)
    instance = fake.last_body["instances"][0]
    assert instance["image"]["bytesBase64Encoded"] == base64.b64encode(first).decode()
    assert instance["lastFrame"] == {
        "bytesBase64Encoded": base64.b64encode(last).decode(),
        "mimeType": "image/png",
    }


def test_veo_3_takes_no_end_frame_and_text_to_video_none_on_gemini(settings: Any) -> None:
    settings.GEMINI_API_KEY, settings.VIDEOGEN_PROVIDER_MAP = KEY, ""
    settings.FAL_KEY = settings.REPLICATE_API_TOKEN = settings.OPENAI_API_KEY = ""
    veo31 = providers.route_for("veo-31", "image-to-video")
    assert veo31 is not None and veo31.takes("end_image", "image-to-video")
    assert not veo31.takes("end_image", "text-to-video")  # lastFrame needs a first frame
    assert veo31.takes("source_video")
    veo3 = providers.route_for("veo_3", "image-to-video")
    assert veo3 is not None and not veo3.takes("end_image") and not veo3.takes("source_video")


def test_a_source_video_is_extended_natively_into_one_combined_clip(
    fake: FakeGemini, engine: GeminiEngine
) -> None:
    source = clip()
    image = png()
    job = helpers.routed_job(
        "gemini",
        {"model": "veo-31", "prompt": "the camera keeps flying", "duration": 8,
         "image_url": "data:image/png;base64," + base64.b64encode(image).decode()},
        routes.ImageInput(image, "image/png"),
        source_video=routes.VideoInput(source, "video/mp4"),
    )  # fmt: skip
    _, done = helpers.run(engine, job)
    instance = fake.last_body["instances"][0]
    # The clip replaces the first frame: no `image` goes with it.
    assert "image" not in instance
    assert instance["video"] == {
        "bytesBase64Encoded": base64.b64encode(source).decode(),
        "mimeType": "video/mp4",
    }
    assert fake.last_body["parameters"]["durationSeconds"] == 8
    response = requests.get(done.video_url, headers=dict(done.headers), timeout=10)
    assert response.status_code == 200
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.mp4"
        path.write_bytes(response.content)
        info = probe(path)
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(io.BytesIO(source), "r") as container:
        given = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    # The input clip (24 frames) followed by eight more seconds at its rate and size.
    assert info["frame_count"] == 24 + 8 * 24 and (info["width"], info["height"]) == (64, 36)
    assert info["duration"] == pytest.approx(9.0, abs=0.05)
    for ours, theirs in zip(given, frames[:24], strict=True):
        assert np.mean(np.abs(ours.astype(np.float32) - theirs)) < 3


def test_a_video_extension_sends_no_image_fields_in_translation() -> None:
    route = routes.Route(
        model="veo-31", provider="gemini", upstream={"image-to-video": "veo"},
        input={"instance.image.bytesBase64Encoded": "image|base64",
               "instance.video.bytesBase64Encoded": "source_video|base64",
               "instance.video.mimeType": "source_video|mime"},
        deadline_s=1.0, typical_s=1.0,
    )  # fmt: skip
    spec = build_spec(
        {"model": "local", "prompt": "p", "image_url": "https://example.com/a.png"},
        test_mode=True,
    )
    video = routes.VideoInput(b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    body = routes.translate(route, spec, routes.ImageInput(b"img", "image/png"),
                            source_video=video)  # fmt: skip
    assert body == {"instance": {"video": {"bytesBase64Encoded": "AAAAGGZ0eXBtcDQy",
                                           "mimeType": "video/mp4"}}}  # fmt: skip
