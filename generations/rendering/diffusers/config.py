"""Which local diffusers pipelines this server serves, read without importing torch.

`VIDEOGEN_DIFFUSERS_MODELS` maps catalog keys to folders saved with `save_pretrained`
(`key=/path,key2=/path2`; a key may appear twice, once with a text-to-video and once with an
image-to-video pipeline). Each folder's `model_index.json` names its pipeline class; the
classes below are the ones the engine knows how to drive. An optional `videogen.json` beside
it holds what belongs to the checkpoint rather than to the server: its native frame rate,
FramePack's sampling type and latent window size, the number of steps, and extra keyword
arguments for the pipeline call.

The web process and the GPU cluster's parent process only ever use this module (JSON files
and `importlib.util.find_spec`): torch and CUDA are initialised inside a GPU worker, on its
first render (see generations/engines/diffusers.py). `manage.py check` reports here what
is wrong with the configuration: a missing `gpu` extra, a folder that is not a pipeline, a
key the catalog does not know.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import checks

from generations import catalog
from generations.vocabulary import I2V, T2V

ENGINE_NAME = "diffusers"

# The extra that brings torch, diffusers, transformers, accelerate, ftfy, sentencepiece and
# protobuf; named in every message about it.
EXTRA_INSTALL = "pip install 'videogen[gpu]' (or `pip install '.[gpu]'` in a checkout)"
EXTRA_MODULES = ("torch", "diffusers", "transformers", "accelerate", "ftfy", "sentencepiece")

FAMILY_FRAMEPACK = "framepack"
FAMILY_LTX = "ltx"
FAMILY_WAN = "wan"

# Pipeline class (model_index.json's `_class_name`) -> (family, mode). Nothing else is
# loaded: a folder cannot make the worker instantiate an arbitrary class.
PIPELINE_CLASSES: dict[str, tuple[str, str]] = {
    "HunyuanVideoFramepackPipeline": (FAMILY_FRAMEPACK, I2V),
    "LTXPipeline": (FAMILY_LTX, T2V),
    "LTXImageToVideoPipeline": (FAMILY_LTX, I2V),
    "WanPipeline": (FAMILY_WAN, T2V),
    "WanImageToVideoPipeline": (FAMILY_WAN, I2V),
}


@dataclass(frozen=True)
class FamilyDefaults:
    # The frame rate the checkpoints were trained at; the engine resamples to the catalog's.
    fps: int
    # Denoising steps when neither VIDEOGEN_DIFFUSERS_STEPS nor videogen.json says.
    steps: int


FAMILY_DEFAULTS: dict[str, FamilyDefaults] = {
    # FramePack's own demo runs 25 steps at 30 fps.
    FAMILY_FRAMEPACK: FamilyDefaults(fps=30, steps=25),
    # LTX-Video: the pipeline's default frame rate (25, also passed as `frame_rate`) and
    # 40 steps, where the 0.9.x checkpoints are indistinguishable from 50.
    FAMILY_LTX: FamilyDefaults(fps=25, steps=40),
    # Wan 2.1/2.2 (14B): 16 fps, 50 steps as in diffusers and the Wan repository.
    FAMILY_WAN: FamilyDefaults(fps=16, steps=50),
}

OPTIONS_FILE = "videogen.json"
SAMPLING_TYPES = ("inverted_anti_drifting", "vanilla")
MAX_STEPS = 500


@dataclass(frozen=True)
class PipelineOptions:
    fps: int
    steps: int
    # FramePack only: "inverted_anti_drifting" (FramePackI2V_HY) or "vanilla" (FramePack F1).
    sampling_type: str | None = None
    latent_window_size: int | None = None
    max_sequence_length: int | None = None
    # Extra keyword arguments for the pipeline call (e.g. a prompt template).
    call: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LocalPipeline:
    key: str
    path: Path
    class_name: str
    family: str
    mode: str
    options: PipelineOptions


@dataclass(frozen=True)
class Problem:
    entry: str
    message: str


@dataclass(frozen=True)
class Scan:
    pipelines: tuple[LocalPipeline, ...]
    problems: tuple[Problem, ...]
    # Keys named in the setting at all (served by this engine, or by nothing when broken).
    keys: frozenset[str]


def parse_pairs(value: str | Iterable[tuple[Any, Any]]) -> tuple[tuple[str, str], ...]:
    """`key=value,key2=value2` (or already a list of pairs) as a tuple of pairs."""
    if isinstance(value, str):
        items: list[tuple[str, str]] = []
        for item in value.split(","):
            if item.strip():
                key, _, rest = item.partition("=")
                items.append((key.strip(), rest.strip()))
        return tuple(items)
    return tuple((str(k).strip(), str(v).strip()) for k, v in value)


@functools.cache
def missing_modules() -> tuple[str, ...]:
    """The modules of the `gpu` extra that are not installed (found without importing)."""
    return tuple(name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None)


def missing_extra_message() -> str | None:
    missing = missing_modules()
    if not missing:
        return None
    return (
        f"the `gpu` extra is not installed (missing: {', '.join(missing)}); "
        f"install it with {EXTRA_INSTALL}"
    )


def scan() -> Scan:
    """The configured pipelines (cached per setting value: cheap enough for every request)."""
    raw = getattr(settings, "VIDEOGEN_DIFFUSERS_MODELS", ())
    steps = getattr(settings, "VIDEOGEN_DIFFUSERS_STEPS", {}) or {}
    return _scan(parse_pairs(raw or ()), tuple(sorted(dict(steps).items())))


@functools.lru_cache(maxsize=16)
def _scan(entries: tuple[tuple[str, str], ...], steps: tuple[tuple[str, int], ...]) -> Scan:
    pipelines: list[LocalPipeline] = []
    problems: list[Problem] = []
    keys: set[str] = set()
    for key, raw_path in entries:
        entry = f"{key}={raw_path}"
        if not key or not raw_path:
            problems.append(Problem(entry, "expected `key=/path/to/pipeline`"))
            continue
        keys.add(key)
        model = catalog.get_model(key)
        if model is None or model.engine is not None:
            problems.append(Problem(entry, f"{key!r} is not a catalog model this engine serves"))
            continue
        try:
            pipeline = _read_folder(key, Path(raw_path), dict(steps).get(key))
        except ValueError as exc:
            problems.append(Problem(entry, str(exc)))
            continue
        if pipeline.mode not in model.modes:
            problems.append(
                Problem(
                    entry,
                    f"{pipeline.class_name} is {pipeline.mode}, but the catalog lists {key!r} "
                    f"for {' and '.join(model.modes)} only",
                )
            )
            continue
        if any(p.key == key and p.mode == pipeline.mode for p in pipelines):
            problems.append(Problem(entry, f"{key!r} already has a {pipeline.mode} pipeline"))
            continue
        pipelines.append(pipeline)
    return Scan(tuple(pipelines), tuple(problems), frozenset(keys))


def _read_folder(key: str, path: Path, steps: int | None) -> LocalPipeline:
    index = path / "model_index.json"
    try:
        class_name = json.loads(index.read_text())["_class_name"]
    except FileNotFoundError:
        raise ValueError(
            f"{index} does not exist (save the pipeline with save_pretrained)"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{index} is not a diffusers model index ({exc})") from None
    if class_name not in PIPELINE_CLASSES:
        known = ", ".join(PIPELINE_CLASSES)
        raise ValueError(f"pipeline class {class_name!r} is not supported (known: {known})")
    family, mode = PIPELINE_CLASSES[class_name]
    options = _read_options(path / OPTIONS_FILE, family, steps)
    return LocalPipeline(key, path.resolve(), class_name, family, mode, options)


def _read_options(path: Path, family: str, steps_setting: int | None) -> PipelineOptions:
    defaults = FAMILY_DEFAULTS[family]
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a JSON object")
        unknown = set(data) - {
            "fps", "steps", "sampling_type", "latent_window_size", "max_sequence_length", "call"
        }  # fmt: skip
        if unknown:
            raise ValueError(f"{path}: unknown option(s) {', '.join(sorted(unknown))}")

    def positive(name: str, value: object, top: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
            raise ValueError(f"{path}: `{name}` must be an integer from 1 to {top}")
        return value

    steps = steps_setting if steps_setting is not None else data.get("steps", defaults.steps)
    sampling = data.get("sampling_type")
    if sampling is not None and (family != FAMILY_FRAMEPACK or sampling not in SAMPLING_TYPES):
        raise ValueError(
            f"{path}: `sampling_type` is for FramePack only, one of {', '.join(SAMPLING_TYPES)}"
        )
    window = data.get("latent_window_size")
    if window is not None and family != FAMILY_FRAMEPACK:
        raise ValueError(f"{path}: `latent_window_size` is for FramePack only")
    call = data.get("call", {})
    if not isinstance(call, dict):
        raise ValueError(f"{path}: `call` must be a JSON object of pipeline arguments")
    max_len = data.get("max_sequence_length")
    return PipelineOptions(
        fps=positive("fps", data.get("fps", defaults.fps), 120),
        steps=positive("steps", steps, MAX_STEPS),
        sampling_type=sampling,
        latent_window_size=None if window is None else positive("latent_window_size", window, 64),
        max_sequence_length=None
        if max_len is None
        else positive("max_sequence_length", max_len, 4096),
        call=call,
    )


def is_configured(key: str) -> bool:
    """True when the operator routed this catalog key to local pipelines (served or broken)."""
    return key in scan().keys


def pipeline_for(key: str, mode: str | None = None) -> LocalPipeline | None:
    """The pipeline that serves `key` (in `mode`), if it is configured and loadable here."""
    if missing_modules():
        return None
    for pipeline in scan().pipelines:
        if pipeline.key == key and (mode is None or pipeline.mode == mode):
            return pipeline
    return None


def unavailable_reason(key: str) -> str | None:
    """Why a configured key cannot be served, for logs and `manage.py check`; None if it can."""
    if not is_configured(key):
        return None
    extra = missing_extra_message()
    if extra:
        return f"model {key!r} is configured for local diffusers pipelines, but {extra}"
    if pipeline_for(key) is None:
        reasons = "; ".join(p.message for p in scan().problems if p.entry.startswith(f"{key}="))
        return f"model {key!r} has no usable diffusers pipeline: {reasons}"
    return None


def check_diffusers_models(
    app_configs: object = None, **kwargs: object
) -> list[checks.CheckMessage]:
    """`manage.py check` (and every management command; registered in apps.py): what is
    wrong with the setting.

    Warnings, not errors: a broken GPU model must not stop the web server and the other
    models; it is listed as unavailable."""
    result = scan()
    messages: list[checks.CheckMessage] = []
    if result.keys and missing_modules():
        messages.append(
            checks.Warning(
                f"VIDEOGEN_DIFFUSERS_MODELS names {', '.join(sorted(result.keys))}, but "
                f"{missing_extra_message()}. Until then these models are unavailable.",
                id="videogen.W101",
            )
        )
    for problem in result.problems:
        messages.append(
            checks.Warning(
                f"VIDEOGEN_DIFFUSERS_MODELS entry {problem.entry!r}: {problem.message}. "
                "This entry is ignored.",
                id="videogen.W102",
            )
        )
    return messages
