from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from generations.media.encode import (
    PREVIEW_MAX_FRAMES,
    PREVIEW_WIDTH,
    Mp4Writer,
    PreviewCollector,
    probe,
    top_level_boxes,
    write_poster,
    write_preview,
)
from tests.media_helpers import animation_ms


def _frames(count, width=320, height=180):
    for i in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, : width // 2] = (255, 0, 0)
        frame[:, width // 2 :] = (i * 7 % 256, 128, 200)
        yield frame


def test_it_writes_exact_frames_tagged_bt709_with_faststart(tmp_path):
    path = tmp_path / "v.mp4"
    with Mp4Writer(path, 320, 180, 30) as writer:
        for frame in _frames(45):
            writer.write(frame)
    info = probe(path)
    assert (info["width"], info["height"], info["frame_count"]) == (320, 180, 45)
    assert info["fps"] == 30.0
    assert info["duration"] == pytest.approx(1.5, abs=1 / 30)
    assert (info["codec"], info["pix_fmt"]) == ("h264", "yuv420p")
    assert info["color_space"] == info["color_primaries"] == info["color_trc"] == "bt709"
    assert info["color_range"] == "tv"
    assert not info["has_audio"]
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat")


def test_it_converts_colours_with_the_bt709_matrix(tmp_path):
    path = tmp_path / "red.mp4"
    with Mp4Writer(path, 64, 64, 30) as writer:
        writer.write(np.full((64, 64, 3), (255, 0, 0), np.uint8))
    with av.open(str(path)) as container:
        yuv = next(container.decode(video=0)).to_ndarray(format="yuv420p")
    # Pure red in BT.709 limited range is Y=63, Cb=102, Cr=240 (BT.601 would give Y=81).
    assert abs(int(yuv[8, 8]) - 63) <= 2
    assert abs(int(yuv[64 + 4, 4]) - 102) <= 2
    assert abs(int(yuv[64 + 16 + 4, 4]) - 240) <= 2


def test_audio_lasts_exactly_as_long_as_the_video(tmp_path):
    path = tmp_path / "a.mp4"
    # Deliberately longer than the video: the writer trims it to the frames written.
    audio = (np.random.default_rng(0).standard_normal((48_000 * 3, 2)) * 0.1).astype(np.float32)
    with Mp4Writer(path, 160, 90, 30, audio) as writer:
        for frame in _frames(30, 160, 90):
            writer.write(frame)
    info = probe(path)
    assert info["has_audio"]
    assert (info["audio_codec"], info["audio_sample_rate"], info["audio_channels"]) == (
        "aac",
        48_000,
        2,
    )
    assert info["audio_duration"] == pytest.approx(1.0, abs=0.03)
    assert info["frame_count"] == 30


def test_odd_dimensions_are_refused(tmp_path):
    with pytest.raises(ValueError):
        Mp4Writer(tmp_path / "x.mp4", 321, 180, 30)
    with pytest.raises(ValueError):
        Mp4Writer(tmp_path / "x.mp4", 320, 181, 30)


def test_a_wrong_frame_size_is_refused_and_the_partial_file_removed(tmp_path):
    path = tmp_path / "x.mp4"
    with pytest.raises(ValueError), Mp4Writer(path, 320, 180, 30) as writer:
        writer.write(np.zeros((100, 100, 3), np.uint8))
    assert not path.exists()


def test_poster_is_a_jpeg_of_the_frame(tmp_path):
    frame = next(_frames(1, 640, 360))
    write_poster(frame, tmp_path / "p.jpg")
    with Image.open(tmp_path / "p.jpg") as img:
        assert (img.format, img.size) == ("JPEG", (640, 360))


def test_preview_is_a_short_small_animated_webp(tmp_path):
    collector = PreviewCollector(300)
    for index, frame in enumerate(_frames(300, 1280, 720)):
        collector.offer(index, frame)
    assert len(collector.frames) == PREVIEW_MAX_FRAMES
    collector.save(tmp_path / "p.webp")
    with Image.open(tmp_path / "p.webp") as img:
        assert img.format == "WEBP"
        assert img.size == (PREVIEW_WIDTH, 270)
        assert getattr(img, "n_frames", 1) == PREVIEW_MAX_FRAMES
    assert animation_ms(tmp_path / "p.webp") <= 2000


def test_preview_of_a_short_clip_uses_every_frame(tmp_path):
    frames = list(_frames(5, 320, 180))
    write_preview(frames, tmp_path / "p.webp")
    with Image.open(tmp_path / "p.webp") as img:
        assert getattr(img, "n_frames", 1) == 5
        assert img.size == (320, 180)


def _smooth_picture(width=320, height=180):
    rng = np.random.default_rng(3)
    small = (rng.random((height // 8, width // 8, 3)) * 255).astype(np.uint8)
    return np.asarray(
        Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC), np.uint8
    )


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def test_i420_conversions_round_trip():
    from generations.media.encode import i420_planes, i420_to_rgb, rgb_to_i420

    picture = _smooth_picture()
    i420 = rgb_to_i420(picture)
    assert i420.shape == (270, 320) and i420.dtype == np.uint8
    y, u, v = i420_planes(i420, 320, 180)
    assert (y.shape, u.shape, v.shape) == ((180, 320), (90, 160), (90, 160))
    assert y.min() >= 16 and y.max() <= 235
    assert _psnr(i420_to_rgb(i420, 320, 180), picture) > 35
    assert i420_to_rgb(i420, 320, 180, (160, 90)).shape == (90, 160, 3)
    # Pure red: BT.709 limited range Y=63, Cb=102, Cr=240.
    red = rgb_to_i420(np.full((4, 4, 3), (255, 0, 0), np.uint8))
    ry, ru, rv = i420_planes(red, 4, 4)
    assert abs(int(ry[0, 0]) - 63) <= 1 and abs(int(ru[0, 0]) - 102) <= 1
    assert abs(int(rv[0, 0]) - 240) <= 1


def test_i420_frames_encode_like_rgb_frames(tmp_path):
    from generations.media.encode import rgb_to_i420

    picture = _smooth_picture()
    with Mp4Writer(tmp_path / "rgb.mp4", 320, 180, 30) as writer:
        writer.write(picture)
    with Mp4Writer(tmp_path / "yuv.mp4", 320, 180, 30) as writer:
        writer.write_i420(rgb_to_i420(picture))
        with pytest.raises(ValueError):
            writer.write_i420(np.zeros((180, 320), np.uint8))
    decoded = []
    for name in ("rgb.mp4", "yuv.mp4"):
        with av.open(str(tmp_path / name)) as container:
            decoded.append(next(container.decode(video=0)).to_ndarray(format="rgb24"))
    assert abs(_psnr(decoded[0], picture) - _psnr(decoded[1], picture)) < 1.5
    assert _psnr(decoded[1], picture) > 25  # saturated random colours, 4:2:0 chroma


def test_spritesheet_is_a_grid_of_evenly_spaced_thumbnails(tmp_path):
    from generations.media.encode import SpritesheetCollector, sprite_grid, write_spritesheet

    collector = SpritesheetCollector(300)
    assert collector.indices == list(range(0, 300, 12))  # 25 evenly spaced frames
    assert collector.grid == (5, 5)
    for index, frame in enumerate(_frames(300, 640, 360)):
        collector.offer(index, frame)
    collector.save(tmp_path / "s.jpg")
    with Image.open(tmp_path / "s.jpg") as img:
        assert (img.format, img.size) == ("JPEG", (5 * 240, 5 * 135))
    assert sprite_grid(6) == (3, 2)
    assert sprite_grid(1) == (1, 1)
    write_spritesheet(list(_frames(7, 100, 60)), tmp_path / "s.webp")
    with Image.open(tmp_path / "s.webp") as img:
        # Thumbnails are never upscaled: 100 x 60 each, 3 columns x 3 rows.
        assert (img.format, img.size) == ("WEBP", (300, 180))
