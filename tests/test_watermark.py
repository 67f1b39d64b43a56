"""The invisible watermark (media/watermark.py) and Mp4Writer's `mark=`: invisible (PSNR), found
after what platforms do to a video, never found where there is none. The full-scale figures
(20 videos, 480p to 1080p) are `python -m bench.watermark`'s."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from generations.media import watermark
from generations.media.encode import Mp4Writer, i420_to_rgb, new_i420, rgb_to_i420
from generations.media.watermark import PAYLOAD_BITS, Detection, Mark
from tests.media_helpers import id_frame, local_video, make_clip, psnr, transcode

SECONDS = 4.0
PAYLOAD = 0xC0FFEE42
PROMPT = "a calm ocean at sunset, gentle waves"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 480p local-engine clip marked and the same clip unmarked, and a portrait one."""
    root = tmp_path_factory.mktemp("watermark")
    return {
        "marked": local_video(
            root / "marked.mp4", PROMPT, width=854, height=480, seconds=SECONDS, mark=Mark(PAYLOAD)
        ),
        "plain": local_video(root / "plain.mp4", PROMPT, width=854, height=480, seconds=SECONDS),
        "portrait": local_video(
            root / "portrait.mp4",
            "neon city street at night",
            width=480,
            height=854,
            seconds=3.0,
            seed=7,
            mark=Mark(PAYLOAD),
        ),
    }


def attack(src: Path, dst: Path, name: str) -> Path:
    middle = (SECONDS - 2.0) / 2
    if name == "crf30":
        return transcode(src, dst, crf=30)
    if name == "half":
        return transcode(src, dst, scale=0.5)
    if name == "cut":
        return transcode(src, dst, start=middle, seconds=2.0)
    return transcode(src, dst, crf=30, scale=0.5, start=middle, seconds=2.0)


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]


def test_a_mark_is_a_payload_of_payload_bits() -> None:
    assert Mark(0).payload == 0
    assert Mark((1 << PAYLOAD_BITS) - 1).code().shape == (watermark.CODE_BITS,)
    with pytest.raises(ValueError):
        Mark(1 << PAYLOAD_BITS)
    with pytest.raises(ValueError):
        Mark(-1)
    assert len({Mark.random().payload for _ in range(20)}) == 20


def test_marked_frames_are_within_40_db_of_the_unmarked(clips: dict[str, Path]) -> None:
    mark = Mark(PAYLOAD)
    for index, buffer in enumerate(frames_of(clips["plain"])[::15]):
        before = i420_to_rgb(buffer, 854, 480)
        plain_y = buffer[:480].copy()
        watermark.embed_i420(buffer, 854, 480, mark, index)
        assert not np.array_equal(buffer[:480], plain_y)
        assert psnr(plain_y, buffer[:480]) >= 40.0
        assert psnr(before, i420_to_rgb(buffer, 854, 480)) >= 40.0


def test_a_marked_clip_is_recognised(clips: dict[str, Path]) -> None:
    found = watermark.detect(clips["marked"])
    assert found == Detection(True, PAYLOAD, found.score, int(SECONDS * 30))
    assert found.score > 2 * watermark.MIN_SCORE


@pytest.mark.parametrize("name", ["crf30", "half", "cut", "all"])
def test_a_marked_clip_is_recognised_after_an_attack(
    clips: dict[str, Path], tmp_path: Path, name: str
) -> None:
    attacked = attack(clips["marked"], tmp_path / "attacked.mp4", name)
    found = watermark.detect(attacked)
    assert found.found
    assert found.payload == PAYLOAD


def test_a_portrait_clip_is_recognised_after_all_three(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    attacked = transcode(
        clips["portrait"], tmp_path / "a.mp4", crf=30, scale=0.5, start=0.5, seconds=2.0
    )
    assert watermark.detect(attacked).payload == PAYLOAD


def test_unmarked_clips_are_not_recognised(clips: dict[str, Path], tmp_path: Path) -> None:
    plain = clips["plain"]
    candidates = [plain, attack(plain, tmp_path / "all.mp4", "all")]
    candidates.append(make_clip(tmp_path / "texture.mp4", 60, shot=3, width=320, height=180))
    for path in candidates:
        result = watermark.detect(path)
        assert not result.found
        assert result.payload is None
        assert result.score < watermark.MIN_SCORE


def test_unmarked_frames_score_low_whatever_the_key(clips: dict[str, Path]) -> None:
    """The evidence does not depend on the key: other keys are other chances to be fooled."""
    evidence = watermark.read_evidence(clips["plain"])
    results = [evidence.result(key=f"other/{k}".encode()) for k in range(100)]
    assert not any(r.found for r in results)
    assert max(r.score for r in results) < watermark.MIN_SCORE
    # And the marked clip read with another key looks unmarked too.
    marked = watermark.read_evidence(clips["marked"])
    assert not marked.result(key=b"other").found


def test_rgb_and_i420_frames_are_marked_alike(tmp_path: Path) -> None:
    """`write` (RGB, converted by swscale) marks as `write_i420` does; the caller's buffer is
    left as it was."""
    mark = Mark(12345)
    frames = [id_frame(1, i, 320, 180) for i in range(60)]
    with Mp4Writer(tmp_path / "rgb.mp4", 320, 180, 30, mark=mark) as writer:
        for frame in frames:
            writer.write(frame)
    with Mp4Writer(tmp_path / "i420.mp4", 320, 180, 30, mark=mark) as writer:
        for frame in frames:
            buffer = rgb_to_i420(frame)
            kept = buffer.copy()
            writer.write_i420(buffer)
            assert np.array_equal(buffer, kept)
    for name in ("rgb.mp4", "i420.mp4"):
        assert watermark.detect(tmp_path / name).payload == 12345


def test_detect_frames_reads_rgb_and_luma() -> None:
    mark = Mark(777)
    buffers = []
    for i in range(30):
        buffer = rgb_to_i420(id_frame(2, i, 320, 180))
        watermark.embed_i420(buffer, 320, 180, mark, i)
        buffers.append(buffer)
    assert watermark.detect_frames(b[:180] for b in buffers).payload == 777
    assert watermark.detect_frames(i420_to_rgb(b, 320, 180) for b in buffers).payload == 777
    assert not watermark.detect_frames(id_frame(2, i, 320, 180) for i in range(30)).found


def test_detect_reads_only_the_first_max_seconds(clips: dict[str, Path]) -> None:
    found = watermark.detect(clips["marked"], max_seconds=1.0)
    assert found.frames == 30
    assert found.payload == PAYLOAD


def test_nothing_is_found_in_a_file_without_video(tmp_path: Path) -> None:
    path = tmp_path / "sound.m4a"
    with av.open(str(path), mode="w", format="mp4") as out:
        stream = out.add_stream("aac", rate=48_000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 48_000
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert watermark.detect(path) == Detection(False, None, 0.0, 0)


def test_an_unmarked_writer_leaves_frames_alone(tmp_path: Path) -> None:
    buffer = new_i420(64, 64)
    buffer[...] = 128
    with Mp4Writer(tmp_path / "flat.mp4", 64, 64, 30, crf=0) as writer:
        writer.write_i420(buffer)
    assert np.array_equal(frames_of(tmp_path / "flat.mp4")[0], buffer)
