"""Provider results made ours: downloaded with caps, checked, remuxed or re-encoded to the
contract's exact size, fps and length, with audio as asked and the usual previews."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from generations.core.validation import build_spec
from generations.media.encode import probe, top_level_boxes
from generations.rendering.base import EngineError
from generations.rendering.hosted import ingest
from generations.rendering.hosted.base import ResultGone, Transient
from generations.spec import GenerationSpec
from tests.fakeupstream import FakeUpstream, Reply, Request, make_mp4


def _spec(**extra: object) -> GenerationSpec:
    data = {"model": "local", "prompt": "rain on a window", "duration": 1, "resolution": "480p",
            **extra}  # fmt: skip
    return build_spec(data, test_mode=True)


def _packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]


def test_a_24fps_clip_of_another_size_is_reencoded_to_the_contract(tmp_path: Path) -> None:
    src = tmp_path / "up.mp4"
    make_mp4(src, width=320, height=240, fps=24, frames=30, audio=True)
    spec = _spec()
    seen: list[float] = []
    result = ingest.make_ours(src, spec, tmp_path, progress=seen.append)
    info = probe(result.video_path)
    assert (info["width"], info["height"], info["codec"], info["pix_fmt"]) == (
        854, 480, "h264", "yuv420p")  # fmt: skip
    assert info["fps"] == 30 and info["frame_count"] == 30
    assert info["color_space"] == "bt709"
    assert top_level_boxes(result.video_path).index("moov") < top_level_boxes(
        result.video_path).index("mdat")  # fmt: skip
    # Not asked for audio: the provider's soundtrack is dropped.
    assert not info["has_audio"] and not result.has_audio
    for path in (result.poster_path, *result.extras.values()):
        assert path.stat().st_size > 0
    assert seen and min(seen) >= 96 and max(seen) < 99.1


def test_audio_is_synthesized_when_asked_and_the_provider_sent_none(tmp_path: Path) -> None:
    src = tmp_path / "up.mp4"
    make_mp4(src, width=854, height=480, fps=30, frames=30)
    result = ingest.make_ours(src, _spec(add_audio=True), tmp_path)
    info = probe(result.video_path)
    assert info["has_audio"] and info["audio_codec"] == "aac"
    assert info["audio_sample_rate"] == 48_000 and info["audio_channels"] == 2
    assert abs(info["audio_duration"] - 1.0) < 0.05


def test_a_conforming_file_is_remuxed_without_generation_loss(tmp_path: Path) -> None:
    src = tmp_path / "up.mp4"
    make_mp4(src, width=854, height=480, fps=30, frames=30)
    result = ingest.make_ours(src, _spec(), tmp_path)
    assert _packets(result.video_path) == _packets(src)  # the very same H.264 bitstream
    assert top_level_boxes(result.video_path)[:3] == ["ftyp", "moov", "mdat"] or (
        top_level_boxes(result.video_path).index("moov")
        < top_level_boxes(result.video_path).index("mdat")
    )


def test_a_longer_clip_is_cut_and_a_shorter_one_holds_its_last_frame(tmp_path: Path) -> None:
    for frames in (75, 12):
        src = tmp_path / f"up{frames}.mp4"
        make_mp4(src, width=200, height=100, fps=30, frames=frames)
        out = tmp_path / str(frames)
        out.mkdir()
        result = ingest.make_ours(src, _spec(), out)
        assert probe(result.video_path)["frame_count"] == 30


def test_a_webm_vp9_result_becomes_h264_mp4(tmp_path: Path) -> None:
    src = tmp_path / "up.webm"
    with av.open(str(src), "w", format="webm") as container:
        stream = container.add_stream("libvpx-vp9", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 90, "yuv420p"
        for i in range(25):
            frame = av.VideoFrame.from_ndarray(
                np.full((90, 160, 3), i * 10, dtype=np.uint8), format="rgb24"
            )
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    info = probe(ingest.make_ours(src, _spec(), tmp_path).video_path)
    assert (info["codec"], info["width"], info["frame_count"]) == ("h264", 854, 30)


def test_a_file_that_is_not_a_video_fails_clearly(tmp_path: Path) -> None:
    src = tmp_path / "up.mp4"
    src.write_bytes(b"<html>Access denied</html>")
    with pytest.raises(EngineError) as err:
        ingest.make_ours(src, _spec(), tmp_path)
    assert err.value.code == "upstream_bad_output"
    assert not (tmp_path / "video.mp4").exists()


class _Files(FakeUpstream):
    def handle(self, req: Request) -> Reply:
        if req.path == "/busy":
            return Reply(503, b"try later")
        return Reply(418, b"teapot")


def test_download_caps_size_and_tells_expired_from_transient(tmp_path: Path) -> None:
    with _Files() as fake:
        url = fake.add_file(b"x" * 5000)
        dest = tmp_path / "f.bin"
        assert ingest.download(url, {}, dest, max_bytes=10_000) == 5000
        with pytest.raises(EngineError) as err:
            ingest.download(url, {}, dest, max_bytes=1000)
        assert err.value.code == "upstream_too_large" and not dest.exists()
        fake.expired.add(url.rsplit("/", 1)[1])
        with pytest.raises(ResultGone):
            ingest.download(url, {}, dest, max_bytes=10_000)
        with pytest.raises(Transient):
            ingest.download(f"{fake.url}/busy", {}, dest, max_bytes=10_000)
        with pytest.raises(EngineError) as err:
            ingest.download(f"{fake.url}/teapot", {}, dest, max_bytes=10_000)
        assert err.value.code == "upstream_failed"
    with pytest.raises(Transient):  # the server is gone: connection refused
        ingest.download(url, {}, dest, max_bytes=10_000)


class _Redirecting(FakeUpstream):
    target = ""

    def handle(self, req: Request) -> Reply:
        return Reply(302, b"", {"Location": self.target})


def test_credentials_never_follow_a_redirect_to_another_host(tmp_path: Path) -> None:
    with _Files() as storage, _Redirecting() as provider:
        file_url = storage.add_file(b"video bytes")
        provider.target = file_url
        local = provider.add_file(b"local bytes")
        dest = tmp_path / "f.bin"
        secret = {"x-goog-api-key": "gm-secret"}
        assert ingest.download(f"{provider.url}/v1beta/files/a:download", secret, dest,
                               max_bytes=100) == len(b"video bytes")  # fmt: skip
        assert provider.requests[0].headers["x-goog-api-key"] == "gm-secret"
        assert "x-goog-api-key" not in storage.requests[-1].headers
        # A redirect within the provider's own origin keeps them.
        provider.target = local
        ingest.download(f"{provider.url}/v1beta/files/b:download", secret, dest, max_bytes=100)
        assert provider.requests[-1].headers["x-goog-api-key"] == "gm-secret"
