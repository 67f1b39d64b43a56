"""End to end: a real ASGI server and a real django-q2 cluster, driven over HTTP.

Runs on SQLite + the ORM broker in `make test`; CI runs it again with DATABASE_URL and
REDIS_URL pointing at PostgreSQL and Redis."""

from __future__ import annotations

import http.server
import io
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from PIL import Image

from generations.media.encode import probe
from tests.servers import manage, serving

pytestmark = pytest.mark.e2e
RENDER_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def image_server() -> Iterator[str]:
    """A small real HTTP server on loopback that serves one JPEG."""
    buf = io.BytesIO()
    Image.new("RGB", (640, 360), (30, 90, 200)).save(buf, "JPEG")
    payload = buf.getvalue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/picture.jpg"
    server.shutdown()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("e2e-data")
    env = {
        **os.environ,
        "VIDEOGEN_DATA_DIR": str(data_dir),
        "VIDEOGEN_FETCH_ALLOW_HOSTS": "127.0.0.1",
        "VIDEOGEN_WORKERS": "1",
        "WEB_CONCURRENCY": "2",  # two web processes: races cross processes too
        "DJANGO_SETTINGS_MODULE": "videogen_site.settings",
    }
    env.pop("VIDEOGEN_Q_SYNC", None)
    manage(env, "migrate", "--noinput", "-v", "0")
    raw_key = manage(env, "create_api_key", "--email", "e2e@example.com", "--create-user")
    raw_key = raw_key.strip().splitlines()[-1]
    log = data_dir / "server.log"
    with serving(env, log) as base:
        yield {"base": base, "key": raw_key, "log": str(log), "data_dir": str(data_dir)}


def wait_completed(site: dict[str, str], generation_id: str) -> dict:
    headers = {"Authorization": f"Bearer {site['key']}"}
    deadline = time.monotonic() + RENDER_TIMEOUT_S
    seen = set()
    while time.monotonic() < deadline:
        body = requests.get(
            f"{site['base']}/api/v1/status/{generation_id}", headers=headers, timeout=10
        ).json()
        seen.add(body["status"])
        if body["status"] in ("completed", "failed", "canceled"):
            body["seen"] = seen
            return body
        time.sleep(0.25)
    raise AssertionError(f"not finished in time; seen {seen}\n" + Path(site["log"]).read_text())


def download_and_probe(url: str, tmp_path: Path) -> dict:
    response = requests.get(url, timeout=30)  # no key: the link is public
    assert response.status_code == 200 and response.headers["Content-Type"] == "video/mp4"
    path = tmp_path / "video.mp4"
    path.write_bytes(response.content)
    return probe(path)


def test_one_post_becomes_a_public_mp4(site: dict[str, str], tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {site['key']}"}
    submitted = requests.post(
        f"{site['base']}/api/v1/generate",
        json={"model": "local", "prompt": "neon city at night, slow drift", "duration": 2,
              "resolution": "720p", "aspect_ratio": "9:16", "seed": 1234},
        headers=headers, timeout=30,
    )  # fmt: skip
    assert submitted.status_code == 200, submitted.text
    done = wait_completed(site, submitted.json()["generation_id"])
    assert done["status"] == "completed", done
    assert done["seed"] == 1234 and done["progress"] == 100
    info = download_and_probe(done["video_url"], tmp_path)
    assert (info["width"], info["height"]) == (720, 1280)
    assert round(info["fps"]) == 30 and info["frame_count"] == 60
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    ranged = requests.get(done["video_url"], headers={"Range": "bytes=0-9"}, timeout=10)
    assert ranged.status_code == 206 and len(ranged.content) == 10


def test_image_to_video_fetches_the_image_and_renders(
    site: dict[str, str], image_server: str, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {site['key']}"}
    submitted = requests.post(
        f"{site['base']}/api/v1/generate",
        json={"model": "local", "prompt": "slow push in", "image_url": image_server,
              "duration": 1, "resolution": "480p", "aspect_ratio": "1:1"},
        headers=headers, timeout=30,
    )  # fmt: skip
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["type"] == "image-to-video"
    done = wait_completed(site, submitted.json()["generation_id"])
    assert done["status"] == "completed", done
    info = download_and_probe(done["video_url"], tmp_path)
    assert (info["width"], info["height"], info["frame_count"]) == (480, 480, 30)


def test_the_api_handler_answers_errors_in_json_and_checks_the_host(site: dict[str, str]) -> None:
    missing = requests.get(f"{site['base']}/api/v1/nowhere", timeout=10)
    assert missing.status_code == 404 and missing.json()["success"] is False
    unauthorized = requests.get(f"{site['base']}/api/v1/user", timeout=10)
    assert unauthorized.status_code == 401
    assert unauthorized.headers["Content-Length"] == str(len(unauthorized.content))
    assert unauthorized.headers["X-Content-Type-Options"] == "nosniff"
    spoofed = requests.get(
        f"{site['base']}/api/v1/models", headers={"Host": "evil.example"}, timeout=10
    )
    assert spoofed.status_code == 400


def test_the_home_page_and_static_files_are_served(site: dict[str, str]) -> None:
    home = requests.get(site["base"] + "/", timeout=10)
    assert home.status_code == 200 and "local" in home.text
    css = requests.get(site["base"] + "/static/css/site.css", timeout=10)
    assert css.status_code == 200 and "--accent" in css.text


def test_sixty_concurrent_submissions_with_twenty_left_accept_exactly_twenty(
    site: dict[str, str],
) -> None:
    """The monthly limit is reserved atomically: the race is run against the real server
    (SQLite in `make test`, PostgreSQL in CI's second run)."""
    env = {**os.environ, "VIDEOGEN_DATA_DIR": site["data_dir"]}
    raw = manage(env, "create_api_key", "--email", "race@example.com", "--create-user",
                 "--monthly-limit", "20").strip().splitlines()[-1]  # fmt: skip
    headers = {"Authorization": f"Bearer {raw}"}
    body = {"model": "local", "prompt": "race", "duration": 1, "resolution": "480p"}

    def submit(_: int) -> int:
        return requests.post(
            f"{site['base']}/api/v1/generate", json=body, headers=headers, timeout=60
        ).status_code

    with ThreadPoolExecutor(max_workers=60) as pool:
        codes = list(pool.map(submit, range(60)))
    assert sorted(codes) == [200] * 20 + [429] * 40
    user = requests.get(f"{site['base']}/api/v1/user", headers=headers, timeout=10).json()
    assert user["usage"]["current_month_usage"] == 20
    listed = requests.get(
        f"{site['base']}/api/v1/generations", params={"limit": 100}, headers=headers, timeout=10
    ).json()
    assert listed["total"] == 20


def test_ten_concurrent_batches_of_five_with_twenty_left_admit_exactly_four(
    site: dict[str, str],
) -> None:
    """A batch is admitted or refused as a whole (CONTRACT 7), atomically under the same race:
    4 batches of 5 fit in the 20 left, the other 6 are refused with nothing created."""
    env = {**os.environ, "VIDEOGEN_DATA_DIR": site["data_dir"]}
    raw = manage(env, "create_api_key", "--email", "batch-race@example.com", "--create-user",
                 "--monthly-limit", "20").strip().splitlines()[-1]  # fmt: skip
    headers = {"Authorization": f"Bearer {raw}"}
    body = {"model": "local", "prompt": "race", "duration": 1, "resolution": "480p", "count": 5}

    def submit(_: int) -> requests.Response:
        return requests.post(
            f"{site['base']}/api/v1/batches", json=body, headers=headers, timeout=60
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(submit, range(10)))
    assert sorted(r.status_code for r in answers) == [200] * 4 + [429] * 6
    refused = {r.json()["error"]["code"] for r in answers if r.status_code == 429}
    assert refused == {"monthly_limit_exceeded"}
    admitted = [r.json() for r in answers if r.status_code == 200]
    assert [b["total"] for b in admitted] == [5] * 4
    listed = requests.get(
        f"{site['base']}/api/v1/generations", params={"limit": 100}, headers=headers, timeout=10
    ).json()
    assert listed["total"] == 20
    assert {g["generation_id"] for g in listed["generations"]} == {
        gen_id for b in admitted for gen_id in b["generations"]
    }
    user = requests.get(f"{site['base']}/api/v1/user", headers=headers, timeout=10).json()
    assert user["usage"]["current_month_usage"] == 20
    # Nothing to render: the other tests' work goes first (canceling refunds each item).
    for b in admitted:
        requests.post(f"{site['base']}/api/v1/batches/{b['batch_id']}/cancel", headers=headers,
                      timeout=30)  # fmt: skip


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (CI's second run)")
def test_web_processes_share_one_rate_limit_through_redis(site: dict[str, str]) -> None:
    env = {**os.environ, "VIDEOGEN_DATA_DIR": site["data_dir"]}
    raw = manage(env, "create_api_key", "--email", "rate@example.com", "--create-user")
    raw = raw.strip().splitlines()[-1]
    manage(env, "shell", "-c",
           "from generations.core import accounts, quotas; from generations.models import User; "
           "u = User.objects.get(email='rate@example.com'); "
           "quotas.team_set_plan_limits(team=accounts.team_personal_get(user=u), "
           "requests_per_minute=30)")  # fmt: skip
    headers = {"Authorization": f"Bearer {raw}"}

    def get(_: int) -> int:
        # A new connection each time, so the two web processes share the requests.
        return requests.get(f"{site['base']}/api/v1/user", headers=headers, timeout=10).status_code

    if 60 - time.time() % 60 < 10:  # the counting window is the clock minute: skip its end
        time.sleep(11)
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(get, range(40)))
    assert codes.count(200) == 30 and codes.count(429) == 10


def test_framepack_wait_for_result_answers_complete(site: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {site['key']}"}
    response = requests.post(
        f"{site['base']}/v1/generate-video",
        json={"model": "local", "prompt": "embers rising, slow", "resolution": "480p",
              "aspect_ratio": "1:1", "num_frames": 30, "wait_for_result": True},
        headers=headers, timeout=90,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "complete" and body["video"]["url"].startswith(site["base"])
    assert response.headers["X-RateLimit-Limit"]


def test_cancel_stops_a_queued_job_and_refunds(site: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {site['key']}"}
    before = requests.get(f"{site['base']}/api/v1/user", headers=headers, timeout=10).json()
    # A long job first keeps the single worker busy, so the second one is still queued.
    long = {"model": "local", "prompt": "long", "duration": 20, "resolution": "480p"}
    requests.post(f"{site['base']}/api/v1/generate", headers=headers, json=long, timeout=30)
    short = {"model": "local", "prompt": "to cancel", "duration": 1}
    queued = requests.post(
        f"{site['base']}/api/v1/generate", headers=headers, json=short, timeout=30
    ).json()
    canceled = requests.post(
        f"{site['base']}/api/v1/generations/{queued['generation_id']}/cancel",
        headers=headers, timeout=30,
    )  # fmt: skip
    assert canceled.status_code == 200 and canceled.json()["status"] in ("canceled", "in_progress")
    done = wait_completed(site, queued["generation_id"])
    assert done["status"] == "canceled"
    after = requests.get(f"{site['base']}/api/v1/user", headers=headers, timeout=10).json()
    assert after["usage"]["current_month_usage"] == before["usage"]["current_month_usage"] + 1
