"""Status, list, user, models and the public video link."""

from __future__ import annotations

from typing import Any

import pytest

from generations.media.encode import probe
from generations.models import Generation
from tests.asgi_client import AsgiClient
from tests.conftest import Account, body_bytes


@pytest.fixture
def finished(owner: Account, sync_tasks: None, django_capture_on_commit_callbacks: Any) -> dict:
    with django_capture_on_commit_callbacks(execute=True):
        body = (
            owner.client()
            .post(
                "/api/v1/generate",
                {
                    "model": "local",
                    "prompt": "aurora over snow",
                    "duration": 1,
                    "resolution": "480p",
                    "seed": 7,
                },
            )
            .json()
        )
    return owner.client().get(f"/api/v1/status/{body['generation_id']}").json()


def test_a_finished_generation_reports_its_video_and_timings(finished: dict) -> None:
    assert finished["status"] == "completed" and finished["progress"] == 100
    assert finished["video_url"].endswith(f"/api/v1/video/{finished['generation_id']}")
    assert finished["thumbnail_url"].endswith(f"/api/v1/thumbnail/{finished['generation_id']}")
    assert isinstance(finished["processing_time"], int)
    assert len(finished["completed_at"]) == len("2025-01-04 00:08:42")
    assert finished["seed"] == 7 and "error" not in finished


def test_the_public_video_needs_no_key_and_is_an_mp4_of_the_asked_size(
    finished: dict, tmp_path: Any
) -> None:
    response = AsgiClient().get(f"/api/v1/video/{finished['generation_id']}")
    assert response.status_code == 200 and response["Content-Type"] == "video/mp4"
    assert response["Accept-Ranges"] == "bytes"
    path = tmp_path / "out.mp4"
    path.write_bytes(body_bytes(response))
    info = probe(path)
    assert (info["width"], info["height"], info["frame_count"]) == (854, 480, 30)
    assert info["codec"] == "h264"


def test_the_video_serves_byte_ranges(finished: dict) -> None:
    url = f"/api/v1/video/{finished['generation_id']}"
    whole = body_bytes(AsgiClient().get(url))
    part = AsgiClient().get(url, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 10-99/{len(whole)}"
    assert body_bytes(part) == whole[10:100]
    tail = AsgiClient().get(url, headers={"Range": "bytes=-16"})
    assert body_bytes(tail) == whole[-16:]
    beyond = AsgiClient().get(url, headers={"Range": f"bytes={len(whole)}-"})
    assert beyond.status_code == 416


def test_the_thumbnail_and_preview_are_public_too(finished: dict) -> None:
    response = AsgiClient().get(f"/api/v1/thumbnail/{finished['generation_id']}")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert finished["preview_url"].endswith(f"/api/v1/preview/{finished['generation_id']}")
    response = AsgiClient().get(f"/api/v1/preview/{finished['generation_id']}")
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert body_bytes(response)[8:12] == b"WEBP"


def test_unfinished_or_unknown_videos_are_404(owner: Account) -> None:
    body = owner.client().post("/api/v1/generate", {"model": "local", "prompt": "x"}).json()
    assert AsgiClient().get(f"/api/v1/video/{body['generation_id']}").status_code == 404
    assert AsgiClient().get("/api/v1/video/gen_doesnotexist").status_code == 404


def test_another_teams_generation_is_a_404(owner: Account, outsider: Account) -> None:
    body = owner.client().post("/api/v1/generate", {"model": "local", "prompt": "x"}).json()
    response = outsider.client().get(f"/api/v1/status/{body['generation_id']}")
    assert response.status_code == 404
    assert owner.client().get(f"/api/v1/status/{body['generation_id']}").status_code == 200


def test_generations_are_listed_newest_first_with_paging(owner: Account, outsider: Account) -> None:
    for i in range(5):
        owner.client().post("/api/v1/generate", {"model": "local", "prompt": f"p{i}"})
    outsider.client().post("/api/v1/generate", {"model": "local", "prompt": "theirs"})
    page1 = owner.client().get("/api/v1/generations", page=1, limit=2).json()
    assert (page1["total"], page1["page"], page1["limit"], page1["has_more"]) == (5, 1, 2, True)
    assert [g["prompt"] for g in page1["generations"]] == ["p4", "p3"]
    page3 = owner.client().get("/api/v1/generations", page=3, limit=2).json()
    assert [g["prompt"] for g in page3["generations"]] == ["p0"] and page3["has_more"] is False
    bad = owner.client().get("/api/v1/generations", limit=1000)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "limit"


def test_user_shows_team_usage_and_limit(owner: Account) -> None:
    owner.client().post("/api/v1/generate", {"model": "local", "prompt": "x"})
    body = owner.client().get("/api/v1/user").json()
    assert body["user"]["email"] == "alice@example.com"
    assert body["usage"]["current_month_usage"] == 1
    assert body["usage"]["monthly_limit"] == 100 and body["usage"]["remaining"] == 99
    assert body["api_key"]["key"].endswith(owner.raw_key[-4:])
    assert owner.raw_key not in str(body)


def test_models_lists_the_whole_catalog_with_availability(transactional_db: None) -> None:
    body = AsgiClient().get("/api/v1/models").json()
    by_key = {m["key"]: m for m in body["models"]}
    expected = {"sora-2", "higgsfield_v1", "kling_25", "veo_3", "nanobanana-video", "pixverse",
                "ltxv-13b", "veo-31", "seedance", "wan-25", "framepack", "local"}  # fmt: skip
    assert set(by_key) == expected
    assert by_key["local"]["available"] is True and by_key["local"]["procedural"] is True
    assert "ignored" in by_key["local"]["parameters"]["cfg_scale"]
    assert by_key["veo_3"]["premium"] is True and by_key["veo_3"]["available"] is False
    assert by_key["ltxv-13b"]["resolutions"] == ["480p"]
    assert by_key["wan-25"]["durations"]["min"] == 1 and by_key["wan-25"]["durations"]["max"] == 30


def test_a_completed_generation_stored_its_files(finished: dict) -> None:
    gen = Generation.objects.get(generation_id=finished["generation_id"])
    assert gen.video.name.endswith(".mp4") and gen.poster and gen.video_size > 0


def test_cancel_on_the_api_stops_a_queued_job_and_refunds(
    owner: Account, outsider: Account
) -> None:
    body = owner.client().post("/api/v1/generate", {"model": "local", "prompt": "x"}).json()
    url = f"/api/v1/generations/{body['generation_id']}/cancel"
    assert outsider.client().post(url, {}).status_code == 404
    canceled = owner.client().post(url, {})
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert owner.client().get("/api/v1/user").json()["usage"]["current_month_usage"] == 0
    again = owner.client().post(url, {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_final"
    from generations import tasks

    assert tasks.generation_run(Generation.objects.get().pk).startswith("skipped")


def test_a_file_deleted_out_of_band_is_a_404_not_a_server_error(finished: dict) -> None:
    from generations.models import Generation

    gen = Generation.objects.get(generation_id=finished["generation_id"])
    gen.video.storage.delete(gen.video.name)  # e.g. an operator cleaned the media folder
    response = AsgiClient().get(f"/api/v1/video/{gen.generation_id}")
    assert response.status_code == 404
