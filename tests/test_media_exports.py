from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from generations.media.encode import probe, top_level_boxes
from generations.media.exports import (
    GIF_MAX_WIDTH,
    export_gif,
    export_loop,
    export_webm,
    loop_crossfade_frames,
)
from tests.media_helpers import decode_audio, decode_yuv, make_clip, psnr, read_id, tone

W, H, FPS = 320, 180, 30


@pytest.fixture
def clip(tmp_path):
    """3 s of panning texture with a 440 Hz tone."""
    return make_clip(tmp_path / "clip.mp4", 90, 1, audio=tone(3.0, 440))


def _gif_frames(path):
    with Image.open(path) as gif:
        durations = []
        for index in range(getattr(gif, "n_frames", 1)):
            gif.seek(index)
            durations.append(gif.info["duration"])
        return gif.size, durations, gif.info.get("loop")


def test_a_gif_loops_forever_at_about_14_fps(clip, tmp_path):
    dest = export_gif(clip, tmp_path / "clip.gif")
    size, durations, loop = _gif_frames(dest)
    assert size == (W, H)  # narrower than GIF_MAX_WIDTH: never upscaled
    assert loop == 0
    assert set(durations) == {70}
    assert len(durations) == 42  # 3 s at 70 ms a frame
    assert dest.stat().st_size <= 8 * 1024 * 1024


def test_a_gif_is_at_most_480_px_wide(tmp_path):
    wide = make_clip(tmp_path / "wide.mp4", 15, 1, width=640, height=360)
    size, _durations, _loop = _gif_frames(export_gif(wide, tmp_path / "wide.gif"))
    assert size == (GIF_MAX_WIDTH, 270)


def test_a_gif_steps_down_until_it_fits(clip, tmp_path):
    full = export_gif(clip, tmp_path / "full.gif")
    bound = full.stat().st_size // 4
    small = export_gif(clip, tmp_path / "small.gif", max_bytes=bound)
    assert small.stat().st_size <= bound
    (w, _h), durations, loop = _gif_frames(small)
    assert loop == 0
    # Fewer frames a second, or fewer pixels, or both; still the whole 3 s.
    assert len(durations) < 42 or w < W
    assert sum(durations) == pytest.approx(3000, abs=max(durations))


def test_a_gif_that_cannot_fit_is_refused(clip, tmp_path):
    with pytest.raises(ValueError):
        export_gif(clip, tmp_path / "tiny.gif", max_bytes=2_000)
    assert not (tmp_path / "tiny.gif").exists()


def test_a_webm_is_vp9_with_opus(clip, tmp_path):
    dest = export_webm(clip, tmp_path / "clip.webm")
    info = probe(dest)
    assert (info["codec"], info["pix_fmt"]) == ("vp9", "yuv420p")
    assert info["color_space"] == info["color_primaries"] == info["color_trc"] == "bt709"
    assert (info["width"], info["height"], info["frame_count"]) == (W, H, 90)
    assert info["duration"] == pytest.approx(3.0, abs=1 / FPS)
    assert (info["audio_codec"], info["audio_sample_rate"], info["audio_channels"]) == (
        "opus",
        48_000,
        2,
    )
    frames = decode_yuv(dest)
    assert read_id(frames[45][:H]) == (1, 45)
    assert psnr(frames[45], decode_yuv(clip)[45]) > 30
    sound = decode_audio(dest)
    assert np.sqrt(np.mean(sound[10_000:100_000, 0] ** 2)) == pytest.approx(0.3 / np.sqrt(2), 0.1)


def test_a_webm_of_a_silent_clip_has_no_audio(tmp_path):
    silent = make_clip(tmp_path / "silent.mp4", 20, 1)
    info = probe(export_webm(silent, tmp_path / "silent.webm"))
    assert info["codec"] == "vp9" and not info["has_audio"]


def test_a_loop_ends_where_it_starts(clip, tmp_path):
    dest = export_loop(clip, tmp_path / "loop.mp4")
    fade = loop_crossfade_frames(90, FPS)
    assert fade == 15
    info = probe(dest)
    assert (info["codec"], info["pix_fmt"], info["color_space"]) == ("h264", "yuv420p", "bt709")
    assert info["frame_count"] == 90 - fade
    assert info["duration"] == pytest.approx((90 - fade) / FPS, abs=1 / FPS)
    assert info["audio_duration"] == pytest.approx((90 - fade) / FPS, abs=0.025)
    boxes = top_level_boxes(dest)
    assert boxes.index("moov") < boxes.index("mdat")
    loop = decode_yuv(dest)
    source = decode_yuv(clip)
    # Starts on source frame 15, ends on source frame 14: played again, the wrap from the
    # last frame to the first is one ordinary frame step.
    assert read_id(loop[0][:H]) == (1, fade)
    assert psnr(loop[0], source[fade]) > 35
    assert psnr(loop[-1], source[fade - 1]) > 35
    assert read_id(loop[-1][:H]) == (1, fade - 1)
    step = min(psnr(loop[i], loop[i + 1]) for i in range(len(loop) - 1))
    assert psnr(loop[-1], loop[0]) >= step - 1
    # The sound wraps without a click too.
    sound = decode_audio(dest)[: (90 - fade) * 1600, 0]
    own_step = np.abs(np.diff(sound)).max()
    assert abs(float(sound[-1] - sound[0])) < 1.5 * own_step


def test_a_short_clip_loops_over_a_shorter_crossfade(tmp_path):
    short = make_clip(tmp_path / "short.mp4", 12, 1)
    assert probe(export_loop(short, tmp_path / "loop.mp4"))["frame_count"] == 12 - 4
    with pytest.raises(ValueError):
        export_loop(make_clip(tmp_path / "two.mp4", 2, 1), tmp_path / "none.mp4")
    assert not (tmp_path / "none.mp4").exists()


@pytest.mark.parametrize("export", [export_gif, export_webm, export_loop])
def test_an_unusable_input_is_refused(tmp_path, export):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(ValueError):
        export(junk, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("frames", [30, 90])
def test_a_webm_keeps_every_frame_of_clips_longer_than_the_encoders_lookahead(tmp_path, frames):
    # VP9 holds frames back (lag-in-frames); they must come out in time order, not bunched.
    source = make_clip(tmp_path / "long.mp4", frames, 1)
    info = probe(export_webm(source, tmp_path / "long.webm"))
    assert info["frame_count"] == frames and info["duration"] == pytest.approx(frames / 30)
