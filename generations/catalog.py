"""The model catalog: what each model is and accepts (keys, names, modes, sizes, durations,
prices). Pure data: which engine serves a model on this server is decided by
generations/rendering/registry.py, from this and the server's configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from generations.vocabulary import I2V, T2V

RESOLUTIONS = ("480p", "720p", "1080p", "4K")
RESOLUTION_FACTOR = {"480p": Decimal("0.5"), "720p": Decimal("1"), "1080p": Decimal("2"),
                     "4K": Decimal("4")}  # fmt: skip
SHORT_SIDE = {"480p": 480, "720p": 720, "1080p": 1080, "4K": 2160}
ALL_ASPECTS = ("16:9", "9:16", "4:3", "3:4", "1:1", "9:21", "21:9")
# The reference lists 16:9, 4:3, 1:1 and 9:21; 9:16 is what OpenAI's 720x1280 means.
REFERENCE_ASPECTS = ("16:9", "9:16", "4:3", "1:1", "9:21")


@dataclass(frozen=True)
class ModelInfo:
    key: str
    name: str
    provider: str
    description: str
    modes: tuple[str, ...]
    resolutions: tuple[str, ...]
    durations: tuple[int, ...]  # every allowed whole-second duration
    aspect_ratios: tuple[str, ...] = REFERENCE_ASPECTS
    premium: bool = False
    fps: int = 30
    style: str = "realistic"
    # A built-in engine that always serves it (the procedural `local`); None: whatever this
    # server is configured with serves it, if anything (generations/rendering/registry.py).
    engine: str | None = None
    procedural: bool = False
    # Credits per second of video at 720p (other resolutions scale by RESOLUTION_FACTOR).
    price_per_second: Decimal = Decimal("1")
    notes: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    # Shots (CONTRACT 6): the model can end on a given last frame (`end_image_url`), and can
    # extend a clip itself (otherwise extension continues from the last frame, image-to-video).
    end_frame: bool = False
    native_extend: bool = False

    @property
    def can_extend(self) -> bool:
        """A clip can be continued: natively, or from its last frame as image-to-video."""
        return self.native_extend or I2V in self.modes

    @property
    def capabilities(self) -> tuple[str, ...]:
        """What the model can do, as `GET /api/v1/models` lists it."""
        names = [str(mode) for mode in self.modes]
        if self.end_frame:
            names.append("end-frame")
        if self.can_extend:
            names.append("extend")
        return tuple(names)

    @property
    def default_duration(self) -> int:
        return 5 if 5 in self.durations else self.durations[0]

    @property
    def default_resolution(self) -> str:
        return "720p" if "720p" in self.resolutions else self.resolutions[-1]

    @property
    def min_duration(self) -> int:
        return min(self.durations)

    @property
    def max_duration(self) -> int:
        return max(self.durations)


def _upto(top: str) -> tuple[str, ...]:
    return RESOLUTIONS[: RESOLUTIONS.index(top) + 1]


def _span(low: int, high: int) -> tuple[int, ...]:
    return tuple(range(low, high + 1))


MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        "sora-2",
        "Sora 2",
        "OpenAI",
        "Highly realistic video and audio with precise physical simulation.",
        (T2V, I2V),
        _upto("1080p"),
        (4, 8, 10, 12),
        notes="10 s as in VideoGenAPI; 4, 8 or 12 s as OpenAI's `seconds`.",
    ),
    ModelInfo(
        "higgsfield_v1",
        "Higgsfield",
        "Higgsfield",
        "Excellent motion understanding and photorealistic output for cinematic scenes.",
        (T2V,),
        _upto("1080p"),
        _span(5, 15),
    ),
    ModelInfo(
        "kling_25",
        "Kling 2.5",
        "Kuaishou",
        "Kling 2.5 Turbo Pro: fluid motion, cinematic visuals, precise prompts.",
        (T2V, I2V),
        _upto("1080p"),
        _span(5, 10),
        end_frame=True,
    ),
    ModelInfo(
        "veo_3",
        "Veo 3 Fast",
        "Google",
        "Google's advanced video model with incredible detail.",
        (T2V, I2V),
        _upto("1080p"),
        (8,),
        premium=True,
        price_per_second=Decimal("4"),
    ),
    ModelInfo(
        "nanobanana-video",
        "Nano Banana",
        "Google",
        "Lightweight and fast, for short clips and rapid prototyping.",
        (T2V, I2V),
        _upto("720p"),
        _span(5, 10),
    ),
    ModelInfo(
        "pixverse",
        "Pixverse V5",
        "PixVerse",
        "Highly realistic, high-quality videos.",
        (T2V, I2V),
        _upto("1080p"),
        _span(5, 8),
    ),
    ModelInfo(
        "ltxv-13b",
        "LTX-Video 13B",
        "Lightricks",
        "LTX-Video 13B, fast open text-to-video.",
        (T2V,),
        ("480p",),
        _span(1, 60),
    ),
    ModelInfo(
        "veo-31",
        "Veo 3.1",
        "Google",
        "Google's cutting-edge model: hyper-realistic detail and creative control.",
        (T2V, I2V),
        _upto("1080p"),
        (8,),
        premium=True,
        price_per_second=Decimal("4"),
        end_frame=True,
        native_extend=True,
    ),
    ModelInfo(
        "seedance",
        "Seedance",
        "ByteDance",
        "Lightning-fast model for prototyping and creative experiments.",
        (T2V, I2V),
        _upto("1080p"),
        _span(5, 10),
    ),
    ModelInfo(
        "wan-25",
        "Wan 2.5",
        "Alibaba",
        "Open-source model that generates realistic videos with audio.",
        (T2V, I2V),
        _upto("1080p"),
        _span(1, 30),
        end_frame=True,
    ),
    ModelInfo(
        "framepack",
        "FramePack",
        "lllyasviel",
        "Efficient autoregressive image-to-video (HunyuanVideo-based).",
        (I2V,),
        ("480p", "720p"),
        _span(1, 60),
        aspect_ratios=("16:9", "9:16", "1:1"),
        end_frame=True,
    ),
    ModelInfo(
        "local",
        "Local (procedural)",
        "videogen",
        "Built-in procedural renderer: offline, on the CPU, deterministic for a seed. "
        "Not a neural model: it paints scenes from the prompt's words, it does not "
        "understand them.",
        (T2V, I2V),
        RESOLUTIONS,
        _span(1, 60),
        aspect_ratios=ALL_ASPECTS,
        engine="local",
        procedural=True,
        style="procedural",
        end_frame=True,
    ),
)

DEFAULT_MODEL = "sora-2"
_BY_KEY = {m.key: m for m in MODELS}


def get_model(key: str) -> ModelInfo | None:
    return _BY_KEY.get(key)


# IPTC digital source types (https://cv.iptc.org/newscodes/digitalsourcetype/), as a video's
# C2PA manifest and its share page name them (CONTRACT 8): a neural model's output, and the
# procedural `local` engine's.
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"


def digital_source_type(model_key: str, engine: str) -> str:
    """Procedural media for the `local` engine, trained algorithmic media for every neural
    model."""
    model = get_model(model_key)
    procedural = engine == "local" or (model is not None and model.procedural)
    return ALGORITHMIC_MEDIA if procedural else TRAINED_ALGORITHMIC_MEDIA


def credits_for(model: ModelInfo, duration: int, resolution: str) -> Decimal:
    """What a generation costs a team that pays in credits."""
    return (model.price_per_second * duration * RESOLUTION_FACTOR[resolution]).quantize(
        Decimal("0.01")
    )


def frame_size(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """(width, height): the short side is the resolution, the long side follows the ratio,
    rounded to an even number (H.264 4:2:0 needs even sides)."""
    short = SHORT_SIDE[resolution]
    a, b = (int(x) for x in aspect_ratio.split(":"))
    if a == b:
        return short, short
    long = 2 * round(short * max(a, b) / min(a, b) / 2)
    return (long, short) if a > b else (short, long)
