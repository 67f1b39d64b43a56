from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from generations.media.encode import i420_to_rgb, probe, top_level_boxes
from generations.media.stitch import (
    STITCH_CRF,
    StitchCanceled,
    inspect_clip,
    last_frame,
    stitch,
)
from tests.media_helpers import (
    animation_ms,
    decode_audio,
    decode_yuv,
    id_frame,
    make_clip,
    psnr,
    read_id,
    tone,
)

W, H, FPS = 320, 180, 30
RATE = 48_000


def _three_clips(tmp_path, *, audio=True):
    """45, 30 and 40 frames of shots 1, 2 and 3; the first two with a tone, the last silent."""
    first = tone(1.5, 440) if audio else None
    second = tone(1.0, 660, phase=np.pi / 2) if audio else None
    return [
        make_clip(tmp_path / "a.mp4", 45, 1, audio=first),
        make_clip(tmp_path / "b.mp4", 30, 2, audio=second),
        make_clip(tmp_path / "c.mp4", 40, 3),
    ]


def _run(clips, out, transition, audio=True, **kwargs):
    out.mkdir()
    return stitch(
        clips, out, width=W, height=H, fps=FPS, transition=transition, audio=audio, **kwargs
    )


def _assert_contract(path, frames, *, audio):
    info = probe(path)
    assert (info["codec"], info["pix_fmt"]) == ("h264", "yuv420p")
    assert (info["width"], info["height"], info["fps"]) == (W, H, 30.0)
    assert info["color_space"] == info["color_primaries"] == info["color_trc"] == "bt709"
    assert info["color_range"] == "tv"
    assert info["frame_count"] == frames
    assert info["duration"] == pytest.approx(frames / FPS, abs=1 / FPS)
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat")
    assert info["has_audio"] is audio
    if audio:
        assert (info["audio_codec"], info["audio_sample_rate"], info["audio_channels"]) == (
            "aac",
            RATE,
            2,
        )
        assert info["audio_duration"] == pytest.approx(frames / FPS, abs=0.025)


@pytest.mark.parametrize("transition", ["cut", "continue"])
def test_cut_and_continue_keep_every_frame_back_to_back(tmp_path, transition):
    clips = _three_clips(tmp_path)
    result = _run(clips, tmp_path / "out", transition)
    assert result.frame_count == 45 + 30 + 40
    assert result.markers == [0.0, 1.5, 2.5]
    assert (result.width, result.height, result.fps, result.has_audio) == (W, H, FPS, True)
    _assert_contract(result.video, 115, audio=True)
    ids = [read_id(f[:H]) for f in decode_yuv(result.video)]
    expected = [(1, i) for i in range(45)] + [(2, i) for i in range(30)]
    assert ids == expected + [(3, i) for i in range(40)]


def test_cut_between_identical_encoders_copies_the_frames_exactly(tmp_path):
    clips = _three_clips(tmp_path, audio=False)
    result = _run(clips, tmp_path / "out", "cut", audio=False)
    _assert_contract(result.video, 115, audio=False)
    source = [f for clip in clips for f in decode_yuv(clip)]
    assert all(np.array_equal(a, b) for a, b in zip(source, decode_yuv(result.video), strict=True))


def test_a_three_shot_continue_starts_each_shot_on_the_last_frame(tmp_path):
    first = make_clip(tmp_path / "1.mp4", 30, 1, audio=tone(1.0, 440))
    second = make_clip(tmp_path / "2.mp4", 30, 2, first=last_frame(first), audio=tone(1.0, 550))
    third = make_clip(tmp_path / "3.mp4", 30, 3, first=last_frame(second), audio=tone(1.0, 330))
    result = _run([first, second, third], tmp_path / "out", "continue")
    assert result.frame_count == 90
    assert result.markers == [0.0, 1.0, 2.0]
    _assert_contract(result.video, 90, audio=True)
    frames = decode_yuv(result.video)
    # Each shot's first frame is the previous shot's last: the joins do not jump.
    for join in (30, 60):
        assert psnr(frames[join], frames[join - 1]) > 32
        assert read_id(frames[join][:H]) == read_id(frames[join - 1][:H])
        assert read_id(frames[join + 1][:H]) == (join // 30 + 1, 1)


def test_a_three_shot_crossfade_overlaps_neighbours_by_half_a_second(tmp_path):
    clips = _three_clips(tmp_path)
    result = _run(clips, tmp_path / "out", "crossfade")
    overlap = 15
    assert result.frame_count == 115 - 2 * overlap == 85
    assert result.markers == [0.0, 1.0, 1.5]
    _assert_contract(result.video, 85, audio=True)
    frames = decode_yuv(result.video)
    a, b, c = (decode_yuv(clip) for clip in clips)
    # Before the first overlap: shot 1 alone; after it: shot 2 from its 16th frame on.
    assert read_id(frames[29][:H]) == (1, 29)
    assert read_id(frames[45][:H]) == (2, 15)
    assert read_id(frames[84][:H]) == (3, 39)
    # Inside the overlaps the pictures are mixed, the incoming one weighing more and more.
    for i in range(overlap):
        alpha = (i + 1) / (overlap + 1)
        mix = (1 - alpha) * a[30 + i].astype(np.float32) + alpha * b[i].astype(np.float32)
        assert psnr(frames[30 + i], np.round(mix)) > 35
        mix = (1 - alpha) * b[15 + i].astype(np.float32) + alpha * c[i].astype(np.float32)
        assert psnr(frames[45 + i], np.round(mix)) > 35
    mid = frames[37]
    assert psnr(mid, a[37]) < 25 and psnr(mid, b[7]) < 25


def _psnrs_against_source(tmp_path, continuation_crf):
    source = make_clip(tmp_path / "source.mp4", 60, 1, audio=tone(2.0, 440))
    continuation = make_clip(
        tmp_path / "next.mp4",
        45,
        2,
        first=last_frame(source),
        audio=tone(1.5, 440),
        crf=continuation_crf,
    )
    result = _run([source, continuation], tmp_path / "out", "continue")
    assert result.frame_count == 105
    _assert_contract(result.video, 105, audio=True)
    frames = decode_yuv(result.video)
    original = decode_yuv(source)
    # The continuation's first frame is the source's last: no jump at the join.
    assert psnr(frames[60], frames[59]) > 32
    assert read_id(frames[61][:H]) == (2, 1)
    return [psnr(a, b) for a, b in zip(original, frames[:60], strict=True)]


def test_extend_keeps_the_source_frames_identical(tmp_path):
    # Clips from one encoder setting: the source's packets are copied, bit for bit.
    assert min(_psnrs_against_source(tmp_path, None)) == np.inf


def test_extend_keeps_the_source_above_45_db_when_the_encoders_differ(tmp_path):
    source_crf, other_crf = 20, 30
    assert inspect_clip(make_clip(tmp_path / "x.mp4", 2, 1, crf=source_crf)).extradata != (
        inspect_clip(make_clip(tmp_path / "y.mp4", 2, 1, crf=other_crf)).extradata
    )
    # Different H.264 parameters: everything is encoded again, at STITCH_CRF.
    assert min(_psnrs_against_source(tmp_path, other_crf)) >= 45, STITCH_CRF


def _max_step(samples):
    return float(np.abs(np.diff(samples[:, 0])).max())


@pytest.mark.parametrize("transition", ["cut", "continue"])
def test_audio_does_not_click_at_the_joins(tmp_path, transition):
    # Shot 1 ends on a zero crossing, shot 2 starts on a peak (a cosine): butted together,
    # the sound would jump by 0.3 at the join, twenty times the tones' largest step.
    clips = _three_clips(tmp_path)
    result = _run(clips, tmp_path / "out", transition)
    sound = decode_audio(result.video)[: 115 * 1600]
    assert len(sound) == 115 * 1600
    own_step = max(_max_step(sound[10_000:60_000]), _max_step(sound[80_000:110_000]))
    assert own_step == pytest.approx(0.3 * 2 * np.pi * 660 / RATE, rel=0.25)
    for join in (72_000, 120_000):
        assert _max_step(sound[join - 2_000 : join + 2_000]) < 1.5 * own_step
    # Shot 2's tone is there after the first join; shot 3 (no audio) is silent.
    assert np.sqrt(np.mean(sound[80_000:110_000] ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)
    assert np.abs(sound[125_000:]).max() < 0.01


def test_audio_crossfades_over_the_overlap_at_an_even_level(tmp_path):
    clips = [
        make_clip(tmp_path / "a.mp4", 45, 1, audio=tone(1.5, 440)),
        make_clip(tmp_path / "b.mp4", 45, 2, audio=tone(1.5, 660)),
    ]
    result = _run(clips, tmp_path / "out", "crossfade")
    assert result.frame_count == 75
    sound = decode_audio(result.video)[: 75 * 1600]
    # The overlap is frames 30-45, samples 48 000-72 000. Equal-power gains: two unrelated
    # tones keep the level of one through the whole crossfade.
    level = 0.3 / np.sqrt(2)
    for start in range(2_000, 118_000, 4_000):
        rms = np.sqrt(np.mean(sound[start : start + 2_000, 0] ** 2))
        assert rms == pytest.approx(level, rel=0.12), start
    assert _max_step(sound) < 1.5 * 0.3 * 2 * np.pi * 660 / RATE
    # Both tones sound in the middle of the overlap, one on either side of it.
    assert _amplitude(sound[57_600:62_400], 440) == pytest.approx(0.3 * np.sqrt(0.5), rel=0.1)
    assert _amplitude(sound[57_600:62_400], 660) == pytest.approx(0.3 * np.sqrt(0.5), rel=0.1)
    assert _amplitude(sound[20_000:24_800], 660) < 0.01
    assert _amplitude(sound[100_000:104_800], 440) < 0.01


def _amplitude(samples, freq):
    """The amplitude of the `freq` Hz sine in a window holding whole periods of it."""
    t = np.arange(len(samples)) / RATE
    return float(2 * np.abs(np.sum(samples[:, 0] * np.exp(-2j * np.pi * freq * t))) / len(t))


def test_without_audio_there_is_no_audio_stream(tmp_path):
    result = _run(_three_clips(tmp_path), tmp_path / "out", "crossfade", audio=False)
    assert not result.has_audio
    assert not probe(result.video)["has_audio"]


def test_silent_clips_give_a_silent_track_as_long_as_the_video(tmp_path):
    clips = _three_clips(tmp_path, audio=False)
    result = _run(clips, tmp_path / "out", "cut", audio=True)
    _assert_contract(result.video, 115, audio=True)
    assert np.abs(decode_audio(result.video)).max() < 1e-3


def test_it_writes_a_poster_preview_and_spritesheet(tmp_path):
    result = _run(_three_clips(tmp_path), tmp_path / "out", "cut")
    with Image.open(result.poster) as poster:
        assert poster.size == (W, H)
        assert psnr(np.asarray(poster.convert("RGB")), id_frame(1, 0)) > 28
    with Image.open(result.preview) as preview:
        assert preview.format == "WEBP" and getattr(preview, "n_frames", 1) > 1
    assert animation_ms(result.preview) > 0
    with Image.open(result.spritesheet) as sheet:
        assert sheet.format == "JPEG" and sheet.size[0] > W
    assert sorted(p.name for p in result.video.parent.iterdir()) == [
        "poster.jpg",
        "preview.webp",
        "spritesheet.jpg",
        "video.mp4",
    ]


def test_it_reports_progress_up_to_100(tmp_path):
    seen: list[float] = []
    _run(_three_clips(tmp_path), tmp_path / "out", "crossfade", progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 100.0 and len(seen) > 10


@pytest.mark.parametrize("transition", ["cut", "crossfade"])
def test_a_stop_request_cancels_and_leaves_nothing(tmp_path, transition):
    calls: list[int] = []

    def should_stop():
        calls.append(1)
        return len(calls) > 40

    with pytest.raises(StitchCanceled):
        _run(_three_clips(tmp_path), tmp_path / "out", transition, should_stop=should_stop)
    assert list((tmp_path / "out").iterdir()) == []


def test_clips_of_another_size_or_frame_rate_are_refused(tmp_path):
    good = make_clip(tmp_path / "good.mp4", 10, 1)
    small = make_clip(tmp_path / "small.mp4", 10, 2, width=256, height=144)
    slow = make_clip(tmp_path / "slow.mp4", 10, 3, fps=24)
    for bad in (small, slow):
        with pytest.raises(ValueError):
            _run([good, bad], tmp_path / f"out-{bad.stem}", "cut")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError):
        _run([good, tmp_path / "junk.mp4"], tmp_path / "out-junk", "cut")
    with pytest.raises(ValueError):
        _run([good, good], tmp_path / "out-wipe", "wipe")
    # A middle clip must hold both of its overlaps (2 x 15 frames).
    with pytest.raises(ValueError):
        _run([good, good, good], tmp_path / "out-short", "crossfade")


def test_last_frame_is_the_decoded_last_frame(tmp_path):
    # Hard scene changes every 30 frames make x264 start new GOPs: the seek has work to do.
    path = tmp_path / "gops.mp4"
    from generations.media.encode import Mp4Writer

    with Mp4Writer(path, W, H, FPS) as writer:
        for index in range(100):
            writer.write(id_frame(index // 30 + 1, index))
    with av.open(str(path)) as container:
        keyframes = sum(p.is_keyframe for p in container.demux(video=0) if p.size)
    assert keyframes > 1
    expected = i420_to_rgb(decode_yuv(path)[-1], W, H)
    got = last_frame(path)
    assert got.shape == (H, W, 3) and got.dtype == np.uint8
    assert np.array_equal(got, expected)
    assert read_id(got) == (4, 99)
