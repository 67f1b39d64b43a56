"""Every wire format's request, validated into the one request type (spec.GenerationSpec).

The API surfaces and the dashboard form all call `build_spec`; ApiError(400) names the first
field at fault. Validation knows the catalog (what a model accepts) and the registry (what
this server serves, and what a hosted provider accepts when it takes less)."""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping

from generations import catalog
from generations.errors import ApiError, invalid
from generations.rendering import registry
from generations.rendering.hosted import providers
from generations.routing import aliases
from generations.spec import GenerationSpec
from generations.vocabulary import I2V, T2V

MAX_PROMPT_CHARS = 1000
MAX_STYLE_CHARS = 40
MAX_URL_CHARS = 4096
MAX_SEED = 2**32 - 1
MAX_SCALE = 100.0
DATA_URL_MARK = "data:"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def _str(data: Mapping[str, object], name: str, *, max_chars: int, default: str = "") -> str:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise invalid(name, f"`{name}` must be a string.")
    value = value.strip()
    if len(value) > max_chars:
        raise invalid(
            name, f"`{name}` must be at most {max_chars} characters ({len(value)} given)."
        )
    return value


def _int(data: Mapping[str, object], name: str) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise invalid(name, f"`{name}` must be an integer.")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise invalid(name, f"`{name}` must be an integer.")


def _float(data: Mapping[str, object], name: str) -> float | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise invalid(name, f"`{name}` must be a number.")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise invalid(name, f"`{name}` must be a number.") from None
    else:
        raise invalid(name, f"`{name}` must be a number.")
    if not math.isfinite(result) or not 0 <= result <= MAX_SCALE:
        raise invalid(name, f"`{name}` must be between 0 and {MAX_SCALE:g}.")
    return result


def _bool(data: Mapping[str, object], name: str, default: bool) -> bool:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise invalid(name, f"`{name}` must be true or false.")


def _choice(value: str, name: str, allowed: tuple[str, ...], model: catalog.ModelInfo) -> str:
    if value not in allowed:
        raise invalid(
            name,
            f"`{name}` {value!r} is not supported by model {model.key!r}; "
            f"choose one of: {', '.join(allowed)}.",
        )
    return value


def shorten_image_url(url: str) -> str:
    """What we record of the client's image_url: data: URLs are bulky, keep their header."""
    if url.startswith(DATA_URL_MARK):
        return url.split(",", 1)[0] + ",..."
    return url


def build_spec(
    data: Mapping[str, object], *, test_mode: bool, default_model: str = catalog.DEFAULT_MODEL
) -> GenerationSpec:
    """Validate a request against the chosen model; ApiError(400) names the first bad field."""
    if not isinstance(data, Mapping):
        raise ApiError(400, "invalid_request", "The request body must be a JSON object.")

    model, requested_model = resolve_model(_str(data, "model", max_chars=64) or default_model)
    if registry.engine_name_for(model, test_mode=test_mode) is None:
        available = ", ".join(m.key for m in catalog.MODELS if registry.is_available(m))
        alias = f" (asked for as {requested_model!r})" if requested_model else ""
        raise invalid(
            "model",
            f"Model {model.key!r}{alias} is not available on this server (no engine is "
            f"configured for it). Available here: {available}.",
            "model_unavailable",
        )

    prompt = _str(data, "prompt", max_chars=MAX_PROMPT_CHARS)
    if not prompt:
        raise invalid("prompt", "`prompt` is required.", "missing_parameter")

    image_url = _image_url(data, "image_url")
    mode = I2V if image_url else T2V
    if mode not in model.modes:
        need = "requires an `image_url`" if mode == T2V else "does not take an image"
        raise invalid("image_url", f"Model {model.key!r} {need} ({', '.join(model.modes)} only).")
    if registry.engine_name_for(model, test_mode=test_mode, mode=mode) is None:
        raise invalid(
            "image_url",
            f"Model {model.key!r} is served here for "
            f"{'image-to-video' if mode == T2V else 'text-to-video'} only.",
            "model_unavailable",
        )

    end_image_url = _image_url(data, "end_image_url")
    if end_image_url and not registry.takes_end_frame(model, test_mode=test_mode, mode=mode):
        if not model.end_frame:
            why = "cannot end on a given frame (it has no `end-frame` capability)"
        elif mode == T2V and registry.takes_end_frame(model, test_mode=test_mode, mode=I2V):
            why = "takes an end frame only with a first frame: send `image_url` too"
        else:
            why = "cannot end on a given frame as served here"
        raise invalid("end_image_url", f"Model {model.key!r} {why}.")

    fps = model.fps
    num_frames = _int(data, "num_frames")
    duration = _int(data, "duration")
    if num_frames is not None:
        if not 1 <= num_frames <= model.max_duration * fps:
            raise invalid(
                "num_frames",
                f"`num_frames` must be between 1 and {model.max_duration * fps} "
                f"({model.max_duration} s at {fps} fps) for model {model.key!r}.",
            )
        if duration is None:
            duration = max(model.min_duration, math.ceil(num_frames / fps))
    if duration is None:
        duration = model.default_duration
    if duration not in model.durations:
        allowed = (
            f"between {model.min_duration} and {model.max_duration}"
            if len(model.durations) == model.max_duration - model.min_duration + 1
            else "one of " + ", ".join(str(d) for d in model.durations)
        )
        raise invalid("duration", f"`duration` must be {allowed} seconds for model {model.key!r}.")
    if num_frames is None:
        num_frames = duration * fps

    resolution = _str(data, "resolution", max_chars=10) or model.default_resolution
    if resolution.lower() == "4k":
        resolution = "4K"
    resolution = _choice(resolution, "resolution", model.resolutions, model)
    aspect_ratio = _str(data, "aspect_ratio", max_chars=10) or "16:9"
    aspect_ratio = _choice(aspect_ratio, "aspect_ratio", model.aspect_ratios, model)
    width, height = catalog.frame_size(resolution, aspect_ratio)
    if not test_mode:
        _check_route_limits(model, mode, duration, resolution, aspect_ratio)

    seed = _int(data, "seed")
    if seed is None or seed == -1:
        seed = secrets.randbelow(MAX_SEED + 1)
    elif not 0 <= seed <= MAX_SEED:
        raise invalid("seed", f"`seed` must be -1 (random) or between 0 and {MAX_SEED}.")

    return GenerationSpec(
        model=model.key,
        mode=mode,
        prompt=prompt,
        negative_prompt=_str(data, "negative_prompt", max_chars=MAX_PROMPT_CHARS),
        image_url=image_url,
        duration=duration,
        resolution=resolution,
        aspect_ratio=aspect_ratio,
        width=width,
        height=height,
        fps=fps,
        num_frames=num_frames,
        seed=seed,
        camera_fixed=_bool(data, "camera_fixed", False),
        add_audio=_bool(data, "add_audio", False),
        audio_prompt=_str(data, "audio_prompt", max_chars=MAX_PROMPT_CHARS),
        style=_str(data, "style", max_chars=MAX_STYLE_CHARS) or model.style,
        cfg_scale=_float(data, "cfg_scale"),
        guidance_scale=_float(data, "guidance_scale"),
        enable_safety_checker=_bool(data, "enable_safety_checker", True),
        end_image_url=end_image_url,
        requested_model=requested_model,
    )


def resolve_model(name: str, field: str = "model") -> tuple[catalog.ModelInfo, str]:
    """(the catalog model that serves `name`, the alias used or ""): an alias
    (VIDEOGEN_MODEL_ALIASES) is served by its target; an unknown name is a 400 naming
    `field`."""
    key, alias = aliases.resolve(name)
    model = catalog.get_model(key)
    if model is None:
        known = ", ".join([m.key for m in catalog.MODELS] + list(aliases.current().targets))
        raise invalid(field, f"Unknown model {name!r}; known models: {known}.", "invalid_model")
    return model, alias


def _image_url(data: Mapping[str, object], name: str) -> str:
    """An image given as an http(s) URL or a data: URL ("" for none)."""
    url = _str(data, name, max_chars=len(str(data.get(name) or "")))
    if url:
        lowered = url[:8].lower()
        is_data = lowered.startswith(DATA_URL_MARK)
        if not (is_data or lowered.startswith(("http://", "https://"))):
            raise invalid(name, f"`{name}` must be an http(s) URL or a data: URL.")
        if not is_data and len(url) > MAX_URL_CHARS:
            raise invalid(name, f"`{name}` must be at most {MAX_URL_CHARS} characters.")
    return url


def _check_route_limits(
    model: catalog.ModelInfo, mode: str, duration: int, resolution: str, aspect_ratio: str
) -> None:
    """A hosted provider may accept less than the model's reference limits (OpenAI's Sora
    takes 4, 8 or 12 s at 720p only): refuse here, naming the field, rather than charge
    for a job the provider will reject."""
    route = providers.route_for(model.key, mode)
    serving = registry.engine_name_for(model, test_mode=False, mode=mode)
    if route is None or serving != route.provider:
        return  # not served by that provider here (e.g. by a local diffusers pipeline)
    checks = (
        ("duration", duration, route.durations, " seconds"),
        ("resolution", resolution, route.resolutions, ""),
        ("aspect_ratio", aspect_ratio, route.aspect_ratios, ""),
    )
    for name, value, allowed, unit in checks:
        if allowed and value not in allowed:
            raise invalid(
                name,
                f"`{name}` must be one of {', '.join(str(a) for a in allowed)}{unit} for "
                f"model {model.key!r} as served here (by {route.provider}).",
            )
