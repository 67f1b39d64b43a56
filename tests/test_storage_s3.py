"""Media in an S3-compatible bucket (VIDEOGEN_STORAGE_URL=s3://bucket/prefix).

The bucket lives on moto's S3 server, started on loopback by this module: a real HTTP
server that boto3 talks to exactly as it talks to AWS or MinIO. Generations run inline
(django-q2 sync mode) with the local engine; every file they make must land in the bucket
under the prefix, be served by our views (users never get an S3 URL), with byte ranges,
and go away with the generation.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client, TestCase
from django.utils import timezone
from moto.server import ThreadedMotoServer
from PIL import Image

from generations.core import library
from generations.models import Generation
from generations.ops import retention, storage
from tests.conftest import Account, body_bytes

PREFIX = "tenant-a/media"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Bucket:
    name: str
    client: Any  # a boto3 S3 client

    def list_keys(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())


@pytest.fixture
def bucket(s3_endpoint: str, settings: Any) -> Bucket:
    """A fresh bucket, and settings pointing media storage at it (as the env would)."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_S3_REGION_NAME": REGION,
    }
    name = f"videogen-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    # Assigning STORAGES fires setting_changed: Django drops its cached default_storage,
    # and the fixture's teardown puts the data-dir storage back the same way.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": storage.storage_from_url(f"s3://{name}/{PREFIX}/", env),
    }
    return Bucket(name, client)


def png_data_url() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 40)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def generate(account: Account, **extra: Any) -> Generation:
    body = {"model": "local", "prompt": "a lighthouse in fog", "duration": 1,
            "resolution": "480p", "seed": 3, **extra}  # fmt: skip
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = account.client().post("/api/v1/generate", body)
    assert response.status_code == 200, response.content
    gen = Generation.objects.get(generation_id=response.json()["generation_id"])
    assert gen.status == Generation.Status.COMPLETED, gen.error_message
    return gen


@pytest.fixture
def finished(owner: Account, bucket: Bucket, sync_tasks: None) -> Generation:
    return generate(owner)


def stored_keys(gen: Generation) -> dict[str, str]:
    fields = ("video", "poster", "preview", "spritesheet", "input_image")
    return {f: f"{PREFIX}/{getattr(gen, f).name}" for f in fields if getattr(gen, f)}


def test_a_generation_stores_every_file_in_the_bucket_under_the_prefix(
    finished: Generation, bucket: Bucket, tmp_path: Path
) -> None:
    keys = stored_keys(finished)
    assert set(keys) == {"video", "poster", "preview", "spritesheet"}
    assert set(keys.values()) <= set(bucket.list_keys())
    assert all(key.startswith(f"{PREFIX}/") for key in bucket.list_keys())
    assert bucket.read(keys["video"])[4:8] == b"ftyp"
    assert finished.video_size == len(bucket.read(keys["video"]))
    media = tmp_path / "media"
    assert not media.exists() or not any(media.rglob("*")), "nothing written to the data dir"


def test_the_public_video_streams_whole_and_by_byte_range(
    finished: Generation, bucket: Bucket
) -> None:
    url = f"/api/v1/video/{finished.generation_id}"
    original = bucket.read(stored_keys(finished)["video"])
    whole = Client().get(url)
    assert whole.status_code == 200 and whole["Content-Type"] == "video/mp4"
    assert whole["Accept-Ranges"] == "bytes" and int(whole["Content-Length"]) == len(original)
    assert body_bytes(whole) == original
    assert "amazonaws" not in str(whole.headers) and "Location" not in whole

    part = Client().get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{len(original)}"
    assert part["Content-Length"] == "100"
    assert body_bytes(part) == original[100:200]
    tail = Client().get(url, headers={"Range": "bytes=-16"})
    assert tail.status_code == 206 and body_bytes(tail) == original[-16:]
    beyond = Client().get(url, headers={"Range": f"bytes={len(original)}-"})
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(original)}"
    head = Client().head(url)
    assert head.status_code == 200 and head["Content-Length"] == str(len(original))


def test_the_poster_preview_and_spritesheet_are_served_from_the_bucket(
    finished: Generation, bucket: Bucket
) -> None:
    keys = stored_keys(finished)
    for route, field, content_type in [
        ("thumbnail", "poster", "image/jpeg"),
        ("preview", "preview", "image/webp"),
        ("spritesheet", "spritesheet", "image/jpeg"),
    ]:
        response = Client().get(f"/api/v1/{route}/{finished.generation_id}")
        assert response.status_code == 200, route
        assert response["Content-Type"] == content_type, route
        assert body_bytes(response) == bucket.read(keys[field]), route


def test_the_openai_surface_serves_every_content_variant(
    finished: Generation, owner: Account, bucket: Bucket
) -> None:
    keys = stored_keys(finished)
    base = f"/v1/videos/{finished.generation_id}/content"
    for variant, field in [("video", "video"), ("thumbnail", "poster"),
                           ("spritesheet", "spritesheet")]:  # fmt: skip
        response = owner.client().get(base, variant=variant)
        assert response.status_code == 200, (variant, response.content)
        assert body_bytes(response) == bucket.read(keys[field]), variant
    ranged = owner.client().http.get(
        base, headers={"Authorization": f"Bearer {owner.raw_key}", "Range": "bytes=100-199"}
    )
    assert ranged.status_code == 206
    assert body_bytes(ranged) == bucket.read(keys["video"])[100:200]


def test_the_share_page_and_its_files_work_logged_out(finished: Generation, bucket: Bucket) -> None:
    token = library.generation_share(generation=finished)
    keys = stored_keys(finished)
    page = Client().get(f"/s/{token}")
    assert page.status_code == 200
    assert f"/s/{token}/video.mp4" in page.content.decode()
    assert bucket.name not in page.content.decode()
    video = Client().get(f"/s/{token}/video.mp4", headers={"Range": "bytes=100-199"})
    assert video.status_code == 206
    assert body_bytes(video) == bucket.read(keys["video"])[100:200]
    poster = Client().get(f"/s/{token}/poster.jpg")
    assert poster.status_code == 200 and body_bytes(poster) == bucket.read(keys["poster"])
    preview = Client().get(f"/s/{token}/preview.webp")
    assert preview.status_code == 200 and preview["Content-Type"] == "image/webp"


def test_image_to_video_reads_its_input_image_from_the_bucket(
    owner: Account, bucket: Bucket, sync_tasks: None
) -> None:
    data_url = png_data_url()
    gen = generate(owner, prompt="make it move", image_url=data_url)
    assert gen.mode == "image-to-video"
    key = stored_keys(gen)["input_image"]
    assert key == f"{PREFIX}/inputs/{gen.generation_id}.png"
    assert bucket.read(key) == base64.b64decode(data_url.split(",", 1)[1])
    # A remix reads the stored image again (the same request with a new prompt).
    with TestCase.captureOnCommitCallbacks(execute=True):
        remix = owner.client().post(
            f"/v1/videos/{gen.generation_id}/remix", {"prompt": "make it move faster"}
        )
    assert remix.status_code == 200, remix.content
    again = Generation.objects.get(generation_id=remix.json()["id"])
    assert again.status == Generation.Status.COMPLETED and again.input_image
    assert bucket.read(stored_keys(again)["input_image"]) == bucket.read(key)


def test_deleting_a_generation_removes_its_objects(
    owner: Account, bucket: Bucket, sync_tasks: None
) -> None:
    gen = generate(owner, image_url=png_data_url())
    kept = generate(owner)
    keys = set(stored_keys(gen).values())
    assert len(keys) == 5 and keys <= set(bucket.list_keys())
    response = owner.client().http.delete(
        f"/v1/videos/{gen.generation_id}", headers={"Authorization": f"Bearer {owner.raw_key}"}
    )
    assert response.status_code == 200, response.content
    assert set(bucket.list_keys()) == set(stored_keys(kept).values())
    assert Client().get(f"/api/v1/video/{gen.generation_id}").status_code == 404


def test_the_orphan_sweep_lists_and_deletes_in_the_bucket(
    finished: Generation, bucket: Bucket
) -> None:
    stray = default_storage.save("videos/gen_killed.mp4", ContentFile(b"stray"))
    tomorrow = timezone.now() + timedelta(days=1, minutes=1)
    report = retention.sweep_orphans(now=tomorrow)
    assert report.names == [stray] and report.errors == 0
    assert set(bucket.list_keys()) == set(stored_keys(finished).values())  # the rest stays


class ReadRecorder(io.FileIO):
    """A file on disk that remembers how much each read asked for."""

    sizes: list[int]

    def read(self, size: int | None = -1) -> bytes:
        self.sizes.append(-1 if size is None else size)
        return super().read(size)


def test_uploads_stream_in_parts_rather_than_reading_the_whole_file(
    bucket: Bucket, tmp_path: Path, db: None
) -> None:
    size = 3 * storage.PART_SIZE + 12345
    path = tmp_path / "big.mp4"
    with path.open("wb") as fh:
        for _ in range(size // (1 << 20)):
            fh.write(os.urandom(1 << 20))
        fh.write(os.urandom(size % (1 << 20)))
    with ReadRecorder(path) as recorder:
        recorder.sizes = []
        name = default_storage.save("videos/big.mp4", File(recorder))
    sizes = recorder.sizes
    assert sizes and all(0 <= n <= storage.PART_SIZE for n in sizes), sizes
    head = bucket.client.head_object(Bucket=bucket.name, Key=f"{PREFIX}/{name}")
    assert head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith("-4"), "uploaded in four parts"
    # A name that is taken gets a new one, as on disk: nothing is overwritten.
    with path.open("rb") as again:
        assert default_storage.save("videos/big.mp4", File(again)) != name


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("s3://", "names no bucket"),
        ("s3:///media", "names no bucket"),
        ("gs://bucket/media", "only s3://"),
        ("bucket/media", "only s3://"),
        ("https://s3.amazonaws.com/bucket", "only s3://"),
        ("s3://Not_A_Bucket/media", "not a valid bucket name"),
        ("s3://AKIA:secret@bucket/media", "carries credentials"),
        ("s3://bucket:9000/media", "has a port"),
        ("s3://bucket/media/../other", "'..'"),
    ],
)
def test_a_malformed_storage_url_is_a_clear_configuration_error(url: str, why: str) -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        storage.storage_from_url(url, {})
    assert "VIDEOGEN_STORAGE_URL" in str(error.value) and why in str(error.value)


def test_the_storage_url_and_aws_variables_become_s3storage_options() -> None:
    assert storage.storage_from_url("", {}) == storage.FILESYSTEM
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "s3cret",
        "AWS_S3_ENDPOINT_URL": "http://minio:9000",
        "AWS_S3_REGION_NAME": "eu-west-1",
    }
    config = storage.storage_from_url("s3://videos.example-1/a/b/", env)
    assert config["BACKEND"] == "storages.backends.s3.S3Storage"
    options = config["OPTIONS"]
    assert (options["bucket_name"], options["location"]) == ("videos.example-1", "a/b")
    assert (options["access_key"], options["secret_key"]) == ("AKIAEXAMPLE", "s3cret")
    assert options["endpoint_url"] == "http://minio:9000"
    assert options["region_name"] == "eu-west-1"
    assert options["file_overwrite"] is False and options["default_acl"] is None
    bare = storage.storage_from_url("s3://videos", {})["OPTIONS"]
    assert bare["location"] == "" and bare["access_key"] is None  # boto3's own chain


def settings_in_a_new_process(url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIDEOGEN_STOR"))}
    env["DJANGO_SETTINGS_MODULE"] = "videogen_site.settings"
    if url is not None:
        env["VIDEOGEN_STORAGE_URL"] = url
    code = (
        "import sys, django; django.setup(); import videogen_site.urls\n"
        "from django.core.files.storage import storages\n"
        "print(type(storages['default']).__name__, 'boto3' in sys.modules)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_environment_variable_selects_the_storage_at_startup() -> None:
    default = settings_in_a_new_process(None)
    assert default.returncode == 0, default.stderr
    assert default.stdout.split() == ["FileSystemStorage", "False"]  # boto3 never loaded
    s3 = settings_in_a_new_process("s3://videos/prefix")
    assert s3.returncode == 0, s3.stderr
    assert s3.stdout.split()[0] == "S3Storage"
    broken = settings_in_a_new_process("gs://videos")
    assert broken.returncode != 0 and "VIDEOGEN_STORAGE_URL='gs://videos'" in broken.stderr
