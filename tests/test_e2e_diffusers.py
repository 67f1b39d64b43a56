"""End to end on the diffusers engine: `manage.py serve` with VIDEOGEN_DIFFUSERS_MODELS set
starts the web server, the main cluster and the GPU cluster; tiny random pipelines saved in
a temporary folder render on the CPU inside a GPU-cluster worker, and the API hands back
MP4s of the contract's exact size."""

from __future__ import annotations

import base64
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from generations.media import c2pa_manifest
from generations.media.encode import probe
from tests.servers import manage, serving

pytestmark = pytest.mark.e2e
EXTRA_REASON = "the diffusers engine needs the `gpu` extra: pip install '.[gpu]'"
TIMEOUT_S = 180


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    pytest.importorskip("torch", reason=EXTRA_REASON)
    pytest.importorskip("diffusers", reason=EXTRA_REASON)
    from tests import tiny_pipelines

    data_dir = tmp_path_factory.mktemp("e2e-diffusers")
    wan = tiny_pipelines.save("wan-t2v", data_dir / "pipelines" / "wan")
    framepack = tiny_pipelines.save("framepack", data_dir / "pipelines" / "framepack")
    env = {
        **os.environ,
        "VIDEOGEN_DATA_DIR": str(data_dir),
        "VIDEOGEN_WORKERS": "1",
        "VIDEOGEN_GPU_WORKERS": "1",
        "DJANGO_SETTINGS_MODULE": "videogen_site.settings",
        "VIDEOGEN_DIFFUSERS_MODELS": f"wan-25={wan},framepack={framepack}",
        "VIDEOGEN_DIFFUSERS_STEPS": "wan-25=2,framepack=2",
        "VIDEOGEN_DIFFUSERS_MAX_PIXELS": str(48 * 32),
        # Two small cores: one torch thread each leaves room for the web server and x264.
        "OMP_NUM_THREADS": "1",
    }
    for name in ("VIDEOGEN_Q_SYNC", "Q_CLUSTER_NAME"):
        env.pop(name, None)
    manage(env, "migrate", "--noinput", "-v", "0")
    raw_key = manage(env, "create_api_key", "--email", "gpu@example.com", "--create-user")
    log_path = data_dir / "server.log"
    with serving(env, log_path) as base:
        yield {"base": base, "key": raw_key.strip().splitlines()[-1], "env": env, "log": log_path}


def _data_url() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 120, 40)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_diffusers_models_render_on_the_gpu_cluster(site: dict[str, Any], tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {site['key']}"}
    base = site["base"]
    requests_made = {
        "wan-25": {"prompt": "a cat walks on the beach", "aspect_ratio": "16:9"},
        "framepack": {"prompt": "waves roll in", "aspect_ratio": "1:1", "image_url": _data_url()},
    }
    ids: dict[str, str] = {}
    for model, extra in requests_made.items():
        body = {"model": model, "duration": 1, "resolution": "480p", **extra}
        response = requests.post(f"{base}/api/v1/generate", json=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        ids[model] = response.json()["generation_id"]

    deadline = time.monotonic() + TIMEOUT_S
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(ids):
        assert time.monotonic() < deadline, site["log"].read_text()[-4000:]
        for model, gid in ids.items():
            status = requests.get(f"{base}/api/v1/status/{gid}", headers=headers, timeout=10).json()
            assert status["status"] not in ("failed", "canceled"), status
            if status["status"] == "completed":
                done[model] = status
        time.sleep(0.3)

    sizes = {"wan-25": (854, 480), "framepack": (480, 480)}
    for model, gid in ids.items():
        video = requests.get(f"{base}/api/v1/video/{gid}", timeout=30)
        assert video.status_code == 200
        path = tmp_path / f"{model}.mp4"
        path.write_bytes(video.content)
        info = probe(path)
        assert (info["width"], info["height"]) == sizes[model]
        assert info["frame_count"] == 30 and info["codec"] == "h264"
        assert done[model]["thumbnail_url"]
        # Signed as trained algorithmic media of its model (issue 18). (The watermark is not
        # looked for: tiny random pipelines paint flat or noisy frames that carry no mark
        # reliably; the engine hands the mark to its writer: tests/test_provenance.py.)
        report = c2pa_manifest.read(path)
        assert report.valid and report.model == model
        assert report.digital_source_type == c2pa_manifest.TRAINED_ALGORITHMIC_MEDIA

    # The jobs went to the GPU cluster's queue, and its worker ran them.
    script = (
        "import json; from django_q.models import Task; from generations.models import Generation\n"
        "print(json.dumps({'tasks': list(Task.objects.filter(group='generations')"
        ".values_list('cluster', 'success')), 'engines': sorted(Generation.objects"
        ".values_list('engine', flat=True))}))"
    )
    out = json.loads(manage(site["env"], "shell", "-c", script).strip().splitlines()[-1])
    assert sorted(map(tuple, out["tasks"])) == [("gpu", True), ("gpu", True)]
    assert out["engines"] == ["diffusers", "diffusers"]
    # And /healthz sees the GPU cluster's heartbeat (a thread in its worker process).
    checks = requests.get(f"{base}/healthz", timeout=10).json()["checks"]
    assert checks["gpu_worker"]["ok"] is True and checks["gpu_worker"]["cluster"] == "gpu"
    log = site["log"].read_text()
    assert "GPU cluster: 1 worker(s) for framepack, wan-25" in log
    # The worker took the GPU where there is one (a CUDA machine), else the CPU.
    import torch

    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert "loaded wan-25 (WanPipeline)" in log and f"on {device}" in log
