from __future__ import annotations

from typing import Any

import pytest

from generations import catalog
from generations.core.validation import MAX_PROMPT_CHARS, build_spec
from generations.errors import ApiError


def spec(test_mode: bool = False, **data: Any):
    return build_spec({"model": "local", "prompt": "a red fox", **data}, test_mode=test_mode)


def field_of(test_mode: bool = False, **data: Any) -> str | None:
    with pytest.raises(ApiError) as caught:
        build_spec(data, test_mode=test_mode)
    assert caught.value.status == 400
    return caught.value.field


def test_defaults_follow_the_reference_and_the_model() -> None:
    s = spec()
    assert (s.mode, s.duration, s.resolution, s.aspect_ratio, s.fps) == (
        "text-to-video",
        5,
        "720p",
        "16:9",
        30,
    )
    assert (s.width, s.height, s.num_frames) == (1280, 720, 150)
    assert not s.camera_fixed and not s.add_audio and s.enable_safety_checker


def test_an_image_url_switches_to_image_to_video() -> None:
    assert spec(image_url="https://example.com/a.png").mode == "image-to-video"


def test_random_seed_is_chosen_and_recorded() -> None:
    seeds = {spec(seed=-1).seed for _ in range(5)}
    assert all(0 <= s < 2**32 for s in seeds) and len(seeds) > 1
    assert spec(seed=42).seed == 42


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"model": "local"}, "prompt"),
        ({"model": "local", "prompt": "   "}, "prompt"),
        ({"model": "local", "prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "prompt"),
        ({"model": "local", "prompt": 5}, "prompt"),
        ({"model": "nope", "prompt": "x"}, "model"),
        ({"model": "local", "prompt": "x", "duration": 61}, "duration"),
        ({"model": "local", "prompt": "x", "duration": "ten"}, "duration"),
        ({"model": "local", "prompt": "x", "duration": True}, "duration"),
        ({"model": "local", "prompt": "x", "resolution": "8K"}, "resolution"),
        ({"model": "local", "prompt": "x", "aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"model": "local", "prompt": "x", "seed": 2**40}, "seed"),
        ({"model": "local", "prompt": "x", "camera_fixed": "maybe"}, "camera_fixed"),
        ({"model": "local", "prompt": "x", "image_url": "ftp://example.com/a.png"}, "image_url"),
        ({"model": "local", "prompt": "x", "image_url": "file:///etc/passwd"}, "image_url"),
        ({"model": "local", "prompt": "x", "cfg_scale": "nan"}, "cfg_scale"),
    ],
)
def test_bad_input_names_the_field(data: dict[str, Any], field: str) -> None:
    assert field_of(**data) == field


def test_limits_are_those_of_the_chosen_model() -> None:
    # ltxv-13b is 480p only and text-to-video only; veo is 8 s only.
    assert field_of(test_mode=True, model="ltxv-13b", prompt="x", resolution="720p") == "resolution"
    assert (
        field_of(test_mode=True, model="ltxv-13b", prompt="x", image_url="https://e.com/a.png")
        == "image_url"
    )
    assert field_of(test_mode=True, model="veo_3", prompt="x", duration=5) == "duration"
    assert build_spec({"model": "veo_3", "prompt": "x"}, test_mode=True).duration == 8
    assert build_spec({"model": "ltxv-13b", "prompt": "x"}, test_mode=True).resolution == "480p"


def test_a_model_without_an_engine_here_is_refused_unless_the_key_is_a_test_key() -> None:
    assert field_of(model="kling_25", prompt="x") == "model"
    assert build_spec({"model": "kling_25", "prompt": "x"}, test_mode=True).model == "kling_25"


def test_num_frames_sets_the_length_at_the_model_fps() -> None:
    s = spec(num_frames=45)
    assert (s.num_frames, s.duration) == (45, 2)


@pytest.mark.parametrize(
    ("resolution", "ratio", "size"),
    [
        ("480p", "16:9", (854, 480)),
        ("720p", "16:9", (1280, 720)),
        ("720p", "9:16", (720, 1280)),
        ("720p", "1:1", (720, 720)),
        ("720p", "21:9", (1680, 720)),
        ("1080p", "4:3", (1440, 1080)),
        ("1080p", "9:21", (1080, 2520)),
        ("4K", "16:9", (3840, 2160)),
    ],
)
def test_frame_sizes_follow_the_contract(
    resolution: str, ratio: str, size: tuple[int, int]
) -> None:
    assert catalog.frame_size(resolution, ratio) == size
