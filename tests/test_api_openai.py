"""The OpenAI-compatible /v1/videos, driven by the official `openai` SDK over real HTTP."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from generations.core import accounts, apikeys
from generations.models import Generation, User

openai = pytest.importorskip("openai", reason="the openai SDK is a test dependency")


@pytest.fixture
def client(live_server: Any, transactional_db: None, sync_tasks: None) -> Iterator[Any]:
    """An SDK client on a live server; jobs render inline (django-q2 sync mode)."""
    user = accounts.user_create(email="sdk@example.com", password="a long pass phrase 9")
    team = accounts.team_personal_get(user=user)
    _, raw = apikeys.api_key_create(team=team, user=user, name="sdk")
    sdk = openai.OpenAI(base_url=live_server.url + "/v1", api_key=raw, max_retries=0)
    yield sdk
    sdk.close()


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (160, 90), (30, 160, 220)).save(buf, "PNG")
    return buf.getvalue()


def test_create_and_poll_then_download_every_variant(client: Any) -> None:
    video = client.videos.create_and_poll(
        model="local", prompt="A paper lantern drifting over a lake", seconds="4", size="1280x720"
    )
    assert video.status == "completed" and video.object == "video" and video.progress == 100
    assert (video.size, video.seconds, video.model) == ("1280x720", "4", "local")
    mp4 = client.videos.download_content(video.id, variant="video").read()
    assert mp4[4:8] == b"ftyp"
    thumb = client.videos.download_content(video.id, variant="thumbnail").read()
    assert thumb[:3] == b"\xff\xd8\xff" or thumb[8:12] == b"WEBP"
    sheet = client.videos.download_content(video.id, variant="spritesheet").read()
    assert sheet[:3] == b"\xff\xd8\xff" and len(sheet) > 1000


def test_create_with_an_uploaded_input_reference(client: Any) -> None:
    video = client.videos.create(
        model="local", prompt="slow push in", seconds="4", size="720x1280",
        input_reference=("still.png", png_bytes(), "image/png"),
    )  # fmt: skip
    gen = Generation.objects.get(generation_id=video.id)
    assert gen.mode == "image-to-video" and (gen.width, gen.height) == (720, 1280)


def test_retrieve_list_with_after_and_delete(client: Any) -> None:
    ids = [
        client.videos.create(model="local", prompt=f"clip {i}", seconds="4", size="1280x720").id
        for i in range(3)
    ]
    assert client.videos.retrieve(ids[0]).id == ids[0]
    first = client.videos.list(limit=2)
    assert [v.id for v in first.data] == [ids[2], ids[1]] and first.has_more is True
    second = client.videos.list(limit=2, after=first.data[-1].id)
    assert [v.id for v in second.data] == [ids[0]] and second.has_more is False
    assert [v.id for v in client.videos.list(limit=2)] == ids[::-1]  # auto-pagination
    deleted = client.videos.delete(ids[1])
    assert deleted.deleted is True and deleted.object == "video.deleted"
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(ids[1])


def test_remix_makes_a_new_video_from_the_original(client: Any) -> None:
    original = client.videos.create(model="local", prompt="a red kite", seconds="4",
                                    size="1280x720")  # fmt: skip
    remixed = client.videos.remix(original.id, prompt="a blue kite at dusk")
    assert remixed.id != original.id and remixed.remixed_from_video_id == original.id
    assert remixed.prompt == "a blue kite at dusk"
    source = Generation.objects.get(generation_id=original.id)
    new = Generation.objects.get(generation_id=remixed.id)
    assert (new.seed, new.duration, new.width) == (source.seed, source.duration, source.width)


def test_errors_come_in_openais_shape(client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(model="local", prompt="x", seconds="4", size="333x333")
    body = caught.value.body
    assert body["param"] == "size" and body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(model="local", prompt="x", seconds="99", size="1280x720")
    assert caught.value.body["param"] == "seconds"
    bad_key = openai.OpenAI(base_url=str(client.base_url), api_key="vg_live_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.videos.list()


def test_another_teams_video_is_not_found(client: Any) -> None:
    video = client.videos.create(model="local", prompt="mine", seconds="4", size="1280x720")
    other = accounts.user_create(email="other@example.com")
    _, raw = apikeys.api_key_create(team=accounts.team_personal_get(user=other), user=other)
    stranger = openai.OpenAI(base_url=str(client.base_url), api_key=raw, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        stranger.videos.retrieve(video.id)
    assert User.objects.count() == 2
