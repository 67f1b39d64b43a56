"""Extending a clip (CONTRACT 6): a new generation whose video is the source's frames
followed by N seconds that continue from the source's last frame, charged as an N-second
generation and linked to the source (`extended_from`).

The new generation is image-to-video from the source's last frame (taken by the worker when
it starts: tasks/shots.py), or, where the serving route extends clips itself (Veo), the
provider's own extension; either way the worker joins the source and the continuation into
one timeline (media/stitch.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from generations import catalog
from generations.core import submissions
from generations.core.validation import build_spec
from generations.errors import ApiError, invalid
from generations.models import ApiKey, Generation, User
from generations.rendering import registry
from generations.vocabulary import I2V, Status

# The request fields of an extension; the rest is the source's.
FIELDS = ("duration", "prompt", "seed", "webhook_url")


def generation_extend(
    *,
    source: Generation,
    user: User,
    data: Mapping[str, Any],
    api_key: ApiKey | None = None,
    surface: str = "api",
    webhook_url: str = "",
    public_base: str = "",
) -> tuple[Generation, int]:
    """Validate and submit the extension of `source`: (generation, usage). 409 unless the
    source completed and still has its video; 400 naming the field otherwise."""
    if not isinstance(data, Mapping):
        raise ApiError(400, "invalid_request", "The request body must be a JSON object.")
    if source.status != Status.COMPLETED:
        raise ApiError(
            409,
            "not_completed",
            f"Generation {source.generation_id} is "
            f"{source.status}: only a completed generation can be extended.",
        )
    if source.files_purged_at is not None or not source.video:
        raise ApiError(
            409,
            "files_expired",
            f"Generation {source.generation_id}'s video was "
            "deleted by the retention policy: it cannot be extended.",
        )
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise invalid(
            unknown[0],
            f"An extension takes {', '.join(FIELDS)}; the rest is the "
            f"source's (`{unknown[0]}` is not taken).",
        )
    if data.get("duration") in (None, ""):
        raise invalid(
            "duration", "`duration` (the seconds to add) is required.", "missing_parameter"
        )
    model = catalog.get_model(source.model)
    test_mode = bool(api_key and api_key.is_test)
    if model is None:
        raise invalid("generation_id", f"Model {source.model!r} no longer exists.")
    native = registry.extends_natively(model, test_mode=test_mode)
    if not native and registry.engine_name_for(model, test_mode=test_mode, mode=I2V) is None:
        raise ApiError(
            400,
            "extend_unsupported",
            f"Model {model.key!r} cannot continue a clip "
            "here (it has no image-to-video, nor an extension of its own).",
            "generation_id",
        )
    request = {
        "model": model.key,
        "prompt": data.get("prompt") or source.prompt,
        "duration": data["duration"],
        "resolution": source.resolution,
        "aspect_ratio": source.aspect_ratio,
        "seed": data.get("seed", source.seed),
        "negative_prompt": source.negative_prompt,
        "add_audio": source.add_audio,
        "audio_prompt": source.audio_prompt,
        "style": source.style,
        "camera_fixed": source.camera_fixed,
        "enable_safety_checker": source.enable_safety_checker,
    }
    spec = build_spec(request, test_mode=test_mode)
    # Image-to-video from the source's last frame (the worker takes it when it starts).
    spec = dataclasses.replace(spec, mode=I2V, image_url="", end_image_url="")
    if (spec.width, spec.height, spec.fps) != (source.width, source.height, source.fps):
        raise ApiError(
            409,
            "size_changed",
            f"Generation {source.generation_id} is "
            f"{source.width}x{source.height} at {source.fps} fps, which model "
            f"{model.key!r} no longer makes.",
        )
    return submissions.generation_create(
        team=source.team,
        user=user,
        api_key=api_key,
        spec=spec,
        source=surface,
        extended_from=source,
        webhook_url=webhook_url,
        public_base=public_base,
    )
