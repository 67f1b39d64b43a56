"""The fal engine against a fake fal queue API over real HTTP: what each catalog model sends
upstream, the submit/poll/cancel lifecycle, and how fal's errors become ours."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from generations.rendering import registry
from generations.rendering.base import EngineError
from generations.rendering.hosted import providers, routes
from generations.rendering.hosted.base import Done, Pending, Transient
from generations.rendering.hosted.fal import FalEngine, app_path, progress_of
from tests import engine_helpers as helpers
from tests.fake_fal import KEY, FakeFal
from tests.fakeupstream import Faults, Reply


def png() -> bytes:
    return helpers.png(8, 6, (200, 40, 40))


IMAGE = routes.ImageInput(png(), "image/png")
DATA_URL = IMAGE.data_url()
PROMPT = "a red fox runs through fresh snow"


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeFal]:
    with FakeFal() as server:
        settings.VIDEOGEN_PROVIDER_MAP = ""
        settings.OPENAI_API_KEY = settings.GEMINI_API_KEY = settings.REPLICATE_API_TOKEN = ""
        settings.FAL_KEY = KEY
        settings.FAL_QUEUE_URL = server.url
        yield server


@pytest.fixture
def engine(fake: FakeFal) -> FalEngine:
    return FalEngine.from_settings()


def job_for(model: str, image: bool = False, **data: Any) -> routes.Job:
    request = {"model": model, "prompt": PROMPT, **data}
    if image:
        request["image_url"] = "https://example.com/first-frame.png"
    return helpers.routed_job("fal", request, IMAGE if image else None)


def kling(**data: Any) -> routes.Job:
    return job_for("kling_25", duration=5, **data)


def refused(call: Callable[[], object], code: str) -> EngineError:
    return helpers.refused(call, code, secret=KEY)


def transient(call: Callable[[], object]) -> Transient:
    return helpers.transient(call, secret=KEY)


# --- what each model sends ----------------------------------------------------------------

SEEDED = {"seed": 1234}
CASES: list[tuple[str, str, dict[str, Any], str, dict[str, Any]]] = [
    ("sora-2", "text-to-video", {"duration": 8, "aspect_ratio": "9:16"},
     "fal-ai/sora-2/text-to-video",
     {"prompt": PROMPT, "duration": 8, "aspect_ratio": "9:16", "resolution": "720p"}),
    ("sora-2", "image-to-video", {"duration": 4},
     "fal-ai/sora-2/image-to-video",
     {"prompt": PROMPT, "duration": 4, "aspect_ratio": "16:9", "resolution": "720p",
      "image_url": DATA_URL}),
    ("kling_25", "text-to-video",
     {"duration": 10, "aspect_ratio": "1:1", "negative_prompt": "blurry", "cfg_scale": 0.5},
     "fal-ai/kling-video/v2.5-turbo/pro/text-to-video",
     {"prompt": PROMPT, "duration": "10", "aspect_ratio": "1:1", "negative_prompt": "blurry",
      "cfg_scale": 0.5}),
    ("kling_25", "image-to-video", {"duration": 5},
     "fal-ai/kling-video/v2.5-turbo/pro/image-to-video",
     {"prompt": PROMPT, "duration": "5", "image_url": DATA_URL}),
    ("veo_3", "text-to-video",
     {"resolution": "1080p", "add_audio": True, "negative_prompt": "text", **SEEDED},
     "fal-ai/veo3/fast",
     {"prompt": PROMPT, "aspect_ratio": "16:9", "duration": "8s", "resolution": "1080p",
      "negative_prompt": "text", "seed": 1234, "generate_audio": True}),
    ("veo_3", "image-to-video", SEEDED,
     "fal-ai/veo3/fast/image-to-video",
     {"prompt": PROMPT, "aspect_ratio": "16:9", "duration": "8s", "resolution": "720p",
      "seed": 1234, "generate_audio": False, "image_url": DATA_URL}),
    ("veo-31", "text-to-video", {"aspect_ratio": "9:16", "add_audio": True, **SEEDED},
     "fal-ai/veo3.1",
     {"prompt": PROMPT, "aspect_ratio": "9:16", "duration": "8s", "resolution": "720p",
      "seed": 1234, "generate_audio": True}),
    ("veo-31", "image-to-video", {"negative_prompt": "cartoon", **SEEDED},
     "fal-ai/veo3.1/image-to-video",
     {"prompt": PROMPT, "aspect_ratio": "16:9", "duration": "8s", "resolution": "720p",
      "negative_prompt": "cartoon", "seed": 1234, "generate_audio": False,
      "image_url": DATA_URL}),
    ("pixverse", "text-to-video",
     {"duration": 8, "resolution": "1080p", "aspect_ratio": "4:3", "negative_prompt": "blur",
      **SEEDED},
     "fal-ai/pixverse/v5/text-to-video",
     {"prompt": PROMPT, "aspect_ratio": "4:3", "resolution": "1080p", "duration": "8",
      "negative_prompt": "blur", "seed": 1234}),
    ("pixverse", "image-to-video", {"duration": 5, **SEEDED},
     "fal-ai/pixverse/v5/image-to-video",
     {"prompt": PROMPT, "aspect_ratio": "16:9", "resolution": "720p", "duration": "5",
      "seed": 1234, "image_url": DATA_URL}),
    ("ltxv-13b", "text-to-video",
     {"num_frames": 97, "negative_prompt": "worst quality", "enable_safety_checker": False,
      **SEEDED},
     "fal-ai/ltxv-13b-098-distilled",
     {"prompt": PROMPT, "negative_prompt": "worst quality", "resolution": "480p",
      "aspect_ratio": "16:9", "num_frames": 97, "frame_rate": 30, "seed": 1234,
      "enable_safety_checker": False}),
    ("seedance", "text-to-video",
     {"duration": 6, "camera_fixed": True, "resolution": "1080p", "aspect_ratio": "4:3",
      **SEEDED},
     "fal-ai/bytedance/seedance/v1/pro/text-to-video",
     {"prompt": PROMPT, "aspect_ratio": "4:3", "resolution": "1080p", "duration": "6",
      "camera_fixed": True, "seed": 1234, "enable_safety_checker": True}),
    ("seedance", "image-to-video", {"duration": 5, **SEEDED},
     "fal-ai/bytedance/seedance/v1/pro/image-to-video",
     {"prompt": PROMPT, "aspect_ratio": "16:9", "resolution": "720p", "duration": "5",
      "camera_fixed": False, "seed": 1234, "enable_safety_checker": True,
      "image_url": DATA_URL}),
    ("wan-25", "text-to-video", {"duration": 10, "negative_prompt": "static", **SEEDED},
     "fal-ai/wan-25-preview/text-to-video",
     {"prompt": PROMPT, "aspect_ratio": "16:9", "resolution": "720p", "duration": "10",
      "negative_prompt": "static", "seed": 1234, "enable_safety_checker": True}),
    ("wan-25", "image-to-video", {"duration": 5, "resolution": "480p", **SEEDED},
     "fal-ai/wan-25-preview/image-to-video",
     {"prompt": PROMPT, "aspect_ratio": "16:9", "resolution": "480p", "duration": "5",
      "seed": 1234, "enable_safety_checker": True, "image_url": DATA_URL}),
    ("framepack", "image-to-video",
     {"cfg_scale": 1.5, "guidance_scale": 12, "num_frames": 240, "seed": 99,
      "negative_prompt": "smear", "enable_safety_checker": True, "aspect_ratio": "9:16",
      "resolution": "480p"},
     "fal-ai/framepack",
     {"prompt": PROMPT, "negative_prompt": "smear", "image_url": DATA_URL,
      "aspect_ratio": "9:16", "resolution": "480p", "cfg_scale": 1.5, "guidance_scale": 12.0,
      "num_frames": 240, "seed": 99, "enable_safety_checker": True}),
]  # fmt: skip


def test_cases_cover_every_fal_route(fake: FakeFal) -> None:
    served = {(model, mode) for model, rs in providers.all_routes().items() for r in rs
              if r.provider == "fal" for mode in r.upstream}  # fmt: skip
    assert served == {(model, mode) for model, mode, *_ in CASES}


@pytest.mark.parametrize(("model", "mode", "data", "path", "body"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])  # fmt: skip
def test_each_model_sends_its_documented_input(
    engine: FalEngine, fake: FakeFal, model: str, mode: str, data: dict[str, Any], path: str,
    body: dict[str, Any],
) -> None:  # fmt: skip
    job = job_for(model, image=mode == "image-to-video", **data)
    assert job.spec.mode == mode
    handle = engine.submit(job)
    (sent,) = fake.api_requests("POST")
    assert sent.path == f"/{path}"
    assert sent.json() == body
    assert sent.headers["authorization"] == f"Key {KEY}"
    assert sent.headers["content-type"] == "application/json"
    if "image_url" in body:
        assert sent.json()["image_url"].startswith("data:image/png;base64,")
    # Status, result and cancel live under owner/app only.
    base = f"{fake.url}/{app_path(path)}/requests/{handle['request_id']}"
    assert handle == {"request_id": handle["request_id"], "status_url": f"{base}/status",
                      "response_url": base, "cancel_url": f"{base}/cancel"}  # fmt: skip
    assert isinstance(helpers.finish(engine, job, handle), Done)


def test_app_path_keeps_owner_and_app_only() -> None:
    assert app_path("fal-ai/kling-video/v2.5-turbo/pro/text-to-video") == "fal-ai/kling-video"
    assert app_path("fal-ai/framepack") == "fal-ai/framepack"
    assert app_path("workflows/someone/my-flow/run") == "workflows/someone/my-flow"


def test_progress_from_log_lines() -> None:
    assert progress_of("step 3/25") == 12.0
    assert progress_of(" 45%|####5     | 9/20 [00:05<00:06]") == 45.0
    assert progress_of("loading weights") is None


# --- lifecycle ----------------------------------------------------------------------------


def test_submit_poll_done_and_download(engine: FalEngine, fake: FakeFal) -> None:
    fake.queue_polls, fake.run_polls = 3, 2
    job = kling()
    handle = engine.submit(job)
    assert len(json.dumps(handle)) < 1000
    rid = handle["request_id"]

    assert engine.poll(job, handle) == Pending(queue_position=2, detail="in queue, position 2")
    assert engine.poll(job, handle) == Pending(queue_position=1, detail="in queue, position 1")
    assert engine.poll(job, handle) == Pending(queue_position=0, detail="in queue, position 0")
    assert engine.poll(job, handle) == Pending(progress=50.0, detail="step 1/2")
    assert engine.poll(job, handle) == Pending(progress=100.0, detail="step 2/2")
    done = engine.poll(job, handle)
    assert isinstance(done, Done)
    # Kling takes no seed, so the one reported is fal's own.
    assert done.video_url.startswith(f"{fake.url}/files/") and done.seed == 42

    paths = [(r.method, r.path) for r in fake.api_requests()]
    status = ("GET", f"/fal-ai/kling-video/requests/{rid}/status")
    assert paths == [("POST", "/fal-ai/kling-video/v2.5-turbo/pro/text-to-video"),
                     *[status] * 6, ("GET", f"/fal-ai/kling-video/requests/{rid}")]  # fmt: skip
    assert all(r.query == {"logs": ["1"]} for r in fake.api_requests() if r.path.endswith("us"))
    assert all(r.headers["authorization"] == f"Key {KEY}" for r in fake.api_requests())
    download = requests.get(done.video_url, timeout=5)
    assert download.status_code == 200 and download.content[4:8] == b"ftyp"


def test_builds_owner_app_urls_when_submit_answer_has_none(
    engine: FalEngine, fake: FakeFal
) -> None:
    fake.omit_urls = True
    job = kling()
    handle = engine.submit(job)
    assert handle["status_url"] == (
        f"{fake.url}/fal-ai/kling-video/requests/{handle['request_id']}/status"
    )
    assert isinstance(helpers.finish(engine, job, handle), Done)
    engine.cancel(job, handle)  # already completed: fal answers 400, which is fine


def test_urls_off_the_queue_host_are_not_followed(engine: FalEngine, fake: FakeFal) -> None:
    stolen = {"request_id": "abc", "status_url": "https://evil.example/steal/status"}
    fake.script = [Reply.json(200, stolen)]
    handle = engine.submit(kling())
    assert handle["status_url"] == f"{fake.url}/fal-ai/kling-video/requests/abc/status"


def test_slow_job_stays_pending_and_cancel_reaches_fal(engine: FalEngine, fake: FakeFal) -> None:
    fake.never_finish = True
    job = kling()
    handle = engine.submit(job)
    outcomes = [engine.poll(job, handle) for _ in range(8)]
    assert all(isinstance(o, Pending) for o in outcomes)
    engine.cancel(job, handle)
    (put,) = fake.api_requests("PUT")
    assert put.path == f"/fal-ai/kling-video/requests/{handle['request_id']}/cancel"
    assert fake.jobs[handle["request_id"]].canceled


def test_cancel_is_best_effort(engine: FalEngine, fake: FakeFal) -> None:
    job = kling()
    handle = engine.submit(job)
    engine.cancel(job, {**handle, "cancel_url": f"{fake.url}/fal-ai/kling-video/requests/x/cancel"})
    fake.script = [Reply.json(503, {"detail": "runner unavailable"})]
    transient(lambda: engine.cancel(job, handle))  # the caller decides about retrying


def test_expired_result_url_answers_404(engine: FalEngine, fake: FakeFal) -> None:
    fake.expire_results = True
    job = kling()
    done = helpers.finish(engine, job, engine.submit(job))
    assert requests.get(done.video_url, timeout=5).status_code == 404


def test_from_catalog(fake: FakeFal) -> None:
    engine = registry.hosted_engine("fal")
    assert isinstance(engine, FalEngine) and engine.name == "fal"


# --- refusals and failures ----------------------------------------------------------------


def test_content_policy_on_submit(engine: FalEngine, fake: FakeFal) -> None:
    error = refused(lambda: engine.submit(kling(prompt="something FORBIDDEN here")),
                    "content_policy")  # fmt: skip
    assert "flagged by a content checker" in error.message


def test_content_policy_on_result(engine: FalEngine, fake: FakeFal) -> None:
    fake.policy_on = "result"
    job = kling(prompt="something forbidden here")
    handle = engine.submit(job)
    refused(lambda: helpers.finish(engine, job, handle), "content_policy")


def test_validation_error_names_the_field(engine: FalEngine, fake: FakeFal) -> None:
    # A value fal refuses (whatever our own checks let through) comes back naming the field.
    job = dataclasses.replace(kling(), input={**kling().input, "duration": "7"})
    error = refused(lambda: engine.submit(job), "upstream_rejected")
    assert "duration: Input should be '5' or '10'" in error.message


def test_string_detail_is_read(engine: FalEngine, fake: FakeFal) -> None:
    fake.script = [Reply.json(400, {"detail": "Unsupported image format"})]
    error = refused(lambda: engine.submit(kling()), "upstream_rejected")
    assert "Unsupported image format" in error.message


def test_bad_key_is_upstream_auth(fake: FakeFal) -> None:
    wrong = FalEngine(fake.url, "wrong-secret-key")
    with pytest.raises(EngineError) as info:
        wrong.submit(kling())
    assert info.value.code == "upstream_auth"
    assert "wrong-secret-key" not in str(info.value)


def fal_error(status: int, type_: str, retryable: str | None) -> Reply:
    headers = {"X-Fal-Retryable": retryable} if retryable else {}
    body = {"detail": [{"loc": [], "msg": f"it went wrong: {type_}", "type": type_}]}
    return Reply.json(status, body, **headers)


@pytest.mark.parametrize(("reply", "code"), [
    (fal_error(504, "generation_timeout", "false"), "upstream_failed"),
    (fal_error(504, "generation_timeout", None), "upstream_failed"),
    (fal_error(500, "internal_server_error", None), "upstream_failed"),
    (fal_error(422, "image_load_error", None), "upstream_rejected"),
    (fal_error(400, "downstream_service_error", None), "upstream_rejected"),
    (Reply.json(504, {"detail": "Request timed out", "error_type": "request_timeout"},
                **{"X-Fal-Error-Type": "request_timeout"}), "upstream_failed"),
])  # fmt: skip
def test_failed_results(engine: FalEngine, fake: FakeFal, reply: Reply, code: str) -> None:
    fake.result_reply = reply
    job = kling()
    handle = engine.submit(job)
    refused(lambda: helpers.finish(engine, job, handle), code)


@pytest.mark.parametrize("reply", [
    fal_error(503, "downstream_service_unavailable", "true"),
    Reply.json(500, {"detail": "Internal Server Error"}),
    Reply(502, b"<html>Bad Gateway</html>"),
])  # fmt: skip
def test_retryable_results_are_transient(engine: FalEngine, fake: FakeFal, reply: Reply) -> None:
    fake.result_reply = reply
    job = kling()
    handle = engine.submit(job)
    error = transient(lambda: helpers.finish(engine, job, handle))
    # A typed failure that fal calls retryable is retried by submitting again; a bare
    # gateway error by reading the result again.
    assert error.resubmit == ("downstream_service_unavailable" in reply.body.decode())


def test_result_without_video_fails(engine: FalEngine, fake: FakeFal) -> None:
    fake.result_reply = Reply.json(200, {"images": [{"url": "https://x/y.png"}]})
    job = kling()
    handle = engine.submit(job)
    refused(lambda: helpers.finish(engine, job, handle), "upstream_failed")


FAULTS = {
    "500": Reply.json(500, {"detail": "Internal Server Error"}),
    "503": Reply(503, b"upstream connect error or disconnect/reset before headers"),
    "429": Reply.json(429, {"detail": "Too many requests"}, **{"Retry-After": "7"}),
    "json": Reply(200, b'{"status": "IN_PROG', {"Content-Type": "application/json"}),
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("phase", ["submit", "status", "result"])
def test_transient_faults(engine: FalEngine, fake: FakeFal, fault: str, phase: str) -> None:
    fake.queue_polls = fake.run_polls = 0
    job = kling()
    if phase == "submit":
        fake.script = [FAULTS[fault]]
        error = transient(lambda: engine.submit(job))
    else:
        handle = engine.submit(job)
        fake.script = [FAULTS[fault]] if phase == "status" else [None, FAULTS[fault]]
        error = transient(lambda: engine.poll(job, handle))
    assert error.retry_after == (7.0 if fault == "429" else None)


def test_survives_seeded_faults(fake: FakeFal) -> None:
    job = kling()
    with FakeFal(Faults(transient_rate=0.4, seed=11)) as faulty:
        faulty.queue_polls = faulty.run_polls = 2
        engine = FalEngine(faulty.url, KEY)

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
        assert faulty.injected > 0 and len(faulty.jobs) == 1


# --- shots: end frames in each endpoint's documented field ---------------------------------

END = routes.ImageInput(helpers.png(6, 8, (20, 60, 220)), "image/png")


def ended(model: str, **data: Any) -> routes.Job:
    request = {"model": model, "prompt": PROMPT, "image_url": DATA_URL, **data}
    return helpers.routed_job("fal", request, IMAGE, end_image=END)


def test_kling_sends_the_end_image_as_tail_image_url(fake: FakeFal, engine: FalEngine) -> None:
    job = ended("kling_25", duration=5)
    helpers.run(engine, job)
    (sent,) = fake.jobs.values()
    assert sent.model == "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"
    assert sent.input["image_url"] == DATA_URL and sent.input["tail_image_url"] == END.data_url()


def test_without_an_end_image_kling_sends_no_tail(fake: FakeFal, engine: FalEngine) -> None:
    engine.submit(job_for("kling_25", image=True, duration=5))
    (sent,) = fake.jobs.values()
    assert "tail_image_url" not in sent.input


def test_veo_31_ends_on_a_frame_through_its_first_last_frame_endpoint(
    fake: FakeFal, engine: FalEngine
) -> None:
    job = ended("veo-31", duration=8)
    assert job.upstream_model == "fal-ai/veo3.1/first-last-frame-to-video"
    helpers.run(engine, job)
    (sent,) = fake.jobs.values()
    assert sent.model == "fal-ai/veo3.1/first-last-frame-to-video"
    assert sent.input["first_frame_url"] == DATA_URL
    assert sent.input["last_frame_url"] == END.data_url()
    assert "image_url" not in sent.input and sent.input["duration"] == "8s"


def test_framepack_ends_on_a_frame_through_flf2v(fake: FakeFal, engine: FalEngine) -> None:
    job = ended("framepack", num_frames=60)
    helpers.run(engine, job)
    (sent,) = fake.jobs.values()
    assert sent.model == "fal-ai/framepack/flf2v"
    assert sent.input["image_url"] == DATA_URL
    assert sent.input["end_image_url"] == END.data_url()
    # The polls after the submit load no images, yet name the same endpoint.
    route = providers.route_for("framepack", job.spec.mode)
    assert route is not None
    assert routes.job_for(route, job.spec, None).upstream_model == "fal-ai/framepack/flf2v"


def test_the_first_last_frame_endpoints_require_both_images(
    fake: FakeFal, engine: FalEngine
) -> None:
    job = ended("framepack", num_frames=60)
    del job.input["end_image_url"]
    refused(lambda: engine.submit(job), "upstream_rejected")


def test_which_fal_routes_end_on_a_frame(fake: FakeFal) -> None:
    takes = {
        (model, mode): route.takes("end_image", mode)
        for model in ("kling_25", "veo-31", "framepack", "wan-25", "sora-2")
        for mode in ("text-to-video", "image-to-video")
        if (route := providers.route_for(model, mode)) is not None and route.provider == "fal"
    }
    assert takes == {
        ("kling_25", "text-to-video"): False,  # its text-to-video endpoint has no tail image
        ("kling_25", "image-to-video"): True,
        ("veo-31", "text-to-video"): False,
        ("veo-31", "image-to-video"): True,
        ("framepack", "image-to-video"): True,
        ("wan-25", "text-to-video"): False,  # Wan 2.5 preview documents no end frame
        ("wan-25", "image-to-video"): False,
        ("sora-2", "text-to-video"): False,  # Sora 2 has none anywhere
        ("sora-2", "image-to-video"): False,
    }
