"""The Framepack-compatible endpoint: submit, poll, wait, errors."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from generations import tasks
from generations.core import lifecycle, quotas
from generations.models import Generation
from tests.conftest import Account


def image_data_url() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (96, 64), (220, 160, 40)).save(buf, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


REFERENCE = {
    "model": "local",
    "prompt": "A jellyfish glowing in an inky-black ocean",
    "negative_prompt": "Ugly, blurry distorted, bad quality",
    "aspect_ratio": "16:9",
    "resolution": "480p",
    "cfg_scale": 1,
    "guidance_scale": 10,
    "num_frames": 45,
    "enable_safety_checker": True,
}


def test_a_submit_answers_pending_with_a_request_id(owner: Account) -> None:
    response = owner.client().post(
        "/v1/generate-video", {**REFERENCE, "image_url": image_data_url()}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"request_id", "status", "model", "created"}
    assert body["status"] == "pending" and body["model"] == "local"
    gen = Generation.objects.get(request_id=body["request_id"])
    assert (gen.num_frames, gen.duration, gen.cfg_scale, gen.guidance_scale) == (45, 2, 1.0, 10.0)
    assert gen.negative_prompt.startswith("Ugly") and gen.enable_safety_checker
    assert response["X-RateLimit-Limit"] == "600"


def test_polling_with_only_the_request_id(owner: Account) -> None:
    submitted = owner.client().post("/v1/generate-video", REFERENCE).json()
    poll = owner.client().post("/v1/generate-video", {"request_id": submitted["request_id"]})
    assert poll.json()["status"] == "pending"
    gen = Generation.objects.get(request_id=submitted["request_id"])
    assert tasks.generation_run(gen.pk) == "completed"
    done = owner.client().post("/v1/generate-video", {"request_id": submitted["request_id"]}).json()
    assert done["status"] == "success"
    assert done["video"]["url"].endswith(f"/api/v1/video/{gen.generation_id}")


def test_a_failed_generation_polls_as_failed_with_the_reason(owner: Account) -> None:

    submitted = owner.client().post("/v1/generate-video", REFERENCE).json()
    gen = Generation.objects.get(request_id=submitted["request_id"])
    lifecycle.fail(generation=gen, code="engine_error", message="boom")
    body = owner.client().post("/v1/generate-video", {"request_id": submitted["request_id"]}).json()
    assert body["status"] == "failed" and body["error"] == {
        "code": "engine_error",
        "message": "boom",
    }


def test_waiting_past_the_limit_is_a_504_with_the_request_id(owner: Account, settings: Any) -> None:
    settings.VIDEOGEN_WAIT_TIMEOUT = 0.5
    response = owner.client().post("/v1/generate-video", {**REFERENCE, "wait_for_result": True})
    assert response.status_code == 504
    body = response.json()
    assert (
        body["status"] == "pending"
        and Generation.objects.filter(request_id=body["request_id"]).exists()
    )


def test_waiting_on_a_finished_job_answers_complete(owner: Account) -> None:
    submitted = owner.client().post("/v1/generate-video", REFERENCE).json()
    gen = Generation.objects.get(request_id=submitted["request_id"])
    tasks.generation_run(gen.pk)
    body = (
        owner.client()
        .post(
            "/v1/generate-video", {"request_id": submitted["request_id"], "wait_for_result": True}
        )
        .json()
    )
    assert body["status"] == "complete" and body["video"]["url"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"num_frames": 0}, "num_frames"),
        ({"num_frames": "many"}, "num_frames"),
        ({"aspect_ratio": "5:1"}, "aspect_ratio"),
        ({"resolution": "8K"}, "resolution"),
        ({"cfg_scale": "high"}, "cfg_scale"),
        ({"guidance_scale": -1}, "guidance_scale"),
        ({"enable_safety_checker": "maybe"}, "enable_safety_checker"),
        ({"wait_for_result": "yes"}, "wait_for_result"),
        ({"prompt": ""}, "prompt"),
    ],
)
def test_every_reference_field_is_validated(owner: Account, change: dict, field: str) -> None:
    response = owner.client().post("/v1/generate-video", {**REFERENCE, **change})
    assert response.status_code == 400 and response.json()["error"]["field"] == field


def test_framepack_itself_needs_an_image_and_an_engine(owner: Account, tester: Account) -> None:
    with_image = {**REFERENCE, "model": "framepack", "image_url": image_data_url()}
    no_engine = owner.client().post("/v1/generate-video", with_image)
    assert no_engine.status_code == 400 and no_engine.json()["error"]["code"] == "model_unavailable"
    no_image = tester.client().post("/v1/generate-video", {**REFERENCE, "model": "framepack"})
    assert no_image.status_code == 400 and no_image.json()["error"]["field"] == "image_url"
    ok = tester.client().post("/v1/generate-video", with_image)
    assert ok.status_code == 200 and ok.json()["test_mode"] is True


def test_unknown_request_ids_are_404_and_malformed_ones_400(owner: Account) -> None:
    missing = owner.client().post(
        "/v1/generate-video", {"request_id": "2f1c1b9e-0000-4000-8000-000000000000"}
    )
    assert missing.status_code == 404
    bad = owner.client().post("/v1/generate-video", {"request_id": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "request_id"


def test_another_teams_request_id_is_a_404(owner: Account, outsider: Account) -> None:
    submitted = owner.client().post("/v1/generate-video", REFERENCE).json()
    poll = outsider.client().post("/v1/generate-video", {"request_id": submitted["request_id"]})
    assert poll.status_code == 404


def test_no_credits_left_is_a_402(owner: Account) -> None:
    from decimal import Decimal

    quotas.team_grant_credits(team=owner.team, amount=Decimal("0.10"))
    response = owner.client().post("/v1/generate-video", REFERENCE)
    assert (
        response.status_code == 402 and response.json()["error"]["code"] == "insufficient_credits"
    )
