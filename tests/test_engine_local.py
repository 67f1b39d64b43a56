from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from generations.media.encode import probe, top_level_boxes
from generations.media.images import cover_crop, load_image
from generations.rendering.base import Canceled, EngineError, RenderContext
from generations.rendering.local.procedural import ProceduralEngine
from generations.spec import GenerationSpec
from tests.media_helpers import animation_ms

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


# --- issue 3: prompt-driven scenes, camera moves, audio, previews, honest parameters -------


def _grey(frame):
    return _normalised(frame).astype(np.float32)


def _shift(a, b):
    (dx, dy), _response = cv2.phaseCorrelate(_grey(a), _grey(b))
    return dx, dy


def _scale_estimate(a, b):
    """The zoom that best maps frame a onto frame b (centre-anchored), by brute search."""
    ga, gb = _grey(a), _grey(b)
    h, w = ga.shape
    crop = (slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4))
    best, best_score = 1.0, -np.inf
    for s in np.linspace(0.8, 1.25, 46):
        m = np.array([[s, 0, (1 - s) * w / 2], [0, s, (1 - s) * h / 2]])
        warped = cv2.warpAffine(ga, m, (w, h), flags=cv2.INTER_LINEAR)
        score = float(np.mean(warped[crop] * gb[crop]))
        if score > best_score:
            best, best_score = float(s), score
    return best


def test_the_parameters_the_engine_uses_and_ignores_are_documented():
    from dataclasses import fields

    from generations.rendering.local.parameters import PARAMETER_USE

    documented = set(PARAMETER_USE)
    for name in ("negative_prompt", "cfg_scale", "guidance_scale"):
        assert "ignored" in PARAMETER_USE[name]
    assert "not used by the engine" in PARAMETER_USE["enable_safety_checker"]
    for name in ("prompt", "seed", "num_frames", "camera_fixed", "add_audio", "audio_prompt"):
        assert PARAMETER_USE[name].startswith("used")
    internal = {"model", "requested_model", "width", "height", "fps"}  # not the engine's
    assert {f.name for f in fields(GenerationSpec)} - internal <= documented


def test_ignored_parameters_are_accepted_and_change_nothing(tmp_path):
    plain = decode(render(make_spec(num_frames=3), tmp_path / "a").video_path)
    steered = make_spec(num_frames=3, negative_prompt="blurry", cfg_scale=7.5, guidance_scale=3.0)
    other = decode(render(steered, tmp_path / "b").video_path)
    assert all(np.array_equal(x, y) for x, y in zip(plain, other, strict=True))


def test_different_prompts_paint_different_pictures():
    from generations.rendering.local.scenes import TextScene

    prompts = [
        "a calm ocean at sunset",
        "a stormy ocean at night",
        "a campfire in the dark",
        "a misty pine forest at dawn",
        "deep space nebula, swirling purple",
        "neon city in the rain",
        "snowy mountains at noon",
        "a red car",
        "a blue car",
        "synthwave grid",
    ]
    fields = {p: TextScene(p, 42, 320, 180).field(1.0) for p in prompts}
    for i, a in enumerate(prompts):
        for b in prompts[i + 1 :]:
            diff = float(np.mean(np.abs(fields[a] - fields[b])))
            assert diff > 0.03, (a, b, diff)


def test_the_prompt_words_choose_the_scene():
    from generations.rendering.local.scenes import read_prompt

    recipe = read_prompt("slow drifting snow over the city at dawn, purple and gold")
    assert set(recipe.elements) >= {"snow", "city"}
    assert recipe.time_of_day == "dawn"
    assert recipe.colours == ["gold", "purple"] or set(recipe.colours) == {"gold", "purple"}
    assert recipe.pace < 1 and recipe.drift
    assert read_prompt("fast swirling fire").pace > 1
    assert read_prompt("fast swirling fire").swirl


def test_motion_words_set_the_pace(tmp_path):
    from generations.rendering.local.scenes import TextScene

    def motion(prompt):
        scene = TextScene(prompt, 5, 320, 180)
        frames = [scene.field(t / 30) for t in range(0, 12, 3)]
        return np.mean([np.mean(np.abs(a - b)) for a, b in zip(frames, frames[1:], strict=False)])

    assert motion("fast snow falling in the forest") > 1.5 * motion(
        "slow snow falling in the forest"
    )


def test_text_to_video_is_dithered_so_4k_gradients_do_not_band():
    from generations.media.encode import i420_planes, new_i420
    from generations.rendering.local.procedural import TextVideo

    spec = make_spec(resolution="4K", prompt="a clear blue sky at noon", num_frames=1)
    buffer = new_i420(spec.width, spec.height)
    TextVideo(spec).i420(0, buffer)
    y, _u, _v = i420_planes(buffer, spec.width, spec.height)
    # Without dither a smooth 4K gradient has flat runs hundreds of pixels long.
    row = y[spec.height // 8].astype(int)
    changes = np.flatnonzero(np.diff(row))
    longest = np.max(np.diff(np.concatenate([[0], changes, [len(row)]])))
    assert longest < 40


def test_spritesheet_and_preview_are_stored_beside_the_video(tmp_path):
    result = render(make_spec(num_frames=30, aspect_ratio="16:9"), tmp_path)
    sheet = result.extras["spritesheet"]
    assert sheet.parent == result.video_path.parent
    with Image.open(sheet) as img:
        assert img.format == "JPEG"
        assert img.size == (5 * 240, 5 * 135)  # 25 evenly spaced 240 px thumbnails
    preview = result.extras["preview"]
    with Image.open(preview) as img:
        assert img.format == "WEBP" and img.width == 480
    assert animation_ms(preview) <= 2000


def test_a_short_clip_gets_a_smaller_sprite_grid(tmp_path):
    result = render(make_spec(num_frames=6, aspect_ratio="9:16"), tmp_path)
    with Image.open(result.extras["spritesheet"]) as img:
        # 6 thumbnails: 3 columns x 2 rows, each 240 x 427 (9:16 kept).
        assert img.size == (3 * 240, 2 * 427)


def test_duration_is_exact_to_a_frame(tmp_path):
    spec = make_spec(duration=2, num_frames=60, fps=30, add_audio=True)
    info = probe(render(spec, tmp_path).video_path)
    assert info["frame_count"] == 60
    assert info["duration"] == pytest.approx(2.0, abs=1 / 30)
    assert info["audio_duration"] == pytest.approx(2.0, abs=1 / 30)


def test_audio_is_loudness_normalised_in_the_file(tmp_path):
    from generations.media.audio import TARGET_LOUDNESS_LUFS, loudness_lufs

    levels = []
    for prompt in ("heavy rain", "birds in a garden"):
        spec = make_spec(num_frames=60, add_audio=True, audio_prompt=prompt)
        path = render(spec, tmp_path / prompt.replace(" ", "_")).video_path
        with av.open(str(path)) as container:
            planes = [f.to_ndarray() for f in container.decode(audio=0)]
        samples = np.concatenate(planes, axis=1).T  # fltp: (channels, n) per frame
        levels.append(loudness_lufs(samples))
    for level in levels:
        assert level == pytest.approx(TARGET_LOUDNESS_LUFS, abs=2.0)


@pytest.mark.parametrize("move", ["pan left", "zoom out", "tilt up"])
def test_every_camera_move_starts_on_the_cover_crop(tmp_path, photo, move):
    spec = make_spec(mode="image-to-video", prompt=move, num_frames=3)
    frames = decode(render(spec, tmp_path, input_image=photo).video_path)
    expected = cover_crop(load_image(photo.read_bytes()), spec.width, spec.height)
    assert psnr(frames[0], expected) >= 30


@pytest.mark.parametrize(
    ("prompt", "axis", "sign"),
    [("pan left", 0, 1), ("pan right", 0, -1), ("tilt up", 1, 1), ("tilt down", 1, -1)],
)
def test_pans_and_tilts_move_the_picture_the_right_way(tmp_path, photo, prompt, axis, sign):
    spec = make_spec(mode="image-to-video", prompt=prompt, num_frames=24)
    frames = decode(render(spec, tmp_path, input_image=photo).video_path)
    shift = _shift(frames[0], frames[-1])
    assert shift[axis] * sign > 5  # pixels, in the direction the picture should slide


def test_camera_moves_are_eased_and_sub_pixel_smooth(photo):
    from generations.media.encode import i420_planes, new_i420
    from generations.rendering.local.procedural import ImageVideo

    spec = make_spec(mode="image-to-video", prompt="pan right", num_frames=24)
    video = ImageVideo(spec, photo)
    planes = []
    for index in range(spec.num_frames):
        buffer = new_i420(spec.width, spec.height)
        video.i420(index, buffer)
        y = i420_planes(buffer, spec.width, spec.height)[0]
        # The centre third: there the pan's slight zoom displaces almost nothing.
        h, w = y.shape
        planes.append(np.ascontiguousarray(y[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3], np.float32))
    steps = np.array(
        [cv2.phaseCorrelate(a, b)[0][0] for a, b in zip(planes, planes[1:], strict=False)]
    )
    # Steps rise and fall smoothly (ease in, ease out), with no whole-pixel jumps.
    assert abs(steps[0]) < 0.5 and abs(steps[-1]) < 0.5
    assert abs(steps[len(steps) // 2]) > 1.5
    x = np.arange(len(steps))
    smooth = np.polyval(np.polyfit(x, steps, 4), x)
    # (phase correlation is biased towards whole pixels by ~0.2 px; snapping would show 0.5)
    assert np.max(np.abs(steps - smooth)) < 0.35


@pytest.mark.parametrize(("prompt", "zooms_in"), [("zoom in", True), ("slowly pull back", False)])
def test_zoom_moves_scale_the_picture(tmp_path, photo, prompt, zooms_in):
    spec = make_spec(mode="image-to-video", prompt=prompt, num_frames=24)
    frames = decode(render(spec, tmp_path, input_image=photo).video_path)
    scale = _scale_estimate(frames[0], frames[-1])
    assert scale > 1.03 if zooms_in else scale < 0.98


def test_a_fixed_camera_breathes_but_does_not_move(tmp_path, photo):
    spec = make_spec(mode="image-to-video", camera_fixed=True, num_frames=30, prompt="pan left")
    frames = decode(render(spec, tmp_path, input_image=photo).video_path)
    for later in (frames[10], frames[-1]):
        dx, dy = _shift(frames[0], later)
        assert abs(dx) < 0.2 and abs(dy) < 0.2  # no global motion, even when asked to pan
    life = np.mean(np.abs(frames[-1].astype(int) - frames[15].astype(int)))
    assert life > 0.3  # light, colour and grain still change


def test_image_to_video_is_deterministic(tmp_path, photo):
    spec = make_spec(mode="image-to-video", num_frames=5)
    a = decode(render(spec, tmp_path / "a", input_image=photo).video_path)
    b = decode(render(spec, tmp_path / "b", input_image=photo).video_path)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


# --- the scene tables: words -> families -> layers -------------------------------------------

SCENE_READINGS = [
    # (prompt, elements, time of day)
    ("Paper boat drifting on a calm pond at dawn", ["ocean"], "dawn"),
    ("a sailboat crossing the harbour", ["ocean"], ""),
    ("a river winding through the woods", ["ocean", "forest"], ""),
    ("waves crashing on the beach at sunset", ["ocean"], "sunset"),
    ("a crackling campfire", ["fire"], ""),
    ("a misty pine forest at dawn", ["forest"], "dawn"),
    ("clouds drifting across the sky", ["sky"], ""),
    ("a spiral galaxy", ["space"], ""),
    ("downtown skyline at night", ["city"], "night"),
    ("a snowy winter morning", ["snow"], "dawn"),
    ("a thunderstorm", ["rain"], "storm"),
    ("cyberpunk arcade", ["neon"], ""),
    ("sand dunes at noon", ["desert"], "day"),
    ("the alps", ["mountains"], ""),
    ("aurora borealis over the snow", ["snow", "aurora"], ""),
    ("city lights", ["city"], ""),  # "lights" alone is no aurora
    # No element word: the light, the weather or the mood chooses a fitting element.
    ("a quiet sunset", ["sky"], "sunset"),
    ("late at night", ["sky"], "night"),
    ("stars at night", ["space"], "night"),  # deep space only when a space word says so
    ("a windy afternoon", ["sky"], "day"),
    ("misty", ["mountains"], ""),
    ("foggy morning", ["sky", "mountains"], "dawn"),
    # No known word at all: the prompt's digest picks an element, the same every time.
    ("a red car", ["neon"], ""),
    ("xyzzy plugh", ["aurora"], ""),
]


@pytest.mark.parametrize(("prompt", "elements", "time_of_day"), SCENE_READINGS)
def test_the_words_choose_the_scene_families(prompt, elements, time_of_day):
    from generations.rendering.local.scenes import read_prompt

    recipe = read_prompt(prompt)
    assert (recipe.elements, recipe.time_of_day) == (elements, time_of_day)


def test_every_family_is_in_the_reading_table():
    from generations.rendering.local.scene_families import FAMILIES

    named = {element for _prompt, elements, _time in SCENE_READINGS for element in elements}
    assert named >= {family.name for family in FAMILIES}


def test_a_paper_boat_on_a_pond_paints_water_at_dawn_not_a_starfield():
    from generations.rendering.local.scenes import TextScene

    scene = TextScene("Paper boat drifting on a calm pond at dawn", 42, 320, 180)
    kinds = {kind for layer in scene.layers for kind in layer.kinds}
    assert {"ocean", "sun", "motes"} <= kinds  # water, the low sun, drifting motes
    assert not kinds & {"nebula", "stars"}
    assert scene.time.name == "dawn"


def test_a_night_without_space_words_is_a_night_sky():
    from generations.rendering.local.scenes import TextScene

    scene = TextScene("late at night", 42, 320, 180)
    kinds = {kind for layer in scene.layers for kind in layer.kinds}
    assert {"clouds", "stars", "sun"} <= kinds  # clouds, stars and the moon
    assert "nebula" not in kinds


def test_every_layer_the_tables_name_has_a_painter():
    from typing import get_args

    from generations.rendering.local.layers import LAYERS
    from generations.rendering.local.scene_families import (
        DRIFT_LAYERS,
        FAMILIES,
        MOOD_LAYERS,
        SWIRL_LAYERS,
        TIMES,
        LayerKind,
    )

    painted = [kind for layer in LAYERS for kind in layer.kinds]
    assert sorted(painted) == sorted(get_args(LayerKind))  # each kind painted exactly once
    named = {*DRIFT_LAYERS, *SWIRL_LAYERS, *(k for ks in MOOD_LAYERS.values() for k in ks)}
    for family in FAMILIES:
        named |= {*family.layers, *family.vetoes, *family.dawn_layers}
    for time in TIMES:
        named |= {*time.layers, *time.vetoes}
    assert named <= set(painted)
