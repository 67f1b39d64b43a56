"""The `diffusers` engine: FramePack, LTX-Video and Wan, run locally on a GPU (or the CPU).

One engine drives five diffusers pipelines (see diffusers_config.PIPELINE_CLASSES), each
loaded offline from a folder saved with `save_pretrained`. It runs inside a worker of the
GPU cluster (`Q_CLUSTER_NAME=gpu`): torch is imported, and CUDA initialised, on the first
render in that worker, never at import and never in the cluster's parent process (which
forks its workers, and a CUDA context does not survive a fork). Each worker takes a GPU of
its own and keeps its pipelines loaded between jobs.

A render maps the request onto the pipeline (`plan_call`: frame count, size, steps,
guidance, seed), runs it with a step callback that reports progress and stops the run when
the job is canceled, then streams the frames it returned into the MP4 writer: each frame is
resampled in time to the catalog's frame rate, cover-cropped and scaled to the contract's
exact size, encoded, and offered to the poster, the animated preview and the spritesheet.
Beyond the pipeline's own output, one frame at a time is held.

PARAMETER_USE below says, for every request parameter, what this engine does with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import logging
import math
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from django.conf import settings
from PIL import Image

from generations import catalog
from generations.media.audio import synthesize
from generations.media.encode import (
    AudioSamples,
    Mp4Writer,
    PreviewCollector,
    SpritesheetCollector,
    audio_samples_for,
    preview_size,
    rgb_to_i420,
    shrink,
    sprite_thumb_size,
    write_poster,
)
from generations.media.images import ImageError, cover_crop, load_image
from generations.rendering.base import Canceled, EngineError, RenderContext, RenderResult
from generations.rendering.diffusers import config
from generations.spec import GenerationSpec
from generations.vocabulary import I2V, T2V

log = logging.getLogger(__name__)

VIDEO_NAME = "video.mp4"
POSTER_NAME = "poster.jpg"
PREVIEW_NAME = "preview.webp"
SPRITESHEET_NAME = "spritesheet.jpg"

PARAMETER_USE: dict[str, str] = {
    "prompt": "used: the pipeline's prompt (style and camera_fixed may add a few words)",
    "negative_prompt": "used: the pipeline's negative prompt (what to steer away from)",
    "seed": "used: seeds the noise (a CPU torch.Generator): the same seed, parameters and "
    "pipeline give the same frames on the same hardware",
    "duration": "used: the clip lasts duration x fps frames (unless num_frames is given); the "
    "pipeline renders the nearest frame count it accepts that covers it, at its native frame "
    "rate, and the frames are resampled (blended) to the catalog's 30 fps",
    "num_frames": "used: the exact number of frames delivered",
    "resolution": "used: with aspect_ratio, the output size; frames are generated at the "
    "nearest size the model accepts (multiples of 16 or 32, at most "
    "VIDEOGEN_DIFFUSERS_MAX_PIXELS), then cover-cropped and scaled to it",
    "aspect_ratio": "used: with resolution, the exact frame size",
    "mode": "used: picks the text-to-video or the image-to-video pipeline of the model",
    "image_url": "used (image-to-video): the first frame, cover-cropped to the generated size",
    "end_image_url": "used by FramePack (its `last_image`): the last frame, cover-cropped; the "
    "other pipelines have none and refuse it",
    "guidance_scale": "used: the pipeline's guidance_scale (FramePack: the distilled guidance "
    "embedding; LTX-Video and Wan: classifier-free guidance)",
    "cfg_scale": "used: FramePack's true_cfg_scale (real classifier-free guidance; above 1 it "
    "runs a negative branch, the negative prompt or an empty one); LTX-Video and Wan use it as "
    "guidance_scale when guidance_scale is not given",
    "style": "used: a style other than the model's default is added to the prompt",
    "camera_fixed": "used: true adds 'static camera' to the prompt (the models take no camera "
    "parameter)",
    "add_audio": "used: true adds a 48 kHz stereo AAC sound bed (synthesized, as the local "
    "engine does; the models make no sound)",
    "audio_prompt": "used with add_audio: its words choose the sounds",
    "enable_safety_checker": "not used by the engine; the server screens the prompt before the "
    "job (and the frames, when an image classifier is configured)",
}

# Share of the progress bar spent denoising; decoding the frames and encoding take the rest.
DENOISE_SHARE = 90.0
# A heartbeat is sent when nothing was reported for this long (loading a 13B pipeline or
# decoding a long clip takes minutes; the reaper takes a run silent for 120 s as lost).
KEEPALIVE_S = 10.0
# "auto" memory options: model CPU offload and VAE tiling below this much GPU memory;
# VAE tiling also from this frame size up (the VAE decode is the peak of a render).
OFFLOAD_BELOW_GIB = 48.0
TILING_BELOW_GIB = 48.0
TILING_FROM_PIXELS = 1280 * 720
# What the pipelines' own input checks demand of height and width.
SPATIAL_MULTIPLE = {config.FAMILY_FRAMEPACK: 16, config.FAMILY_LTX: 32, config.FAMILY_WAN: 16}
# FramePack's latent frames per section in the released checkpoints.
DEFAULT_LATENT_WINDOW = 9
# Frames closer than this to a source frame are taken as they are, not blended.
BLEND_EPSILON = 1e-4
GPU_SLOT_DIR = Path(tempfile.gettempdir()) / "videogen-gpu-slots"

RGBFrame = npt.NDArray[np.uint8]


# --- planning: the request as pipeline arguments (pure, no torch) ----------------------------


@dataclass(frozen=True)
class Geometry:
    """What a loaded pipeline accepts: sizes are multiples of `spatial`, frame counts are
    `temporal * k + 1`."""

    spatial: int
    temporal: int


@dataclass(frozen=True)
class CallPlan:
    # Keyword arguments for the pipeline, except images, generator and callback.
    kwargs: dict[str, Any]
    width: int
    height: int
    # Frames the pipeline will return, at native_fps.
    native_frames: int
    native_fps: int
    # Step callbacks to expect (FramePack runs its steps once per latent section).
    total_steps: int
    sections: int = 1
    notes: tuple[str, ...] = field(default_factory=tuple)


def generation_size(width: int, height: int, multiple: int, max_pixels: int) -> tuple[int, int]:
    """The size to generate at: the requested one, shrunk to at most `max_pixels` (aspect
    kept), rounded to the nearest multiples the model accepts."""
    scale = min(1.0, math.sqrt(max_pixels / (width * height)))
    w = max(multiple, round(width * scale / multiple) * multiple)
    h = max(multiple, round(height * scale / multiple) * multiple)
    return w, h


def native_frames_needed(num_frames: int, fps: int, native_fps: int) -> int:
    """Source frames that cover `num_frames` at `fps` when sampled at native_fps (the last
    output frame may fall between two source frames, and blends them)."""
    span = (num_frames - 1) * native_fps / fps
    return math.ceil(span - 1e-9) + 1


def prompt_text(spec: GenerationSpec) -> str:
    model = catalog.get_model(spec.model)
    parts = [spec.prompt.strip()]
    if spec.style and (model is None or spec.style != model.style):
        parts.append(f"{spec.style} style")
    if spec.camera_fixed:
        parts.append("static camera")
    return ", ".join(p for p in parts if p)


def plan_call(
    spec: GenerationSpec,
    pipeline: config.LocalPipeline,
    geometry: Geometry,
    *,
    max_pixels: int,
) -> CallPlan:
    """Map the request onto the pipeline's arguments."""
    options = pipeline.options
    family = pipeline.family
    multiple = math.lcm(geometry.spatial, SPATIAL_MULTIPLE[family])
    width, height = generation_size(spec.width, spec.height, multiple, max_pixels)
    needed = native_frames_needed(spec.num_frames, spec.fps, options.fps)
    kwargs: dict[str, Any] = dict(options.call)
    kwargs |= {
        "prompt": prompt_text(spec),
        "height": height,
        "width": width,
        "num_inference_steps": options.steps,
        "output_type": "pt",
    }
    if spec.negative_prompt:
        kwargs["negative_prompt"] = spec.negative_prompt
    if options.max_sequence_length is not None:
        kwargs["max_sequence_length"] = options.max_sequence_length
    sections = 1
    if family == config.FAMILY_FRAMEPACK:
        window = options.latent_window_size or DEFAULT_LATENT_WINDOW
        per_section = geometry.temporal * window
        sections = max(1, math.ceil((needed - 1) / per_section))
        # The pipeline turns num_frames into sections of (window - 1) * temporal + 1 frames
        # and returns temporal * window frames per section, plus the first.
        kwargs["num_frames"] = sections * ((window - 1) * geometry.temporal + 1)
        kwargs["latent_window_size"] = window
        kwargs["sampling_type"] = options.sampling_type or config.SAMPLING_TYPES[0]
        native = per_section * sections + 1
        if spec.guidance_scale is not None:
            kwargs["guidance_scale"] = spec.guidance_scale
        if spec.cfg_scale is not None:
            kwargs["true_cfg_scale"] = spec.cfg_scale
            if spec.cfg_scale > 1 and "negative_prompt" not in kwargs:
                # True CFG needs a negative branch; FramePack's own demo uses an empty one.
                kwargs["negative_prompt"] = ""
    else:
        k = max(1, math.ceil((needed - 1) / geometry.temporal))
        native = k * geometry.temporal + 1
        kwargs["num_frames"] = native
        guidance = spec.guidance_scale if spec.guidance_scale is not None else spec.cfg_scale
        if guidance is not None:
            kwargs["guidance_scale"] = guidance
        if family == config.FAMILY_LTX:
            kwargs["frame_rate"] = options.fps
    return CallPlan(
        kwargs=kwargs,
        width=width,
        height=height,
        native_frames=native,
        native_fps=options.fps,
        total_steps=options.steps * sections,
        sections=sections,
    )


def source_positions(num_frames: int, fps: int, native_fps: int, available: int) -> list[float]:
    """For each output frame, its position among the `available` source frames: its time
    at the native rate; squeezed to fit if the pipeline returned fewer frames than planned."""
    step = native_fps / fps
    if num_frames > 1 and (num_frames - 1) * step > available - 1:
        step = (available - 1) / (num_frames - 1)
    return [min(j * step, available - 1.0) for j in range(num_frames)]


def cover_box(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int, int, int]:
    """(x, y, w, h): the centred part of a src frame with the destination's aspect ratio."""
    scale = max(dst_w / src_w, dst_h / src_h)
    w = min(src_w, max(1, round(dst_w / scale)))
    h = min(src_h, max(1, round(dst_h / scale)))
    return (src_w - w) // 2, (src_h - h) // 2, w, h


# --- the worker's GPU and the loaded pipelines -----------------------------------------------

_slot_lock: Any = None


def _gpu_slot(count: int) -> int:
    """The GPU this worker process uses: the first one no other worker on this machine holds
    (a lock file per GPU, released when the process ends, so a recycled worker frees it)."""
    global _slot_lock
    if _slot_lock is not None:
        return int(_slot_lock[0])
    GPU_SLOT_DIR.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        handle = (GPU_SLOT_DIR / f"{index}.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _slot_lock = (index, handle)
        return index
    index = os.getpid() % count
    log.warning("more GPU workers than GPUs: worker %s shares GPU %s", os.getpid(), index)
    _slot_lock = (index, None)
    return index


def _import_torch() -> Any:
    """torch (and, imported with it, diffusers), or a clear EngineError naming the extra."""
    # Offline: a folder is all we load, and nothing may call a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import diffusers  # noqa: F401
        import torch
    except ImportError as exc:
        message = config.missing_extra_message() or f"it cannot be imported ({exc})"
        raise EngineError(
            "engine_unavailable", f"The diffusers engine is not usable here: {message}."
        ) from None
    return torch


@dataclass
class _Loaded:
    pipe: Any
    device: str
    geometry: Geometry
    gpu_gib: float | None


class DiffusersEngine:
    """The `diffusers` engine: one per worker process (registry.get_engine caches it)."""

    name = config.ENGINE_NAME

    def __init__(self) -> None:
        self._pipelines: OrderedDict[Path, _Loaded] = OrderedDict()
        self._device: str | None = None

    # Loading -----------------------------------------------------------------------------

    def device(self) -> str:
        if self._device is None:
            torch = _import_torch()
            wanted = str(settings.VIDEOGEN_DIFFUSERS_DEVICE or "auto")
            if wanted in ("auto", "cuda"):
                if torch.cuda.is_available():
                    wanted = f"cuda:{_gpu_slot(torch.cuda.device_count())}"
                elif wanted == "auto":
                    wanted = "cpu"
            self._device = wanted
        return self._device

    def pipeline(self, local: config.LocalPipeline) -> _Loaded:
        """The loaded pipeline for this folder: loaded on first use, then kept."""
        loaded = self._pipelines.get(local.path)
        if loaded is not None:
            self._pipelines.move_to_end(local.path)
            return loaded
        limit = max(1, int(settings.VIDEOGEN_DIFFUSERS_CACHE))
        while len(self._pipelines) >= limit:
            # Free the least recently used one before loading: two large pipelines rarely
            # fit on one GPU together.
            _, old = self._pipelines.popitem(last=False)
            del old
            self._free_memory()
        loaded = self._load(local)
        self._pipelines[local.path] = loaded
        return loaded

    def _load(self, local: config.LocalPipeline) -> _Loaded:
        torch = _import_torch()
        import diffusers

        device = self.device()
        gpu_gib: float | None = None
        if device.startswith("cuda"):
            index = torch.device(device).index or 0
            gpu_gib = torch.cuda.get_device_properties(index).total_memory / 2**30
        dtype = self._dtype(torch, device)
        dtypes: Any = dtype
        if local.family == config.FAMILY_WAN and dtype != torch.float32:
            # Wan's VAE is meant to run in float32 (as the Wan repository and diffusers do).
            dtypes = {"default": dtype, "vae": torch.float32}
        started = time.monotonic()
        try:
            pipe = getattr(diffusers, local.class_name).from_pretrained(
                str(local.path), local_files_only=True, dtype=dtypes
            )
        except Exception:
            log.exception("loading the %s pipeline from %s failed", local.key, local.path)
            raise EngineError(
                "model_load_failed",
                f"The {local.key} model could not be loaded on this server; the operator "
                "was told why (worker log).",
            ) from None
        pipe.set_progress_bar_config(disable=True)
        offload = str(settings.VIDEOGEN_DIFFUSERS_OFFLOAD or "auto")
        if offload == "auto":
            small = gpu_gib is not None and gpu_gib < OFFLOAD_BELOW_GIB
            offload = "model" if small else "none"
        if offload == "model" and device != "cpu":
            pipe.enable_model_cpu_offload(device=device)
        elif offload == "sequential" and device != "cpu":
            pipe._exclude_from_cpu_offload = [
                *pipe._exclude_from_cpu_offload,
                *unstreamable_components(pipe),
            ]
            pipe.enable_sequential_cpu_offload(device=device)
        else:
            pipe.to(device)
        log.info(
            "loaded %s (%s) from %s on %s, %s, offload %s in %.1f s",
            local.key, local.class_name, local.path, device, dtype, offload,
            time.monotonic() - started,
        )  # fmt: skip
        return _Loaded(pipe, device, _geometry(pipe, local.family), gpu_gib)

    def _dtype(self, torch: Any, device: str) -> Any:
        wanted = str(settings.VIDEOGEN_DIFFUSERS_DTYPE or "auto")
        if wanted == "auto":
            if device.startswith("cuda"):
                return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.float32
        try:
            return {"bfloat16": torch.bfloat16, "float16": torch.float16,
                    "float32": torch.float32}[wanted]  # fmt: skip
        except KeyError:
            raise EngineError(
                "engine_misconfigured", f"VIDEOGEN_DIFFUSERS_DTYPE={wanted!r} is not a dtype."
            ) from None

    def _free_memory(self) -> None:
        gc.collect()
        torch = _import_torch()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # Rendering ---------------------------------------------------------------------------

    def render(self, spec: GenerationSpec, ctx: RenderContext) -> RenderResult:
        """Render `spec`; `ctx.end_image` (end_image_url) becomes FramePack's `last_image`,
        the clip's last frame."""
        _check_spec(spec)
        local = config.pipeline_for(spec.model, spec.mode)
        if local is None:
            reason = config.unavailable_reason(spec.model) or "no pipeline is configured for it"
            raise EngineError(
                "model_unavailable",
                f"Model {spec.model!r} ({spec.mode}) is not served by the diffusers engine "
                f"here: {reason}.",
            )
        if spec.mode == I2V and ctx.input_image is None:
            raise EngineError("invalid_image", "Image-to-video needs an input image.")
        last_image = ctx.end_image
        if last_image is not None and local.family != config.FAMILY_FRAMEPACK:
            # Wan's first-last-frame checkpoint (FLF2V) is a model of its own: a Wan
            # image-to-video transformer fails on two images.
            raise EngineError(
                "invalid_request",
                f"{local.class_name} cannot take a last frame: end_image_url needs FramePack "
                "on this server.",
            )
        with _Keepalive(ctx) as keepalive:
            loaded = self.pipeline(local)
            torch = _import_torch()
            plan = plan_call(
                spec, local, loaded.geometry, max_pixels=int(settings.VIDEOGEN_DIFFUSERS_MAX_PIXELS)
            )
            kwargs = dict(plan.kwargs)
            if ctx.input_image is not None and spec.mode == I2V:
                kwargs["image"] = _conditioning_image(ctx.input_image, plan.width, plan.height)
            if last_image is not None:
                kwargs["last_image"] = _conditioning_image(last_image, plan.width, plan.height)
            # Noise from a CPU generator: the same seed starts from the same noise on any
            # device (the pipelines move it where the latents live).
            kwargs["generator"] = torch.Generator(device="cpu").manual_seed(spec.seed)
            kwargs["callback_on_step_end"] = _StepCallback(ctx, keepalive, plan.total_steps)
            self._memory_options(loaded, plan)
            frames = self.call(loaded.pipe, kwargs)
            try:
                return self._write(spec, ctx, plan, frames, keepalive)
            finally:
                del frames

    def call(self, pipe: Any, kwargs: dict[str, Any]) -> Any:
        """Run the pipeline; its frames as a float tensor (frames, channels, height, width)."""
        try:
            output = pipe(**kwargs)
        except Exception as exc:
            # torch.OutOfMemoryError, by name: torch is not imported at module level.
            if type(exc).__name__ == "OutOfMemoryError":
                raise EngineError(
                    "out_of_memory",
                    "The GPU ran out of memory for this size and length; try a shorter clip "
                    "or a lower resolution (the operator can enable model CPU offload).",
                ) from None
            raise
        return output.frames[0]

    def _memory_options(self, loaded: _Loaded, plan: CallPlan) -> None:
        vae = getattr(loaded.pipe, "vae", None)
        if vae is None:
            return
        wanted = str(settings.VIDEOGEN_DIFFUSERS_VAE_TILING or "auto")
        if wanted == "auto":
            small_gpu = loaded.gpu_gib is not None and loaded.gpu_gib < TILING_BELOW_GIB
            tiling = small_gpu or plan.width * plan.height >= TILING_FROM_PIXELS
        else:
            tiling = wanted == "on"
        for name in ("tiling", "slicing"):
            method = getattr(vae, f"{'enable' if tiling else 'disable'}_{name}", None)
            if method is not None:
                method()

    def _write(
        self,
        spec: GenerationSpec,
        ctx: RenderContext,
        plan: CallPlan,
        frames: Any,
        keepalive: _Keepalive,
    ) -> RenderResult:
        import torch

        available = int(frames.shape[0])
        if available != plan.native_frames:
            log.warning(
                "%s returned %s frames where %s were planned", spec.model, available,
                plan.native_frames,
            )  # fmt: skip
        src_h, src_w = int(frames.shape[2]), int(frames.shape[3])
        x, y, w, h = cover_box(src_w, src_h, spec.width, spec.height)
        shrinking = w > spec.width or h > spec.height
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
        positions = source_positions(spec.num_frames, spec.fps, plan.native_fps, available)

        audio: Callable[[], AudioSamples] | None = None
        if spec.add_audio:
            audio = functools.partial(
                synthesize,
                spec.audio_prompt or spec.prompt,
                spec.seed,
                audio_samples_for(spec.num_frames, spec.fps),
            )
        out = Path(ctx.output_dir)
        video_path = out / VIDEO_NAME
        poster_path = out / POSTER_NAME
        preview_path = out / PREVIEW_NAME
        sprite_path = out / SPRITESHEET_NAME
        preview = PreviewCollector(spec.num_frames)
        sprites = SpritesheetCollector(spec.num_frames)
        preview_wh = preview_size(spec.width, spec.height)
        sprite_wh = sprite_thumb_size(spec.width, spec.height)
        share = 99.0 - DENOISE_SHARE
        try:
            with (
                torch.inference_mode(),
                Mp4Writer(
                    video_path,
                    spec.width,
                    spec.height,
                    spec.fps,
                    audio,
                    mark=ctx.mark,
                    label=ctx.label,
                ) as writer,
            ):
                for index, position in enumerate(positions):
                    if ctx.should_stop():
                        raise Canceled()
                    small = _frame_at(torch, frames, position)[y : y + h, x : x + w]
                    rgb = np.asarray(
                        cv2.resize(small, (spec.width, spec.height), interpolation=interpolation),
                        dtype=np.uint8,
                    )
                    # Converted with the same BT.709 matrix (and chroma averaging) as the
                    # procedural engine's frames and previews.
                    writer.write_i420(rgb_to_i420(rgb))
                    if index == 0:
                        write_poster(rgb, poster_path)
                    if preview.wants(index):
                        preview.offer(index, shrink(rgb, preview_wh))
                    if sprites.wants(index):
                        sprites.offer(index, shrink(rgb, sprite_wh))
                    pct = DENOISE_SHARE + share * (index + 1) / spec.num_frames
                    keepalive.report(pct)
            preview.save(preview_path)
            sprites.save(sprite_path)
        except BaseException:
            for path in (video_path, poster_path, preview_path, sprite_path):
                path.unlink(missing_ok=True)
            raise
        keepalive.report(100.0)
        return RenderResult.of(
            spec, video_path, poster_path, preview_path, sprite_path, has_audio=audio is not None
        )


def unstreamable_components(pipe: Any) -> list[str]:
    """Components that sequential offload cannot stream, kept whole on the GPU instead.

    Sequential offload hooks every leaf module to load its weights just before its forward
    and drop them after. torch's nn.MultiheadAttention reads its `out_proj` weights without
    calling `out_proj`, so they are still on the meta device when used: FramePack's SigLIP
    image encoder (its pooling head) failed so on CUDA ("Tensor on device meta is not on the
    expected device cuda:0"). Such a component is small beside the transformer."""
    import torch

    return [
        name
        for name, component in pipe.components.items()
        if isinstance(component, torch.nn.Module)
        and any(isinstance(m, torch.nn.MultiheadAttention) for m in component.modules())
    ]


def _geometry(pipe: Any, family: str) -> Geometry:
    """Read from the loaded pipeline, so that checkpoints with other VAEs (and the tiny test
    pipelines) get their own multiples."""
    transformer = getattr(pipe, "transformer", None) or getattr(pipe, "transformer_2", None)
    if family == config.FAMILY_LTX:
        spatial = pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size
        temporal = pipe.vae_temporal_compression_ratio * pipe.transformer_temporal_patch_size
        return Geometry(int(spatial), int(temporal))
    patch = transformer.config.patch_size if transformer is not None else 2
    if isinstance(patch, list | tuple):
        patch = patch[-1]
    return Geometry(int(pipe.vae_scale_factor_spatial * patch), int(pipe.vae_scale_factor_temporal))


def _frame_at(torch: Any, frames: Any, position: float) -> RGBFrame:
    """The frame at a (fractional) source position as HxWx3 uint8: between two frames, a
    linear blend of both."""
    low = int(math.floor(position))
    weight = position - low
    frame = frames[low]
    if weight > BLEND_EPSILON and low + 1 < frames.shape[0]:
        frame = torch.lerp(frame.float(), frames[low + 1].float(), weight)
    pixels = frame.float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return np.ascontiguousarray(pixels.permute(1, 2, 0).cpu().numpy())


def _conditioning_image(path: Path, width: int, height: int) -> Image.Image:
    """The input image cover-cropped to the generated size (the pipelines would stretch it)."""
    try:
        image = load_image(path.read_bytes())
    except OSError:
        raise EngineError("invalid_image", "The input image could not be read.") from None
    except ImageError as exc:
        raise EngineError(exc.code, exc.message) from None
    return Image.fromarray(cover_crop(image, width, height), mode="RGB")


class _StepCallback:
    """`callback_on_step_end`: progress per denoising step, and the stop on cancel."""

    def __init__(self, ctx: RenderContext, keepalive: _Keepalive, total: int) -> None:
        self.ctx = ctx
        self.keepalive = keepalive
        self.total = max(1, total)
        self.steps = 0

    def __call__(
        self, pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]
    ) -> dict[str, Any]:
        self.steps += 1
        self.keepalive.report(DENOISE_SHARE * min(1.0, self.steps / self.total))
        if self.ctx.should_stop():
            # Raising leaves the pipeline at once (setting `_interrupt` alone would still
            # decode the latents, and FramePack would go on to its next section).
            pipe._interrupt = True
            raise Canceled()
        return tensors


class _Keepalive:
    """Reports progress for the render, and repeats the last report when nothing new came
    for KEEPALIVE_S (loading or decoding), so that the run's heartbeat stays fresh."""

    def __init__(self, ctx: RenderContext, interval: float = KEEPALIVE_S) -> None:
        self.ctx = ctx
        self.interval = interval
        self.pct = 0.0
        self.last = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="diffusers-keepalive", daemon=True)

    def __enter__(self) -> _Keepalive:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def report(self, pct: float) -> None:
        self.pct = max(self.pct, pct)
        self.last = time.monotonic()
        self.ctx.progress(self.pct)

    def _run(self) -> None:
        from django.db import connections

        try:
            while not self.stop.wait(self.interval / 4):
                if time.monotonic() - self.last >= self.interval:
                    self.last = time.monotonic()
                    with contextlib.suppress(Exception):
                        self.ctx.progress(self.pct)
        finally:
            # The heartbeat wrote through this thread's own database connection.
            connections.close_all()


def _check_spec(spec: GenerationSpec) -> None:
    if spec.width <= 0 or spec.height <= 0 or spec.width % 2 or spec.height % 2:
        raise EngineError(
            "invalid_request", f"Video size {spec.width}x{spec.height} must be even and positive."
        )
    if spec.fps <= 0 or spec.num_frames <= 0:
        raise EngineError("invalid_request", "The video needs at least one frame and a frame rate.")
    if spec.mode not in (T2V, I2V):
        raise EngineError("invalid_request", f"Unknown mode {spec.mode!r}.")
