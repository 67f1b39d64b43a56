"""The Replicate engine against a fake predictions API over real HTTP: what each catalog
model sends upstream, the create/poll/cancel lifecycle, and how Replicate's errors become
ours."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from generations.core.validation import build_spec
from generations.errors import ApiError
from generations.rendering import registry
from generations.rendering.base import EngineError
from generations.rendering.hosted import providers, routes
from generations.rendering.hosted.base import Done, Pending, Transient
from generations.rendering.hosted.replicate import ReplicateEngine, log_state
from tests import engine_helpers as helpers
from tests.fake_replicate import POLICY_ERROR, TOKEN, FakeReplicate
from tests.fakeupstream import Faults, Reply


def png() -> bytes:
    return helpers.png(8, 6, (40, 200, 40))


IMAGE = routes.ImageInput(png(), "image/png")
DATA_URL = IMAGE.data_url()
PROMPT = "a lighthouse in a storm at night"


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        settings.VIDEOGEN_PROVIDER_MAP = ""
        # Replicate serves a model only where no provider listed before it is configured.
        settings.OPENAI_API_KEY = settings.GEMINI_API_KEY = settings.FAL_KEY = ""
        settings.REPLICATE_API_TOKEN = TOKEN
        settings.REPLICATE_API_URL = f"{server.url}/v1"
        yield server


@pytest.fixture
def engine(fake: FakeReplicate) -> ReplicateEngine:
    return ReplicateEngine.from_settings()


def job_for(model: str, image: bool = False, **data: Any) -> routes.Job:
    request = {"model": model, "prompt": PROMPT, **data}
    if image:
        request["image_url"] = "https://example.com/first-frame.png"
    return helpers.routed_job("replicate", request, IMAGE if image else None)


def seedance(**data: Any) -> routes.Job:
    return job_for("seedance", duration=5, seed=3, **data)


def refused(call: Callable[[], object], code: str) -> EngineError:
    return helpers.refused(call, code, secret=TOKEN)


def transient(call: Callable[[], object]) -> Transient:
    return helpers.transient(call, secret=TOKEN)


# --- what each model sends ----------------------------------------------------------------

SEEDED = {"seed": 1234}
CASES: list[tuple[str, str, dict[str, Any], str, dict[str, Any]]] = [
    ("sora-2", "text-to-video", {"duration": 8, "aspect_ratio": "9:16"}, "openai/sora-2",
     {"prompt": PROMPT, "seconds": 8, "aspect_ratio": "portrait"}),
    ("sora-2", "image-to-video", {"duration": 4}, "openai/sora-2",
     {"prompt": PROMPT, "seconds": 4, "aspect_ratio": "landscape",
      "input_reference": DATA_URL}),
    ("kling_25", "text-to-video",
     {"duration": 10, "aspect_ratio": "1:1", "negative_prompt": "blurry"},
     "kwaivgi/kling-v2.5-turbo-pro",
     {"prompt": PROMPT, "duration": 10, "aspect_ratio": "1:1", "negative_prompt": "blurry"}),
    ("kling_25", "image-to-video", {"duration": 5}, "kwaivgi/kling-v2.5-turbo-pro",
     {"prompt": PROMPT, "duration": 5, "aspect_ratio": "16:9", "start_image": DATA_URL}),
    ("veo_3", "text-to-video",
     {"resolution": "1080p", "add_audio": True, "negative_prompt": "text", **SEEDED},
     "google/veo-3-fast",
     {"prompt": PROMPT, "aspect_ratio": "16:9", "duration": 8, "resolution": "1080p",
      "negative_prompt": "text", "seed": 1234, "generate_audio": True}),
    ("veo_3", "image-to-video", SEEDED, "google/veo-3-fast",
     {"prompt": PROMPT, "aspect_ratio": "16:9", "duration": 8, "resolution": "720p",
      "seed": 1234, "generate_audio": False, "image": DATA_URL}),
    ("veo-31", "text-to-video", {"aspect_ratio": "9:16", "add_audio": True, **SEEDED},
     "google/veo-3.1",
     {"prompt": PROMPT, "aspect_ratio": "9:16", "duration": 8, "resolution": "720p",
      "seed": 1234, "generate_audio": True}),
    ("veo-31", "image-to-video", {"negative_prompt": "cartoon", **SEEDED}, "google/veo-3.1",
     {"prompt": PROMPT, "aspect_ratio": "16:9", "duration": 8, "resolution": "720p",
      "negative_prompt": "cartoon", "seed": 1234, "generate_audio": False,
      "image": DATA_URL}),
    ("seedance", "text-to-video",
     {"duration": 6, "camera_fixed": True, "resolution": "1080p", "aspect_ratio": "4:3",
      **SEEDED},
     "bytedance/seedance-1-pro",
     {"prompt": PROMPT, "aspect_ratio": "4:3", "resolution": "1080p", "duration": 6,
      "camera_fixed": True, "seed": 1234}),
    ("seedance", "image-to-video", {"duration": 5, **SEEDED}, "bytedance/seedance-1-pro",
     {"prompt": PROMPT, "aspect_ratio": "16:9", "resolution": "720p", "duration": 5,
      "camera_fixed": False, "seed": 1234, "image": DATA_URL}),
    ("wan-25", "text-to-video", {"duration": 10, "negative_prompt": "static", **SEEDED},
     "wan-video/wan-2.5-t2v",
     {"prompt": PROMPT, "resolution": "720p", "duration": 10, "negative_prompt": "static",
      "seed": 1234}),
    ("wan-25", "image-to-video", {"duration": 5, "resolution": "480p", **SEEDED},
     "wan-video/wan-2.5-i2v",
     {"prompt": PROMPT, "resolution": "480p", "duration": 5, "seed": 1234,
      "image": DATA_URL}),
]  # fmt: skip


def test_cases_cover_every_replicate_route(fake: FakeReplicate) -> None:
    served = {(model, mode) for model, rs in providers.all_routes().items() for r in rs
              if r.provider == "replicate" for mode in r.upstream}  # fmt: skip
    assert served == {(model, mode) for model, mode, *_ in CASES}


@pytest.mark.parametrize(("model", "mode", "data", "upstream", "body"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])  # fmt: skip
def test_each_model_sends_its_documented_input(
    engine: ReplicateEngine, fake: FakeReplicate, model: str, mode: str, data: dict[str, Any],
    upstream: str, body: dict[str, Any],
) -> None:  # fmt: skip
    job = job_for(model, image=mode == "image-to-video", **data)
    assert job.spec.mode == mode
    handle = engine.submit(job)
    (sent,) = fake.api_requests("POST")
    assert sent.path == f"/v1/models/{upstream}/predictions"
    assert sent.json() == {"input": body}
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert "prefer" not in sent.headers  # a worker never waits on the call
    images = [v for v in body.values() if str(v).startswith("data:image/png;base64,")]
    assert images == ([DATA_URL] if mode == "image-to-video" else [])
    base = f"{fake.url}/v1/predictions/{handle['id']}"
    assert handle == {"id": handle["id"], "get": base, "cancel": f"{base}/cancel"}
    assert isinstance(helpers.finish(engine, job, handle), Done)


def test_pinned_version_is_created_through_predictions(
    fake: FakeReplicate, settings: Any, tmp_path: Path
) -> None:
    version = "5f0af3a0c4c7c1e0b1b3f0e2a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0"
    custom = tmp_path / "providers.toml"
    custom.write_text(
        f'[ltxv-13b.replicate]\ntext-to-video = "lightricks/ltx-video:{version}"\n'
        '[ltxv-13b.replicate.input]\nprompt = "prompt"\nnum_frames = "frames"\n'
    )
    settings.VIDEOGEN_PROVIDER_MAP = str(custom)
    engine = ReplicateEngine.from_settings()
    job = job_for("ltxv-13b", duration=2)
    handle = engine.submit(job)
    (sent,) = fake.api_requests("POST")
    assert sent.path == "/v1/predictions"
    assert sent.json() == {"version": version, "input": {"prompt": PROMPT, "num_frames": 60}}
    assert isinstance(helpers.finish(engine, job, handle), Done)


def test_log_state_reads_tqdm() -> None:
    logs = "Loading model\nGenerating\r  9%|#    | 1/11\r 45%|####5     | 5/11 [00:05<00:06]"
    assert log_state(logs) == (45.0, "45%|####5     | 5/11 [00:05<00:06]")
    assert log_state("") == (None, "")


# --- lifecycle ----------------------------------------------------------------------------


def test_create_poll_done_and_download(engine: ReplicateEngine, fake: FakeReplicate) -> None:
    fake.starting_polls, fake.run_polls = 1, 2
    job = seedance()
    handle = engine.submit(job)
    assert len(json.dumps(handle)) < 1000
    pid = handle["id"]

    assert engine.poll(job, handle) == Pending(detail="starting")
    assert engine.poll(job, handle) == Pending(progress=33.0, detail="33%|###       | 1/3")
    assert engine.poll(job, handle) == Pending(progress=66.0, detail="66%|###       | 2/3")
    done = engine.poll(job, handle)
    assert isinstance(done, Done) and done.video_url.startswith(f"{fake.url}/files/")

    paths = [(r.method, r.path) for r in fake.api_requests()]
    assert paths == [("POST", "/v1/models/bytedance/seedance-1-pro/predictions"),
                     *[("GET", f"/v1/predictions/{pid}")] * 4]  # fmt: skip
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake.api_requests())
    download = requests.get(done.video_url, timeout=5)
    assert download.status_code == 200 and download.content[4:8] == b"ftyp"


def test_list_output_takes_the_first_url(engine: ReplicateEngine, fake: FakeReplicate) -> None:
    job = seedance()
    handle = engine.submit(job)
    output = ["https://x.test/a.mp4", "https://x.test/b.mp4"]
    fake.script = [Reply.json(200, {"id": handle["id"], "status": "succeeded", "output": output})]
    assert engine.poll(job, handle) == Done("https://x.test/a.mp4")


def test_slow_job_stays_pending_and_cancel_reaches_replicate(
    engine: ReplicateEngine, fake: FakeReplicate
) -> None:
    fake.never_finish = True
    job = seedance()
    handle = engine.submit(job)
    assert all(isinstance(engine.poll(job, handle), Pending) for _ in range(8))
    engine.cancel(job, handle)
    (cancel,) = [r for r in fake.api_requests("POST") if r.path.endswith("/cancel")]
    assert cancel.path == f"/v1/predictions/{handle['id']}/cancel"
    assert fake.predictions[handle["id"]].status == "canceled"
    refused(lambda: engine.poll(job, handle), "canceled_upstream")


def test_cancel_is_best_effort(engine: ReplicateEngine, fake: FakeReplicate) -> None:
    job = seedance()
    handle = engine.submit(job)
    helpers.finish(engine, job, handle)
    engine.cancel(job, handle)  # already succeeded: the prediction comes back unchanged
    engine.cancel(job, {**handle, "cancel": f"{fake.url}/v1/predictions/gone/cancel"})  # 404
    fake.script = [Reply.json(503, {"detail": "unavailable"})]
    transient(lambda: engine.cancel(job, handle))  # the caller decides about retrying


def test_expired_result_url_answers_404(engine: ReplicateEngine, fake: FakeReplicate) -> None:
    fake.expire_results = True
    job = seedance()
    done = helpers.finish(engine, job, engine.submit(job))
    assert requests.get(done.video_url, timeout=5).status_code == 404


def test_from_catalog(fake: FakeReplicate) -> None:
    engine = registry.hosted_engine("replicate")
    assert isinstance(engine, ReplicateEngine) and engine.name == "replicate"


# --- refusals and failures ----------------------------------------------------------------


def test_content_policy_failure(engine: ReplicateEngine, fake: FakeReplicate) -> None:
    job = seedance(prompt="a Forbidden scene")
    handle = engine.submit(job)
    error = refused(lambda: helpers.finish(engine, job, handle), "content_policy")
    assert "(E005)" in error.message and POLICY_ERROR[:30] in error.message


def test_plain_failure(engine: ReplicateEngine, fake: FakeReplicate) -> None:
    job = seedance(prompt="crash the model")
    handle = engine.submit(job)
    error = refused(lambda: helpers.finish(engine, job, handle), "upstream_failed")
    assert "CUDA out of memory" in error.message


def test_validation_error_names_the_field(engine: ReplicateEngine, fake: FakeReplicate) -> None:
    # A value Replicate refuses (whatever our own checks let through) names the field.
    job = job_for("kling_25", duration=5)
    job = dataclasses.replace(job, input={**job.input, "duration": 7})
    error = refused(lambda: engine.submit(job), "upstream_rejected")
    assert "duration: duration must be one of the following: 5, 10" in error.message


def test_bad_token_is_upstream_auth(fake: FakeReplicate) -> None:
    wrong = ReplicateEngine(f"{fake.url}/v1", "r8_wrong_secret")
    with pytest.raises(EngineError) as info:
        wrong.submit(seedance())
    assert info.value.code == "upstream_auth"
    assert "r8_wrong_secret" not in str(info.value)


def test_rate_limit_wait_from_the_body(engine: ReplicateEngine, fake: FakeReplicate) -> None:
    detail = "Request was throttled. Your rate limit resets in ~30s."
    fake.script = [Reply.json(429, {"title": "Too Many Requests", "detail": detail})]
    assert transient(lambda: engine.submit(seedance())).retry_after == 30.0


FAULTS = {
    "500": Reply.json(500, {"detail": "Internal Server Error"}),
    "503": Reply(503, b"upstream connect error or disconnect/reset before headers"),
    "429": Reply.json(429, {"detail": "Request was throttled."}, **{"Retry-After": "7"}),
    "json": Reply(200, b'{"status": "process', {"Content-Type": "application/json"}),
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("phase", ["submit", "poll"])
def test_transient_faults(
    engine: ReplicateEngine, fake: FakeReplicate, fault: str, phase: str
) -> None:
    job = seedance()
    if phase == "submit":
        fake.script = [FAULTS[fault]]
        error = transient(lambda: engine.submit(job))
    else:
        handle = engine.submit(job)
        fake.script = [FAULTS[fault]]
        error = transient(lambda: engine.poll(job, handle))
    assert error.retry_after == (7.0 if fault == "429" else None)


def test_survives_seeded_faults(fake: FakeReplicate) -> None:
    job = seedance()
    with FakeReplicate(Faults(transient_rate=0.4, seed=11)) as faulty:
        faulty.run_polls = 4
        engine = ReplicateEngine(f"{faulty.url}/v1", TOKEN)

        def retry(call: Callable[[], Any]) -> Any:
            for _ in range(50):
                try:
                    return call()
                except Transient:
                    continue
            raise AssertionError("never got through")

        handle = retry(lambda: engine.submit(job))
        while not isinstance(outcome := retry(lambda: engine.poll(job, handle)), Done):
            assert isinstance(outcome, Pending)
        assert faulty.injected > 0 and len(faulty.predictions) == 1


# --- shots: end frames -----------------------------------------------------------------------

END = routes.ImageInput(helpers.png(6, 8, (20, 60, 220)), "image/png")


def test_veo_31_sends_the_end_image_as_last_frame(
    fake: FakeReplicate, engine: ReplicateEngine
) -> None:
    request = {"model": "veo-31", "prompt": PROMPT, "image_url": DATA_URL}
    job = helpers.routed_job("replicate", request, IMAGE, end_image=END)
    helpers.run(engine, job)
    (prediction,) = fake.predictions.values()
    assert prediction.model == "google/veo-3.1"
    assert prediction.input["image"] == DATA_URL
    assert prediction.input["last_frame"] == END.data_url()


def test_kling_on_replicate_refuses_an_end_image_naming_it(fake: FakeReplicate) -> None:
    request = {"model": "kling_25", "prompt": PROMPT, "image_url": DATA_URL,
               "end_image_url": END.data_url()}  # fmt: skip
    with pytest.raises(ApiError) as info:
        build_spec(request, test_mode=False)
    assert info.value.status == 400 and info.value.field == "end_image_url"
