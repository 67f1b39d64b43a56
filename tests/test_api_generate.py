from __future__ import annotations

import base64
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from generations.core import lifecycle, quotas
from generations.core.validation import MAX_SEED
from generations.models import Generation, UsageEvent
from tests.conftest import Account, make_account

REFERENCE_FIELDS = {
    "success", "generation_id", "request_id", "status", "type", "model", "prompt", "duration",
    "resolution", "style", "fps", "aspect_ratio", "seed", "status_url", "message", "usage",
}  # fmt: skip


def png_data_url(width: int = 64, height: int = 48) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_generate_answers_with_every_reference_field(owner: Account) -> None:
    response = owner.client().post(
        "/api/v1/generate",
        {"model": "local", "prompt": "A cat in a sunny garden", "duration": 2, "seed": 42},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) >= REFERENCE_FIELDS
    assert body["success"] is True and body["generation_id"].startswith("gen_")
    uuid.UUID(body["request_id"])
    assert body["status"] in ("pending", "in_queue")
    assert body["type"] == "text-to-video"
    assert body["model"] == {"key": "local", "name": "Local (procedural)", "provider": "videogen"}
    assert (body["duration"], body["resolution"], body["fps"], body["seed"]) == (2, "720p", 30, 42)
    assert body["status_url"].endswith(f"/api/v1/status/{body['generation_id']}")
    assert body["usage"] == {"current_month_usage": 1, "monthly_limit": 100}
    assert "test_mode" not in body


def test_generation_ids_are_unguessable(owner: Account) -> None:
    ids = {
        owner.client()
        .post("/api/v1/generate", {"model": "local", "prompt": "x"})
        .json()["generation_id"]
        for _ in range(3)
    }
    assert len(ids) == 3 and all(len(i) >= 4 + 24 for i in ids)


def test_the_request_is_recorded_with_every_parameter(owner: Account) -> None:
    body = (
        owner.client()
        .post(
            "/api/v1/generate",
            {
                "model": "local",
                "prompt": "storm at sea",
                "negative_prompt": "blurry",
                "duration": 3,
                "resolution": "480p",
                "aspect_ratio": "9:16",
                "seed": -1,
                "camera_fixed": True,
                "add_audio": True,
                "audio_prompt": "waves",
            },
        )
        .json()
    )
    gen = Generation.objects.get(generation_id=body["generation_id"])
    assert (gen.width, gen.height, gen.num_frames) == (480, 854, 90)
    assert 0 <= gen.seed <= MAX_SEED  # -1 asked for a random seed: a real one was drawn
    assert gen.seed == body["seed"] and gen.seed >= 0
    assert (gen.camera_fixed, gen.add_audio, gen.audio_prompt, gen.negative_prompt) == (
        True,
        True,
        "waves",
        "blurry",
    )
    assert gen.team == owner.team and gen.user == owner.user and gen.api_key == owner.key


def test_bad_input_is_a_400_naming_the_field(owner: Account) -> None:
    response = owner.client().post("/api/v1/generate", {"model": "local", "duration": 5})
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": {
            "code": "missing_parameter",
            "message": "`prompt` is required.",
            "field": "prompt",
        },
    }
    response = owner.client().post(
        "/api/v1/generate", {"model": "local", "prompt": "x", "resolution": "8K"}
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "resolution"
    assert Generation.objects.count() == 0


def test_a_body_that_is_not_json_is_a_400(owner: Account) -> None:
    response = owner.client().http.post(
        "/api/v1/generate",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {owner.raw_key}"},
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def _raw_post(owner: Account, path: str, body: bytes) -> Any:
    return owner.client().http.post(
        path, data=body, content_type="application/json",
        headers={"Authorization": f"Bearer {owner.raw_key}"},
    )  # fmt: skip


def test_hostile_json_is_a_400_on_every_surface_never_a_500(owner: Account) -> None:
    """Nesting deeper than the parser's recursion allows (RecursionError, not ValueError),
    and a prompt holding a lone surrogate (valid JSON, but no database or file can store
    it): both were 500s. Each is a 400 naming what is wrong, and nothing is created."""
    made = owner.client().post("/api/v1/generate", {"model": "local", "prompt": "x"}).json()
    paths = ["/api/v1/generate", "/v1/videos", "/v1/generate-video",
             f"/v1/videos/{made['generation_id']}/remix"]  # fmt: skip
    deep = b"[" * 100_000 + b"]" * 100_000
    for path in paths:
        for body in (deep, b'{"a": ' + deep + b"}"):
            response = _raw_post(owner, path, body)
            assert response.status_code == 400, (path, response.status_code)
            assert response.json()["error"]["code"] == "invalid_json"
        lone = _raw_post(owner, path, b'{"model": "local", "prompt": "a \\ud800 b"}')
        assert lone.status_code == 400, (path, lone.content)
        error = lone.json()["error"]
        assert error.get("field", error.get("param")) == "prompt"  # OpenAI's shape: `param`
        assert "surrogate" in lone.json()["error"]["message"]
    # A surrogate pair is one ordinary character (an emoji), and fine.
    emoji = _raw_post(owner, "/api/v1/generate", b'{"model": "local", "prompt": "\\ud83d\\ude00"}')
    assert emoji.status_code == 200
    stored = Generation.objects.get(generation_id=emoji.json()["generation_id"])
    assert stored.prompt == "\U0001f600"
    assert Generation.objects.count() == 2


def test_the_default_model_is_unavailable_without_a_provider_and_says_so(owner: Account) -> None:
    response = owner.client().post("/api/v1/generate", {"prompt": "x"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "model" and error["code"] == "model_unavailable"
    assert "sora-2" in error["message"] and "local" in error["message"]


def test_test_keys_run_any_model_free_and_say_test_mode(tester: Account) -> None:
    response = tester.client().post("/api/v1/generate", {"model": "kling_25", "prompt": "x"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["test_mode"] is True and body["model"]["key"] == "kling_25"
    assert body["usage"]["current_month_usage"] == 0
    assert not UsageEvent.objects.exists()


def test_image_to_video_from_a_data_url_stores_the_input(owner: Account) -> None:
    response = owner.client().post(
        "/api/v1/generate",
        {"model": "local", "prompt": "make it move", "image_url": png_data_url()},
    )
    assert response.status_code == 200, response.content
    gen = Generation.objects.get(generation_id=response.json()["generation_id"])
    assert response.json()["type"] == "image-to-video"
    assert gen.input_image.name.endswith(".png") and gen.image_url.startswith("data:image/png")
    assert len(gen.image_url) < 100


def test_a_broken_image_is_a_400_on_image_url(owner: Account) -> None:
    junk = "data:image/png;base64," + base64.b64encode(b"\x89PNG not really").decode()
    response = owner.client().post(
        "/api/v1/generate", {"model": "local", "prompt": "x", "image_url": junk}
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "image_url"


def test_image_urls_on_private_addresses_are_refused(owner: Account) -> None:
    for url in ("http://127.0.0.1:9/a.png", "http://169.254.169.254/latest", "http://[::1]/a.png"):
        response = owner.client().post(
            "/api/v1/generate", {"model": "local", "prompt": "x", "image_url": url}
        )
        assert response.status_code == 400, url
        assert response.json()["error"]["field"] == "image_url"


def test_the_monthly_limit_gives_429_and_failed_generations_do_not_count(
    transactional_db: None,
) -> None:
    account = make_account("limited@example.com", monthly_limit=2)
    client = account.client()
    first = client.post("/api/v1/generate", {"model": "local", "prompt": "one"}).json()
    client.post("/api/v1/generate", {"model": "local", "prompt": "two"})
    refused = client.post("/api/v1/generate", {"model": "local", "prompt": "three"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "monthly_limit_exceeded"
    assert Generation.objects.filter(team=account.team).count() == 2

    gen = Generation.objects.get(generation_id=first["generation_id"])
    assert lifecycle.fail(generation=gen, code="engine_error", message="boom")
    again = client.post("/api/v1/generate", {"model": "local", "prompt": "three"})
    assert again.status_code == 200
    kinds = list(UsageEvent.objects.filter(team=account.team).values_list("kind", flat=True))
    assert sorted(kinds) == ["charge", "charge", "charge", "refund"]


def test_wrong_method_is_405_in_json(owner: Account) -> None:
    response = owner.client().get("/api/v1/generate")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_unknown_api_paths_are_json_404s(owner: Account) -> None:
    response = owner.client().get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json()["success"] is False


def test_a_refused_image_to_video_request_leaves_no_file_behind(
    transactional_db: None, settings: Any
) -> None:
    account = make_account("full@example.com", monthly_limit=0)
    response = account.client().post(
        "/api/v1/generate", {"model": "local", "prompt": "x", "image_url": png_data_url()}
    )
    assert response.status_code == 429
    inputs = Path(settings.MEDIA_ROOT) / "inputs"
    assert not inputs.exists() or not any(inputs.iterdir())


def test_every_monthly_limit_429_says_when_the_month_resets(
    transactional_db: None, settings: Any
) -> None:
    """Retry-After on the monthly-limit 429 (as on the rate-limit one): the seconds until
    00:00 UTC on the 1st, on every surface, and for a member's cap too."""
    account = make_account("spent@example.com", monthly_limit=0)
    now = datetime.now(UTC)
    reset = (now.replace(day=28) + timedelta(days=4)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    expected = (reset - now).total_seconds()
    client = account.client()
    for path, body in (
        ("/api/v1/generate", {"model": "local", "prompt": "x"}),
        ("/v1/videos", {"model": "local", "prompt": "x"}),
        ("/v1/generate-video", {"prompt": "x", "model": "local"}),
    ):
        refused = client.post(path, body)
        assert refused.status_code == 429, (path, refused.content)
        assert abs(int(refused["Retry-After"]) - expected) < 5, path

    team = make_account("capped@example.com", monthly_limit=100)
    quotas.team_set_plan_limits(team=team.team, member_monthly_cap=0)
    capped = team.client().post("/api/v1/generate", {"model": "local", "prompt": "x"})
    assert capped.json()["error"]["code"] == "member_limit_exceeded"
    assert abs(int(capped["Retry-After"]) - expected) < 5
