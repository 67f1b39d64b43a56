"""The provider map: which provider serves a model, how our request becomes its input, and
what an operator's own map file changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from generations import catalog
from generations.core.validation import build_spec
from generations.errors import ApiError
from generations.rendering import registry
from generations.rendering.hosted import providers, routes

KLING = catalog.MODELS[2]
PNG = routes.ImageInput(b"\x89PNG\r\n\x1a\nfake", "image/png")


def test_catalog_positions() -> None:
    assert [m.key for m in catalog.MODELS[1:4]] == ["higgsfield_v1", "kling_25", "veo_3"]


def test_without_provider_keys_only_the_local_engine_is_available(settings) -> None:
    for name in providers.PROVIDERS.values():
        setattr(settings, name, "")
    available = [m.key for m in catalog.MODELS if registry.is_available(m)]
    assert available == ["local"]
    with pytest.raises(ApiError) as err:
        build_spec({"model": "kling_25", "prompt": "a cat"}, test_mode=False)
    assert err.value.status == 400 and err.value.field == "model"
    assert "not available on this server" in err.value.message


def test_a_provider_key_makes_its_models_available_in_map_order(settings) -> None:
    settings.FAL_KEY = "fal-key"
    settings.REPLICATE_API_TOKEN = ""
    assert registry.engine_name_for(KLING, test_mode=False) == "fal"
    settings.REPLICATE_API_TOKEN = "r8-token"
    # fal comes first in the map for kling_25; Replicate only serves what fal does not.
    assert registry.engine_name_for(KLING, test_mode=False) == "fal"
    settings.FAL_KEY = ""
    assert registry.engine_name_for(KLING, test_mode=False) == "replicate"
    # Models no provider offers stay unavailable, whatever keys are set.
    assert not registry.is_available(catalog.MODELS[1])
    # Test keys still run everything on the local engine.
    assert registry.engine_name_for(catalog.MODELS[3], test_mode=True) == "local"


def test_translation_applies_filters_and_leaves_out_empty_values(settings) -> None:
    settings.FAL_KEY = "fal-key"
    spec = build_spec(
        {"model": "framepack", "prompt": "a boat", "image_url": "https://example.com/a.png",
         "duration": 4, "resolution": "480p", "aspect_ratio": "9:16", "seed": 7,
         "cfg_scale": 1.5, "num_frames": 90},
        test_mode=False,
    )  # fmt: skip
    route = providers.route_for("framepack", spec.mode)
    assert route is not None and route.provider == "fal"
    body = routes.translate(route, spec, PNG)
    assert body == {
        "prompt": "a boat",
        "image_url": PNG.data_url(),
        "aspect_ratio": "9:16",
        "resolution": "480p",
        "cfg_scale": 1.5,
        "num_frames": 90,
        "seed": 7,
        "enable_safety_checker": True,
    }  # no negative_prompt or guidance_scale: the client gave none


def test_dotted_names_build_nested_objects(settings) -> None:
    settings.GEMINI_API_KEY = "gm-key"
    spec = build_spec({"model": "veo-31", "prompt": "waves", "duration": 8,
                       "negative_prompt": "text"}, test_mode=False)  # fmt: skip
    route = providers.route_for("veo-31", spec.mode)
    assert route is not None and route.provider == "gemini"
    assert routes.translate(route, spec, None) == {
        "instance": {"prompt": "waves"},
        "parameters": {"aspectRatio": "16:9", "resolution": "720p", "durationSeconds": 8,
                       "negativePrompt": "text"},
    }  # fmt: skip


def test_an_operator_map_replaces_a_models_entry_without_code(settings, tmp_path: Path) -> None:
    custom = tmp_path / "providers.toml"
    custom.write_text(
        """
[kling_25.replicate]
text-to-video = "acme/kling-mirror"
deadline_s = 60
[kling_25.replicate.input]
text = "prompt|lower"
length = "duration|suffix:s"
ratio = "aspect_ratio|map:16:9=wide;9:16=tall"
quality = "=high"
audio = false
"""
    )
    settings.VIDEOGEN_PROVIDER_MAP = str(custom)
    settings.FAL_KEY = "fal-key"  # fal no longer serves kling_25: the operator's entry won
    settings.REPLICATE_API_TOKEN = "r8-token"
    spec = build_spec({"model": "kling_25", "prompt": "A Red Fox", "duration": 5},
                      test_mode=False)  # fmt: skip
    route = providers.route_for("kling_25", spec.mode)
    assert route is not None and route.provider == "replicate" and route.deadline_s == 60
    job = routes.job_for(route, spec, None)
    assert job.upstream_model == "acme/kling-mirror"
    assert job.input == {"text": "a red fox", "length": "5s", "ratio": "wide",
                         "quality": "high", "audio": False}  # fmt: skip
    # Other models keep the default entries.
    assert providers.route_for("wan-25", "text-to-video").provider == "fal"  # type: ignore[union-attr]
    # The operator mapped text-to-video only: image-to-video is refused, naming the field.
    with pytest.raises(ApiError) as err:
        build_spec({"model": "kling_25", "prompt": "fox", "image_url": "https://e.com/a.png"},
                   test_mode=False)  # fmt: skip
    assert err.value.field == "image_url" and "text-to-video only" in err.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[kling_25.acme]\ntext-to-video = "x"\n', "unknown provider"),
        ("[kling_25.fal]\nseed = 1\n", "name the upstream model"),
        ('[kling_25.fal]\ntext-to-video = "x"\n[kling_25.fal.input]\np = "prompt|upper"\n',
         "unknown filter `upper`"),
        ('[kling_25.fal]\ntext-to-video = "x"\n[kling_25.fal.input]\np = "promtp"\n',
         "unknown field `promtp`"),
        ('[kling_25.fal]\ntext-to-video = "x"\n[kling_25.fal.input]\na = "prompt|only:t2v"\n',
         "`only:` takes a mode"),
        ("[kling_25.fal\n", "Expected"),
    ],
)  # fmt: skip
def test_a_malformed_map_says_where(settings, tmp_path: Path, text: str, message: str) -> None:
    custom = tmp_path / "bad.toml"
    custom.write_text(text)
    settings.VIDEOGEN_PROVIDER_MAP = str(custom)
    with pytest.raises(routes.MapError, match=message):
        providers.all_routes()
    settings.VIDEOGEN_PROVIDER_MAP = ""


def test_the_default_map_routes_every_model_a_provider_offers() -> None:
    mapped = set(providers.all_routes())
    offered = {m.key for m in catalog.MODELS} - {"local", "higgsfield_v1", "nanobanana-video"}
    assert mapped == offered
    for model_routes in providers.all_routes().values():
        for route in model_routes:
            model = catalog.get_model(route.model)
            assert model is not None
            # A route never claims a mode the catalog model does not have.
            assert set(route.upstream) <= set(model.modes), route


def test_the_listing_says_why_a_model_is_unavailable(settings) -> None:
    for name in providers.PROVIDERS.values():
        setattr(settings, name, "")
    assert registry.unavailable_reason(KLING) == (
        "Served by a hosted provider once its key is set: `FAL_KEY` or `REPLICATE_API_TOKEN`."
    )
    assert registry.unavailable_reason(catalog.MODELS[1]) == (
        "No engine on this server offers this model."
    )
    settings.FAL_KEY = "fal-key"
    assert registry.unavailable_reason(KLING) is None


# --- shots: end images and source videos -----------------------------------------------------


def test_media_filters_work_on_images_and_videos() -> None:
    video = routes.VideoInput(b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    assert video.data_url() == "data:video/mp4;base64,AAAAGGZ0eXBtcDQy"
    for value in (PNG, video):
        assert routes.FILTERS["mime"](value, "") == value.mime
        assert routes.FILTERS["data_url"](value, "") == value.data_url()
        assert routes.FILTERS["base64"](value, "") == value.data_url().split(",", 1)[1]
    with pytest.raises(routes.MapError, match="image, end_image, source_video"):
        routes.FILTERS["base64"]("text", "")


def test_end_image_and_source_video_are_fields_of_the_map(settings) -> None:
    table = {"kling_25": {"fal": {
        "image-to-video": "i2v", "text-to-video": "t2v",
        "input": {"prompt": "prompt", "image_url": "image|data_url",
                  "tail_image_url": "end_image|data_url|only:image-to-video",
                  "clip": "source_video|base64"},
    }}}  # fmt: skip
    (route,) = routes.parse(table, "test", ["fal"])["kling_25"]
    assert route.takes("end_image") and route.takes("source_video")
    assert route.takes("end_image", "image-to-video")
    assert not route.takes("end_image", "text-to-video")
    spec = build_spec(
        {"model": "local", "prompt": "p", "image_url": "https://example.com/a.png"},
        test_mode=True,
    )
    end = routes.ImageInput(b"end", "image/png")
    job = routes.job_for(route, spec, PNG, end_image=end)
    assert job.input["tail_image_url"] == end.data_url() and job.end_image == end
    clip = routes.VideoInput(b"clip", "video/mp4")
    job = routes.job_for(route, spec, PNG, source_video=clip)
    # The clip replaces the first frame: the fields that read `image` are left out.
    assert job.input == {"prompt": "p", "clip": "Y2xpcA=="} and job.source_video == clip


def test_a_route_may_send_end_images_to_an_endpoint_of_their_own() -> None:
    table = {"veo-31": {"fal": {
        "image-to-video": "plain", "input": {"image_url": "image|data_url"},
        "with_end_image": {"image-to-video": "first-last",
                           "input": {"first": "image|data_url", "last": "end_image|data_url"}},
    }}}  # fmt: skip
    (route,) = routes.parse(table, "test", ["fal"])["veo-31"]
    assert route.takes("end_image", "image-to-video")
    assert route.with_end_image is not None and route.with_end_image.deadline_s == route.deadline_s
    spec = build_spec(
        {"model": "local", "prompt": "p", "image_url": "https://example.com/a.png"},
        test_mode=True,
    )
    assert routes.job_for(route, spec, PNG).upstream_model == "plain"
    end = routes.ImageInput(b"end", "image/png")
    job = routes.job_for(route, spec, PNG, end_image=end)
    assert job.upstream_model == "first-last"
    assert job.input == {"first": PNG.data_url(), "last": end.data_url()}
    bad = {"veo-31": {"fal": {"image-to-video": "x", "with_end_image": "y"}}}
    with pytest.raises(routes.MapError, match="with_end_image must be a table"):
        routes.parse(bad, "test", ["fal"])


def test_only_models_whose_serving_route_takes_an_end_image_accept_one(settings) -> None:
    settings.VIDEOGEN_PROVIDER_MAP = ""
    settings.FAL_KEY = settings.GEMINI_API_KEY = settings.OPENAI_API_KEY = ""
    settings.REPLICATE_API_TOKEN = "r8-token"
    by_key = {m.key: m for m in catalog.MODELS}
    i2v = "image-to-video"
    assert registry.takes_end_frame(by_key["veo-31"], test_mode=False, mode=i2v)
    assert not registry.takes_end_frame(by_key["kling_25"], test_mode=False, mode=i2v)
    assert not registry.takes_end_frame(by_key["wan-25"], test_mode=False, mode=i2v)
    assert not registry.takes_end_frame(by_key["sora-2"], test_mode=False, mode=i2v)
    settings.FAL_KEY = "fal-key"
    assert registry.takes_end_frame(by_key["kling_25"], test_mode=False, mode=i2v)
    assert not registry.takes_end_frame(by_key["kling_25"], test_mode=False, mode="text-to-video")
    settings.GEMINI_API_KEY = "gm-key"
    assert registry.extends_natively(by_key["veo-31"], test_mode=False)
    assert not registry.extends_natively(by_key["veo_3"], test_mode=False)
