"""The value every engine consumes: one generation request, validated.

Built from a wire format by generations/core/validation.py and from a stored row by
`Generation.spec()`; engines and hosted routes read it and never anything else of the
request. No Django, no engines: every layer may import it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GenerationSpec:
    model: str
    mode: str  # a vocabulary.Mode value
    prompt: str
    negative_prompt: str
    image_url: str  # as the client gave it ("" for text-to-video); data: URLs are shortened
    duration: int  # seconds
    resolution: str  # "480p" | "720p" | "1080p" | "4K"
    aspect_ratio: str  # "16:9", "9:16", ...
    width: int
    height: int
    fps: int
    num_frames: int  # duration * fps unless the client asked for a frame count
    seed: int  # the seed actually used (never -1)
    camera_fixed: bool
    add_audio: bool
    audio_prompt: str
    style: str
    cfg_scale: float | None
    guidance_scale: float | None
    enable_safety_checker: bool
    # The last frame (keyframes): as the client gave it, like image_url ("" for none).
    end_image_url: str = ""
    # The name the request used when it was an alias of `model` (VIDEOGEN_MODEL_ALIASES;
    # "" when it named the model itself).
    requested_model: str = ""
