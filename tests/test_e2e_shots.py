"""Shots end to end (issue 17): the real ASGI server and a real django-q2 cluster (on
PostgreSQL + Redis in CI's second pass), with Google (Veo 3.1, which extends clips itself)
and fal (Kling 2.5, which does not) played by the fake servers of tests/ on loopback.

- extend on a route with a native extension: the source clip goes upstream, the provider's
  combined file is read from the source's end, and our source frames are kept;
- extend on a route without one: image-to-video from the source's last frame, then joined;
- a `continue` sequence through fal: each shot starts on the previous one's last frame, and
  the stitched video is served with its exports."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import requests
from PIL import Image

from generations.media.encode import probe
from tests.fake_fal import FakeFal
from tests.fake_gemini import FakeGemini
from tests.servers import provider_site

pytestmark = pytest.mark.e2e
FAL_KEY = "fal-e2e-shots"
GEMINI_KEY = "gm-e2e-shots"
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeFal, FakeGemini]]:
    with FakeFal(key=FAL_KEY) as fal, FakeGemini(key=GEMINI_KEY, polls=1) as gemini:
        yield fal, gemini


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, fakes: tuple[FakeFal, FakeGemini]
) -> Iterator[dict[str, str]]:
    fal, gemini = fakes
    provider_env = {"FAL_KEY": FAL_KEY, "FAL_QUEUE_URL": fal.url, "GEMINI_API_KEY": GEMINI_KEY,
                    "GEMINI_API_URL": f"{gemini.url}/v1beta"}  # fmt: skip
    # Veo 3.1 is a premium model: this team's plan includes them.
    premium = "from generations.models import Plan; Plan.objects.update(premium_allowed=True)"
    data_dir = tmp_path_factory.mktemp("e2e-shots")
    with provider_site(data_dir, "shots@example.com", provider_env, premium) as site:
        yield site


def call(site: dict[str, str], method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {site['key']}"}
    return requests.request(method, site["base"] + path, headers=headers, timeout=60, **kwargs)


def wait_final(site: dict[str, str], path: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        body = call(site, "GET", path).json()
        if body["status"] in ("completed", "failed", "canceled"):
            return dict(body)
        time.sleep(0.3)
    raise AssertionError(f"{path} not final; log:\n" + Path(site["log"]).read_text()[-5000:])


def download(site: dict[str, str], url: str, dest: Path) -> Path:
    answer = requests.get(url, timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    dest.write_bytes(answer.content)
    return dest


def frames_of(path: Path) -> list[np.ndarray[Any, Any]]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def psnr(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def generate(site: dict[str, str], **fields: Any) -> dict[str, Any]:
    answer = call(site, "POST", "/api/v1/generate", json=fields)
    assert answer.status_code == 200, answer.text
    return wait_final(site, f"/api/v1/status/{answer.json()['generation_id']}")


def extend(site: dict[str, str], source_id: str, seconds: int) -> dict[str, Any]:
    answer = call(site, "POST", f"/api/v1/generations/{source_id}/extend",
                  json={"duration": seconds, "prompt": "and then the tide comes in"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["extended_from"] == source_id
    return wait_final(site, f"/api/v1/status/{answer.json()['generation_id']}")


def test_extend_on_a_route_that_extends_natively(
    site: dict[str, str], fakes: tuple[FakeFal, FakeGemini], tmp_path: Path
) -> None:
    _, gemini = fakes
    source = generate(site, model="veo-31", prompt="a lighthouse at dawn", duration=8,
                      resolution="720p")  # fmt: skip
    assert source["status"] == "completed", source
    done = extend(site, source["generation_id"], 8)
    assert done["status"] == "completed", done
    # The source clip went upstream as Veo's `video`, with no image.
    instance = gemini.last_body["instances"][0]
    assert instance["video"]["mimeType"] == "video/mp4" and "image" not in instance
    original = frames_of(download(site, source["video_url"], tmp_path / "source.mp4"))
    joined = frames_of(download(site, done["video_url"], tmp_path / "joined.mp4"))
    assert len(original) == 240 and len(joined) == 480
    assert min(psnr(joined[i], original[i]) for i in range(0, 240, 7)) >= 45
    # The continuation is the provider's part after the source, not the source again.
    assert psnr(joined[240], joined[239]) >= 25


def test_extend_on_a_route_without_continues_from_the_last_frame(
    site: dict[str, str], fakes: tuple[FakeFal, FakeGemini], tmp_path: Path
) -> None:
    fal, _ = fakes
    source = generate(site, model="kling_25", prompt="a harbour at noon", duration=5,
                      resolution="480p")  # fmt: skip
    assert source["status"] == "completed", source
    done = extend(site, source["generation_id"], 5)
    assert done["status"] == "completed", done
    original = frames_of(download(site, source["video_url"], tmp_path / "source.mp4"))
    joined = frames_of(download(site, done["video_url"], tmp_path / "joined.mp4"))
    assert len(original) == 150 and len(joined) == 300
    assert min(psnr(joined[i], original[i]) for i in range(0, 150, 7)) >= 45
    # Kling's image-to-video got the source's last frame as its image.
    submitted = [r for r in fal.api_requests("POST") if "image-to-video" in r.path][-1].json()
    sent = submitted["image_url"].split(",", 1)[1]
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(sent))).convert("RGB"))
    assert psnr(image, original[-1]) >= 40
    info = probe(tmp_path / "joined.mp4")
    assert (info["width"], info["height"], info["fps"]) == (854, 480, 30)


def test_a_continue_sequence_through_fal(site: dict[str, str], tmp_path: Path) -> None:
    shots = [{"prompt": "a kite on a beach", "duration": 5},
             {"prompt": "the kite climbs into clouds", "duration": 5}]  # fmt: skip
    answer = call(site, "POST", "/api/v1/sequences", json={
        "model": "kling_25", "resolution": "480p", "transition": "continue", "shots": shots,
    })  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = wait_final(site, f"/api/v1/sequences/{answer.json()['sequence_id']}")
    assert body["status"] == "completed", body
    assert body["frames"] == 300 and body["markers"] == [0, 5]
    stitched = frames_of(download(site, body["video_url"], tmp_path / "seq.mp4"))
    first = call(site, "GET", f"/api/v1/status/{body['shots'][0]['generation_id']}").json()
    shot0 = frames_of(download(site, first["video_url"], tmp_path / "shot0.mp4"))
    assert len(stitched) == 300 and psnr(stitched[149], shot0[-1]) >= 40
    # An export of the sequence, made by a worker on first request.
    url = f"{site['base']}/api/v1/video/{body['sequence_id']}?format=gif"
    deadline = time.monotonic() + TIMEOUT_S
    answer = requests.get(url, timeout=60)
    while answer.status_code == 202 and time.monotonic() < deadline:
        time.sleep(float(answer.headers["Retry-After"]))
        answer = requests.get(url, timeout=60)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/gif"
