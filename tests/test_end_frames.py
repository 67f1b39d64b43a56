"""Shots: an end frame (`end_image_url`) on the `local` engine. The clip starts on the first
image and ends on the second, each cover-cropped to the frame, and travels smoothly between
them: no cut, no frame that jumps much more than its neighbours."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from generations.media.images import cover_crop, load_image
from generations.rendering.base import RenderContext
from generations.rendering.local.camera import choose_travel
from generations.rendering.local.procedural import ProceduralEngine
from tests.test_engine_local import Recorder, decode, make_spec, psnr

RATIOS = ["16:9", "9:16", "1:1", "21:9"]
MIN_PSNR = 30.0
# No step between decoded frames may be larger than this many times the median step.
MAX_JUMP_RATIO = 3.0


def picture(path: Path, seed: int, size: tuple[int, int]) -> Path:
    """A textured test picture of `size` (w, h): smooth shapes over fine detail."""
    w, h = size
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (0, 0), 2)
    img = np.ascontiguousarray(img)
    colour = tuple(int(c) for c in rng.integers(30, 250, 3))
    cv2.circle(img, (int(rng.integers(w // 4, 3 * w // 4)), h // 2), h // 4, colour, -1)
    cv2.rectangle(img, (w // 10, h // 8), (w // 3, h // 3), (30, 90, 220), -1)
    Image.fromarray(img).save(path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("shots")
    # Different shapes, so that each is cover-cropped differently for every ratio.
    return picture(folder / "first.png", 1, (640, 480)), picture(folder / "end.png", 2, (480, 640))


def render(spec, out: Path, first: Path | None, end: Path | None) -> list[np.ndarray]:
    out.mkdir(parents=True, exist_ok=True)
    recorder = Recorder()
    ctx = RenderContext(out, recorder.progress, recorder.should_stop, first, end)
    result = ProceduralEngine().render(spec, ctx)
    frames = decode(result.video_path)
    assert len(frames) == spec.num_frames
    return frames


def crop(path: Path, spec) -> np.ndarray:
    return cover_crop(load_image(path.read_bytes()), spec.width, spec.height)


def jump_ratio(frames: list[np.ndarray]) -> float:
    """The largest step between consecutive frames over the median step (mean abs diff)."""
    pairs = zip(frames, frames[1:], strict=False)
    steps = [np.mean(np.abs(a.astype(np.float32) - b)) for a, b in pairs]
    return float(max(steps) / np.median(steps))


@pytest.mark.parametrize("aspect_ratio", RATIOS)
@pytest.mark.parametrize("prompt", ["a slow walk", "pan left", "zoom out"])
def test_image_to_video_travels_from_the_first_image_to_the_end_image(
    tmp_path, images, aspect_ratio, prompt
):
    first, end = images
    spec = make_spec(mode="image-to-video", prompt=prompt, aspect_ratio=aspect_ratio,
                     num_frames=36)  # fmt: skip
    frames = render(spec, tmp_path, first, end)
    assert psnr(frames[0], crop(first, spec)) >= MIN_PSNR
    assert psnr(frames[-1], crop(end, spec)) >= MIN_PSNR
    assert jump_ratio(frames) <= MAX_JUMP_RATIO
    # In between it is neither picture: a transition, not a hold and a cut.
    middle = frames[len(frames) // 2]
    assert psnr(middle, crop(first, spec)) < 25 and psnr(middle, crop(end, spec)) < 25


@pytest.mark.parametrize("aspect_ratio", ["16:9", "9:16"])
def test_text_to_video_paints_its_scene_into_the_end_image(tmp_path, images, aspect_ratio):
    _, end = images
    spec = make_spec(aspect_ratio=aspect_ratio, num_frames=36)
    frames = render(spec, tmp_path, None, end)
    assert psnr(frames[-1], crop(end, spec)) >= MIN_PSNR
    # It starts on the painted scene, not on the end image.
    assert psnr(frames[0], crop(end, spec)) < 20
    assert jump_ratio(frames) <= MAX_JUMP_RATIO


def test_the_first_frame_of_text_to_video_is_its_scene_with_or_without_an_end(tmp_path, images):
    _, end = images
    spec = make_spec(num_frames=12)
    plain = render(spec, tmp_path / "plain", None, None)
    ended = render(spec, tmp_path / "ended", None, end)
    assert psnr(plain[0], ended[0]) > 40


def test_a_fixed_camera_dissolves_without_moving(tmp_path, images):
    first, end = images
    spec = make_spec(mode="image-to-video", camera_fixed=True, num_frames=24)
    frames = render(spec, tmp_path, first, end)
    a, b = crop(first, spec).astype(np.float64), crop(end, spec).astype(np.float64)
    assert psnr(frames[0], a) >= MIN_PSNR and psnr(frames[-1], b) >= MIN_PSNR
    # Every frame is a mix of the two still framings: the best mix explains it fully.
    for frame in frames[1:-1:4]:
        d = (b - a).ravel()
        w = float(np.dot(frame.astype(np.float64).ravel() - a.ravel(), d) / np.dot(d, d))
        assert psnr(frame, np.clip(a + w * (b - a), 0, 255)) >= MIN_PSNR
    assert jump_ratio(frames) <= MAX_JUMP_RATIO


def test_the_travel_is_one_move_through_both_images():
    travel = choose_travel("zoom in", 3, 5.0)
    # The first image starts at rest and the end image arrives at rest.
    assert travel.first_at(0.0) == (1.0, 0.5, 0.5)
    assert travel.second_at(1.0) == (1.0, 0.5, 0.5)
    # Where the first leaves off, the second takes over: one path, the same speed.
    zoom_a, *_ = travel.first_at(1.0)
    zoom_b, *_ = travel.second_at(0.0)
    assert zoom_a > 1.0 > zoom_b and zoom_a * zoom_b == pytest.approx(1.0)
    assert choose_travel("zoom out", 3, 5.0).log_zoom < 0
    assert choose_travel("pan left", 3, 5.0).shift[0] < 0


def test_an_unreadable_end_image_is_a_user_error(tmp_path, images):
    from generations.rendering.base import EngineError

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(EngineError) as info:
        render(make_spec(), tmp_path, None, bad)
    assert info.value.code in {"invalid_image", "unsupported_image"}
