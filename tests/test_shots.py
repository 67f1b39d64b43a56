"""Shots (issue 17, CONTRACT 6) over the API, rendered by the `local` engine: end frames on
every surface, extending a generation, sequences of shots, and exports."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from generations.core import quotas
from generations.media.encode import probe, top_level_boxes
from generations.models import Export, Generation, Sequence, UsageEvent
from generations.rendering.base import EngineError
from generations.rendering.local.procedural import ProceduralEngine
from tests.conftest import Account, body_bytes

BASE = {"model": "local", "resolution": "480p", "aspect_ratio": "16:9"}


def data_url(color: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> str:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, color)
    # A gradient so the frame has structure (PSNR on a flat field says little).
    pixels = np.asarray(image).copy()
    pixels[..., 0] = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :]
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def frames_of(path: str | Path) -> list[np.ndarray[Any, Any]]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def audio_of(path: str | Path) -> np.ndarray[Any, Any]:
    with av.open(str(path)) as container:
        chunks = [f.to_ndarray() for f in container.decode(audio=0)]
    return np.concatenate(chunks, axis=1)


def psnr(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def error(response: Any) -> tuple[int, str | None]:
    return response.status_code, response.json()["error"].get("field")


# --- end frames ----------------------------------------------------------------------------


def test_models_list_their_capabilities(owner: Account) -> None:
    models = {m["key"]: m for m in owner.client().get("/api/v1/models").json()["models"]}
    assert models["local"]["capabilities"] == [
        "text-to-video",
        "image-to-video",
        "end-frame",
        "extend",
    ]
    assert "end-frame" not in models["sora-2"]["capabilities"]
    assert "extend" not in models["higgsfield_v1"]["capabilities"]  # text-to-video only


def test_an_end_frame_on_every_surface(owner: Account, sync_tasks: None) -> None:
    client = owner.client()
    first, last = data_url((200, 40, 40)), data_url((40, 40, 200))
    answer = client.post(
        "/api/v1/generate",
        {
            **BASE,
            "prompt": "a door opens",
            "duration": 1,
            "image_url": first,
            "end_image_url": last,
        },
    )
    assert answer.status_code == 200, answer.content
    gen = Generation.objects.get(generation_id=answer.json()["generation_id"])
    assert gen.status == "completed" and gen.end_image and gen.end_image_url.startswith("data:")
    # Text-to-video ending on a frame, on the Framepack surface and the OpenAI one.
    answer = client.post(
        "/v1/generate-video",
        {"model": "local", "prompt": "dusk", "duration": 1, "end_image_url": last},
    )
    assert answer.status_code == 200, answer.content
    answer = client.post(
        "/v1/videos",
        {
            "model": "local",
            "prompt": "dusk",
            "seconds": "1",
            "size": "854x480",
            "end_image_url": last,
        },
    )
    assert answer.status_code == 200, answer.content
    video = Generation.objects.get(generation_id=answer.json()["id"])
    assert video.end_image


def test_a_model_without_end_frames_refuses_one_naming_the_field(tester: Account) -> None:
    answer = tester.client().post(
        "/api/v1/generate", {"model": "sora-2", "prompt": "x", "end_image_url": data_url((1, 2, 3))}
    )
    assert error(answer) == (400, "end_image_url")
    assert "end-frame" in answer.json()["error"]["message"]


def test_a_bad_end_image_is_a_400_naming_it(owner: Account) -> None:
    for bad in ("ftp://example.com/a.png", "data:image/png;base64,AAAA", "http://127.0.0.1/a.png"):
        answer = owner.client().post(
            "/api/v1/generate", {**BASE, "prompt": "x", "end_image_url": bad}
        )
        assert error(answer) == (400, "end_image_url"), bad
    assert not Generation.objects.exists()


# --- extend --------------------------------------------------------------------------------


def test_extend_three_seconds_by_two(owner: Account, sync_tasks: None) -> None:
    client = owner.client()
    made = client.post(
        "/api/v1/generate",
        {**BASE, "prompt": "waves on a beach at dusk", "duration": 3, "add_audio": True},
    )
    source_id = made.json()["generation_id"]
    used = quotas.month_usage(owner.team)
    answer = client.post(f"/api/v1/generations/{source_id}/extend", {"duration": 2})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["extended_from"] == source_id and body["duration"] == 2
    ext = Generation.objects.get(generation_id=body["generation_id"])
    assert ext.status == "completed", ext.error_message
    # Charged as a 2-second generation.
    charge = UsageEvent.objects.get(generation=ext, kind="charge")
    assert quotas.month_usage(owner.team) == used + 1
    source = Generation.objects.get(generation_id=source_id)
    assert (
        charge.credits == 2 * UsageEvent.objects.get(generation=source, kind="charge").credits / 3
    )
    joined, original = frames_of(ext.video.path), frames_of(source.video.path)
    assert len(original) == 90 and abs(len(joined) - 150) <= 1
    assert min(psnr(joined[i], original[i]) for i in range(90)) >= 45
    assert psnr(joined[90], joined[89]) >= 25
    info = probe(ext.video.path)
    assert (info["width"], info["height"], info["codec"]) == (854, 480, "h264")
    assert info["has_audio"]
    # The sound runs on across the join: no step larger than the bed's own.
    sound = audio_of(ext.video.path)
    join = round(90 / 30 * 48_000)
    steps = np.abs(np.diff(sound, axis=1))
    assert steps[:, join - 480 : join + 480].max() <= 3 * np.percentile(steps, 99.9) + 1e-3
    # ... and does not drop out: one bed runs on (each clip's own fades out and in).
    level = [
        float(np.sqrt(np.mean(sound[:, i : i + 4800] ** 2))) for i in range(0, 240_000 - 4800, 4800)
    ]
    assert min(level[10:40]) >= 0.2 * float(np.median(level))
    status = client.get(f"/api/v1/status/{ext.generation_id}").json()
    assert status["extended_from"] == source_id and status["video_url"]


def test_extend_needs_a_completed_generation_of_ones_team(
    owner: Account, outsider: Account
) -> None:
    made = owner.client().post("/api/v1/generate", {**BASE, "prompt": "x", "duration": 1})
    gen_id = made.json()["generation_id"]  # waiting: no worker in this test
    answer = owner.client().post(f"/api/v1/generations/{gen_id}/extend", {"duration": 2})
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "not_completed"
    answer = outsider.client().post(f"/api/v1/generations/{gen_id}/extend", {"duration": 2})
    assert answer.status_code == 404
    Generation.objects.filter(generation_id=gen_id).update(status="completed", video="v.mp4")
    answer = owner.client().post(f"/api/v1/generations/{gen_id}/extend", {"duration": 99})
    assert error(answer) == (400, "duration")
    answer = owner.client().post(f"/api/v1/generations/{gen_id}/extend", {})
    assert error(answer) == (400, "duration")
    answer = owner.client().post(
        f"/api/v1/generations/{gen_id}/extend", {"duration": 1, "model": "sora-2"}
    )
    assert error(answer) == (400, "model")


# --- sequences -----------------------------------------------------------------------------


def sequence(account: Account, transition: str, shots: list[dict[str, Any]], **more: Any) -> Any:
    return account.client().post(
        "/api/v1/sequences", {**BASE, "transition": transition, "shots": shots, **more}
    )


THREE = [
    {"prompt": "a red lantern on a pier", "duration": 2},
    {"prompt": "a lantern drifting over the sea", "duration": 1},
    {"prompt": "a lantern in a starry sky", "duration": 2},
]


@pytest.mark.parametrize("transition", ["continue", "crossfade"])
def test_a_three_shot_sequence(owner: Account, sync_tasks: None, transition: str) -> None:
    answer = sequence(owner, transition, THREE, add_audio=True)
    assert answer.status_code == 200, answer.content
    made = answer.json()
    assert made["sequence_id"].startswith("seq_") and len(made["generations"]) == 3
    body = owner.client().get(f"/api/v1/sequences/{made['sequence_id']}").json()
    assert body["status"] == "completed", body
    overlap = 15 if transition == "crossfade" else 0
    frames = 5 * 30 - 2 * overlap
    assert body["frames"] == frames and body["duration"] == pytest.approx(frames / 30)
    # Shot boundaries: where each shot starts in the stitched video.
    assert body["markers"] == pytest.approx([0, (60 - overlap) / 30, (90 - 2 * overlap) / 30])
    seq = Sequence.objects.get(sequence_id=made["sequence_id"])
    info = probe(seq.video.path)
    assert info["frame_count"] == frames and (info["width"], info["height"]) == (854, 480)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["color_primaries"] == "bt709" and info["has_audio"]
    boxes = top_level_boxes(seq.video.path)
    assert boxes.index("moov") < boxes.index("mdat")  # faststart
    assert seq.poster and seq.preview and seq.spritesheet
    stitched = frames_of(seq.video.path)
    shots = [frames_of(g.video.path) for g in seq.shots.order_by("shot_index")]
    if transition == "continue":
        # Each shot starts on the previous one's last frame, and the stitch keeps every one.
        for before, after in zip(shots, shots[1:], strict=False):
            assert psnr(after[0], before[-1]) >= 30
        assert psnr(stitched[60], shots[1][0]) >= 35 and psnr(stitched[59], shots[0][-1]) >= 35
    else:
        # Outside the overlaps the shots show as they are; inside, a blend of both.
        assert psnr(stitched[30], shots[0][30]) >= 35
        # (The middle shot, 1 s, is all transition: it fades in over 15 frames and out.)
        assert psnr(stitched[75], shots[2][15]) >= 35 and psnr(stitched[-1], shots[2][-1]) >= 35
        middle = stitched[52].astype(np.float64)  # half way through the first overlap
        blend = (shots[0][52].astype(np.float64) + shots[1][7].astype(np.float64)) / 2
        assert psnr(middle, blend) >= 30
    # The public video URL serves it.
    video = owner.client().http.get(f"/api/v1/video/{made['sequence_id']}")
    assert video.status_code == 200 and video["Content-Type"] == "video/mp4"


def test_continue_shots_wait_for_the_shot_before(owner: Account) -> None:
    made = sequence(owner, "continue", THREE).json()
    shots = list(
        Generation.objects.filter(sequence__sequence_id=made["sequence_id"]).order_by("shot_index")
    )
    assert [s.queue for s in shots] == ["", "~held", "~held"]
    assert [s.mode for s in shots] == ["text-to-video", "image-to-video", "image-to-video"]
    cut = sequence(owner, "cut", THREE).json()
    assert set(
        Generation.objects.filter(sequence__sequence_id=cut["sequence_id"]).values_list(
            "queue", flat=True
        )
    ) == {""}


def test_a_failed_shot_fails_the_sequence_and_refunds_the_rest(
    owner: Account, sync_tasks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    render = ProceduralEngine.render

    def failing(self: Any, spec: Any, ctx: Any) -> Any:
        if "storm" in spec.prompt:
            raise EngineError("render_failed", "The storm could not be painted.")
        return render(self, spec, ctx)

    monkeypatch.setattr(ProceduralEngine, "render", failing)
    shots = [dict(THREE[0]), {"prompt": "a storm", "duration": 1}, dict(THREE[2])]
    made = sequence(owner, "continue", shots).json()
    body = owner.client().get(f"/api/v1/sequences/{made['sequence_id']}").json()
    assert body["status"] == "failed"
    assert body["error"]["shot"] == 1 and "Shot 2 failed" in body["error"]["message"]
    assert [s["status"] for s in body["shots"]] == ["completed", "failed", "canceled"]
    # Charged for the shot that ran; the failed one and the one that never ran refunded.
    assert quotas.month_usage(owner.team) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"shots": THREE[:1]}, "shots"),
        ({"shots": [{"prompt": "x", "duration": 1}] * 21}, "shots"),
        ({"shots": [{"prompt": "x", "duration": 60}] * 3}, "shots"),  # 180 s > 120 s
        ({"transition": "wipe"}, "transition"),
        ({"shots": [THREE[0], {"prompt": "x", "duration": 0}]}, "shots[1].duration"),
        ({"shots": [THREE[0], {"duration": 1}]}, "shots[1].prompt"),
        (
            {"shots": [THREE[0], {"prompt": "x", "duration": 1, "model": "sora-2"}]},
            "shots[1].model",
        ),
        (
            {
                "shots": [
                    THREE[0],
                    {"prompt": "x", "duration": 1, "image_url": data_url((0, 0, 0))},
                ],
                "transition": "continue",
            },
            "shots[1].image_url",
        ),
        (
            {"shots": [THREE[0], {"prompt": "x", "duration": 1, "image_url": "http://10.0.0.1/a"}]},
            "shots[1].image_url",
        ),
    ],
)
def test_bad_sequences_are_400s_naming_the_field(
    owner: Account, change: dict[str, Any], field: str
) -> None:
    request = {"transition": "cut", "shots": THREE, **change}
    answer = owner.client().post("/api/v1/sequences", {**BASE, **request})
    assert error(answer) == (400, field), answer.content
    assert not Sequence.objects.exists() and not Generation.objects.exists()


# --- exports -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "kind"), [("gif", "image/gif"), ("webm", "video/webm"), ("loop", "video/mp4")]
)
def test_exports_are_made_on_first_request(
    owner: Account, sync_tasks: None, fmt: str, kind: str
) -> None:
    made = owner.client().post("/api/v1/generate", {**BASE, "prompt": "a kite", "duration": 1})
    gen_id = made.json()["generation_id"]
    http = owner.client().http
    first = http.get(f"/api/v1/video/{gen_id}", {"format": fmt})
    assert first.status_code in (200, 202)
    if first.status_code == 202:
        assert int(first["Retry-After"]) >= 1
    again = http.get(f"/api/v1/video/{gen_id}", {"format": fmt})
    assert again.status_code == 200 and again["Content-Type"] == kind
    assert len(body_bytes(again)) > 1000
    assert Export.objects.get(generation__generation_id=gen_id, format=fmt).state == "ready"


def test_an_export_waits_for_a_worker_with_202(owner: Account) -> None:
    made = owner.client().post("/api/v1/generate", {**BASE, "prompt": "a kite", "duration": 1})
    gen_id = made.json()["generation_id"]
    Generation.objects.filter(generation_id=gen_id).update(status="completed", video="v.mp4")
    http = owner.client().http
    answer = http.get(f"/api/v1/video/{gen_id}", {"format": "gif"})
    assert answer.status_code == 202 and answer["Retry-After"] == "2"
    assert Export.objects.filter(format="gif").count() == 1
    assert http.get(f"/api/v1/video/{gen_id}", {"format": "gif"}).status_code == 202
    assert Export.objects.filter(format="gif").count() == 1  # asked twice, made once
    assert error(http.get(f"/api/v1/video/{gen_id}", {"format": "avi"})) == (400, "format")


def test_the_reaper_moves_on_a_sequence_whose_next_step_was_lost(owner: Account) -> None:
    from datetime import timedelta

    from django.utils import timezone
    from django_q.models import OrmQ

    from generations.core import sequences

    made = sequence(owner, "continue", THREE).json()
    seq = Sequence.objects.get(sequence_id=made["sequence_id"])
    Sequence.objects.filter(pk=seq.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert sequences.stalled() == []  # its first shot waits in line: it is moving
    # The first shot completed, but the step that starts the second was lost.
    Generation.objects.filter(sequence=seq, shot_index=0).update(status="completed")
    assert sequences.stalled() == [seq.pk]
    OrmQ.objects.all().delete()
    from generations import tasks

    tasks.reap_stale()
    names = [task.func() for task in OrmQ.objects.all()]
    assert "generations.tasks.sequence_advance" in names


def test_a_sequence_is_made_once_per_idempotency_key(owner: Account) -> None:
    http = owner.client().http
    body = json.dumps({**BASE, "transition": "cut", "shots": THREE})
    headers = {"Authorization": f"Bearer {owner.raw_key}", "Idempotency-Key": "story-1"}
    first = http.post("/api/v1/sequences", data=body, content_type="application/json",
                      headers=headers)  # fmt: skip
    again = http.post("/api/v1/sequences", data=body, content_type="application/json",
                      headers=headers)  # fmt: skip
    assert first.status_code == again.status_code == 200
    assert again.json()["sequence_id"] == first.json()["sequence_id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Sequence.objects.count() == 1 and Generation.objects.count() == 3
    assert quotas.month_usage(owner.team) == 3
