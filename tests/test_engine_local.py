from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from generations.engines.base import Canceled, EngineError, RenderContext
from generations.engines.procedural import ProceduralEngine
from generations.media.encode import probe, top_level_boxes
from generations.media.images import cover_crop, load_image
from generations.specs import GenerationSpec

SHORT_SIDES = {"480p": 480, "720p": 720, "1080p": 1080, "4K": 2160}
RATIOS = ["16:9", "9:16", "4:3", "3:4", "1:1", "9:21", "21:9"]


def size_for(resolution, aspect_ratio):
    """The contract's rule: short side = the resolution, long side rounded to an even number."""
    short = SHORT_SIDES[resolution]
    a, b = (int(x) for x in aspect_ratio.split(":"))
    ratio = Fraction(max(a, b), min(a, b))
    long = 2 * round(short * ratio / 2)
    return (long, short) if a >= b else (short, long)


def make_spec(**overrides):
    resolution = overrides.pop("resolution", "480p")
    aspect_ratio = overrides.pop("aspect_ratio", "16:9")
    width, height = size_for(resolution, aspect_ratio)
    fields = {
        "model": "local",
        "mode": "text-to-video",
        "prompt": "a calm ocean at sunset",
        "negative_prompt": "",
        "image_url": "",
        "duration": 1,
        "resolution": resolution,
        "aspect_ratio": aspect_ratio,
        "width": width,
        "height": height,
        "fps": 30,
        "num_frames": 30,
        "seed": 42,
        "camera_fixed": False,
        "add_audio": False,
        "audio_prompt": "",
        "style": "",
        "cfg_scale": None,
        "guidance_scale": None,
        "enable_safety_checker": False,
    }
    fields.update(overrides)
    return GenerationSpec(**fields)


class Recorder:
    def __init__(self, stop_after=None):
        self.values = []
        self.stop_after = stop_after

    def progress(self, value):
        self.values.append(value)

    def should_stop(self):
        return self.stop_after is not None and len(self.values) >= self.stop_after


def render(spec, out_dir, input_image=None, recorder=None):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    recorder = recorder or Recorder()
    ctx = RenderContext(out_dir, recorder.progress, recorder.should_stop, input_image)
    return ProceduralEngine().render(spec, ctx)


def decode(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A textured 4:3 test picture (smooth shapes plus detail), saved as PNG."""
    rng = np.random.default_rng(7)
    noise = cv2.GaussianBlur((rng.random((480, 640, 3)) * 255).astype(np.uint8), (0, 0), 2)
    img = np.ascontiguousarray(noise)
    cv2.circle(img, (320, 240), 120, (250, 200, 40), -1)
    cv2.rectangle(img, (60, 60), (200, 160), (30, 90, 220), -1)
    path = tmp_path_factory.mktemp("input") / "photo.png"
    Image.fromarray(img).save(path)
    return path


def test_size_rule_examples():
    assert size_for("480p", "16:9") == (854, 480)
    assert size_for("720p", "21:9") == (1680, 720)
    assert size_for("720p", "9:16") == (720, 1280)
    assert size_for("4K", "16:9") == (3840, 2160)


@pytest.mark.parametrize("resolution", list(SHORT_SIDES))
@pytest.mark.parametrize("aspect_ratio", RATIOS)
def test_every_size_is_exact(tmp_path, resolution, aspect_ratio):
    frames = 2 if resolution == "4K" else 4
    spec = make_spec(resolution=resolution, aspect_ratio=aspect_ratio, num_frames=frames)
    result = render(spec, tmp_path)
    info = probe(result.video_path)
    assert (info["width"], info["height"]) == (spec.width, spec.height)
    assert info["frame_count"] == frames
    assert (result.width, result.height, result.frame_count) == (spec.width, spec.height, frames)


def test_a_one_second_clip_meets_the_output_contract(tmp_path):
    recorder = Recorder()
    result = render(make_spec(), tmp_path, recorder=recorder)
    info = probe(result.video_path)
    assert info["frame_count"] == 30
    assert info["fps"] == 30.0
    assert info["duration"] == pytest.approx(1.0, abs=1 / 30)
    assert (info["codec"], info["pix_fmt"]) == ("h264", "yuv420p")
    assert info["color_space"] == info["color_primaries"] == info["color_trc"] == "bt709"
    assert not info["has_audio"] and not result.has_audio
    boxes = top_level_boxes(result.video_path)
    assert boxes.index("moov") < boxes.index("mdat")
    assert result.video_path == tmp_path / "video.mp4"
    with Image.open(result.poster_path) as poster:
        assert (poster.format, poster.size) == ("JPEG", (854, 480))
    with Image.open(result.extras["preview"]) as preview:
        assert (
            preview.format == "WEBP"
            and getattr(preview, "n_frames", 1) > 1
            and preview.width == 480
        )
    assert recorder.values == sorted(recorder.values)
    assert recorder.values[-1] == 100.0
    assert all(0 <= v <= 100 for v in recorder.values)


def test_renders_are_deterministic_and_the_seed_matters(tmp_path):
    spec = make_spec(num_frames=6)
    first = decode(render(spec, tmp_path / "a").video_path)
    again = decode(render(spec, tmp_path / "b").video_path)
    other = decode(render(make_spec(num_frames=6, seed=43), tmp_path / "c").video_path)
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert np.mean(np.abs(first[0].astype(int) - other[0].astype(int))) > 3


def test_the_picture_moves_and_is_not_flat(tmp_path):
    frames = decode(render(make_spec(num_frames=30), tmp_path).video_path)
    assert frames[0].std() > 5  # not a flat fill
    assert np.mean(np.abs(frames[0].astype(int) - frames[-1].astype(int))) > 0.5


def test_image_to_video_starts_on_the_cover_cropped_input(tmp_path, photo):
    spec = make_spec(mode="image-to-video", resolution="720p", aspect_ratio="9:16", num_frames=8)
    frames = decode(render(spec, tmp_path, input_image=photo).video_path)
    expected = cover_crop(load_image(photo.read_bytes()), spec.width, spec.height)
    assert frames[0].shape == expected.shape
    assert psnr(frames[0], expected) >= 30


def _normalised(frame):
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return (grey - grey.mean()) / (grey.std() + 1e-9)


def test_a_fixed_camera_does_not_move_but_the_push_in_does(tmp_path, photo):
    base = {"mode": "image-to-video", "num_frames": 45}
    fixed = decode(render(make_spec(camera_fixed=True, **base), tmp_path / "f", photo).video_path)
    moving = decode(render(make_spec(**base), tmp_path / "m", photo).video_path)
    still = np.mean(np.abs(_normalised(fixed[0]) - _normalised(fixed[-1])))
    moved = np.mean(np.abs(_normalised(moving[0]) - _normalised(moving[-1])))
    assert still < 0.1
    assert moved > 3 * still and moved > 0.2
    shift, _response = cv2.phaseCorrelate(
        _normalised(fixed[0]).astype(np.float32), _normalised(fixed[-1]).astype(np.float32)
    )
    assert abs(shift[0]) < 0.5 and abs(shift[1]) < 0.5


def test_audio_is_added_only_when_asked(tmp_path):
    spec = make_spec(add_audio=True, num_frames=45, prompt="waves on a dark sea")
    result = render(spec, tmp_path)
    info = probe(result.video_path)
    assert result.has_audio and info["has_audio"]
    assert (info["audio_sample_rate"], info["audio_channels"]) == (48_000, 2)
    assert info["audio_duration"] == pytest.approx(1.5, abs=0.05)
    with av.open(str(result.video_path)) as container:
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert np.sqrt(np.mean(samples**2)) > 0.01  # audible, not silence


def test_cancel_stops_and_leaves_no_outputs(tmp_path):
    recorder = Recorder(stop_after=3)
    with pytest.raises(Canceled):
        render(make_spec(num_frames=30), tmp_path, recorder=recorder)
    assert list(tmp_path.iterdir()) == []
    assert len(recorder.values) == 3


def test_an_unreadable_input_image_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(EngineError) as info:
        render(make_spec(mode="image-to-video"), tmp_path / "out", input_image=bad)
    assert info.value.code == "invalid_image"
    with pytest.raises(EngineError):
        render(make_spec(mode="image-to-video"), tmp_path / "out2", input_image=None)
