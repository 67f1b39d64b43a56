"""The diffusers engine on tiny random pipelines (FramePack, LTX-Video, Wan), in process.

The pipelines are real diffusers pipelines built from configs in tests/tiny_pipelines.py,
saved with save_pretrained and configured through VIDEOGEN_DIFFUSERS_MODELS, exactly as an
operator would; only their weights are tiny and random. What a pipeline was called with is
recorded by wrapping its class's __call__ around the real one. Tests that need torch skip,
saying so, where the `gpu` extra is not installed; the configuration tests run everywhere.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from django.core import checks
from PIL import Image

from generations import catalog
from generations.media.encode import probe
from generations.models import Generation
from generations.rendering import registry
from generations.rendering.base import Canceled, EngineError, RenderContext
from generations.rendering.diffusers import config
from generations.spec import GenerationSpec
from generations.vocabulary import I2V, T2V
from tests import tiny_pipelines
from tests.conftest import Account

ROOT = Path(__file__).resolve().parent.parent
EXTRA_REASON = "the diffusers engine needs the `gpu` extra: pip install '.[gpu]'"
# Frames are generated tiny (then scaled up to the contract's 854x480) to keep tests fast.
TINY_MAX_PIXELS = 48 * 32
TINY_STEPS = 2


@pytest.fixture(scope="session")
def gpu_extra() -> Any:
    pytest.importorskip("torch", reason=EXTRA_REASON)
    pytest.importorskip("diffusers", reason=EXTRA_REASON)
    import torch

    # Two small cores shared with the encoder: one torch thread is faster than two.
    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="session")
def folders(gpu_extra: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tiny pipeline saved once for the session (plus FramePack's other sampling)."""
    root = tmp_path_factory.mktemp("pipelines")
    saved = {name: tiny_pipelines.save(name, root / name) for name in tiny_pipelines.BUILDERS}
    vanilla = root / "framepack-vanilla"
    shutil.copytree(saved["framepack"], vanilla)
    options = json.loads((vanilla / config.OPTIONS_FILE).read_text())
    (vanilla / config.OPTIONS_FILE).write_text(json.dumps(options | {"sampling_type": "vanilla"}))
    saved["framepack-vanilla"] = vanilla
    return saved


# Which catalog key each tiny pipeline serves in these tests. LTX image-to-video stands in
# for a model whose catalog entry takes images (ltxv-13b is text-to-video in the catalog).
SERVES = {
    "framepack": "framepack",
    "framepack-vanilla": "framepack",
    "ltx-t2v": "ltxv-13b",
    "ltx-i2v": "pixverse",
    "wan-t2v": "wan-25",
    "wan-i2v": "wan-25",
}


def configure(settings: Any, folders: dict[str, Path], *names: str) -> None:
    settings.VIDEOGEN_DIFFUSERS_MODELS = [(SERVES[n], str(folders[n])) for n in names]
    settings.VIDEOGEN_DIFFUSERS_STEPS = {}
    settings.VIDEOGEN_DIFFUSERS_MAX_PIXELS = TINY_MAX_PIXELS
    settings.VIDEOGEN_DIFFUSERS_DEVICE = "auto"
    settings.VIDEOGEN_DIFFUSERS_CACHE = 2


@pytest.fixture
def engine(gpu_extra: Any) -> Any:
    from generations.rendering.diffusers.engine import DiffusersEngine

    return DiffusersEngine()


def make_spec(model: str, mode: str = T2V, **overrides: Any) -> GenerationSpec:
    fields: dict[str, Any] = {
        "model": model,
        "mode": mode,
        "prompt": "a cat walks on the beach at sunset",
        "negative_prompt": "",
        "image_url": "https://example.com/cat.png" if mode == I2V else "",
        "duration": 1,
        "resolution": "480p",
        "aspect_ratio": "16:9",
        "width": 854,
        "height": 480,
        "fps": 30,
        "num_frames": 30,
        "seed": 42,
        "camera_fixed": False,
        "add_audio": False,
        "audio_prompt": "",
        "style": "realistic",
        "cfg_scale": None,
        "guidance_scale": None,
        "enable_safety_checker": False,
    }
    fields.update(overrides)
    return GenerationSpec(**fields)


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.values: list[float] = []
        self.stop_after = stop_after

    def progress(self, value: float) -> None:
        self.values.append(value)

    def should_stop(self) -> bool:
        return self.stop_after is not None and len(self.values) >= self.stop_after


@pytest.fixture(scope="session")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    pixels = (rng.random((360, 640, 3)) * 255).astype(np.uint8)
    pixels[100:260, 200:440] = (240, 180, 30)
    path = tmp_path_factory.mktemp("input") / "first.png"
    Image.fromarray(pixels).save(path)
    return path


def render(engine: Any, spec: GenerationSpec, out: Path, image: Path | None = None,
           recorder: Recorder | None = None, end_image: Path | None = None) -> Any:  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    recorder = recorder or Recorder()
    ctx = RenderContext(out, recorder.progress, recorder.should_stop, image, end_image)
    return engine.render(spec, ctx)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every pipeline call's keyword arguments and the frame count it returned."""
    import diffusers

    recorded: list[dict[str, Any]] = []
    for name in config.PIPELINE_CLASSES:
        cls = getattr(diffusers, name)
        real = cls.__call__

        def wrapper(self: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            entry = {"class": type(self).__name__, **kwargs}
            recorded.append(entry)
            output = _real(self, *args, **kwargs)
            entry["returned_frames"] = int(output.frames[0].shape[0])
            return output

        monkeypatch.setattr(cls, "__call__", wrapper)
    return recorded


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


# --- every family and mode, end to end through the engine -------------------------------------

CASES = [
    ("wan-t2v", T2V, False),
    ("wan-i2v", I2V, False),
    ("ltx-t2v", T2V, False),
    ("ltx-i2v", I2V, False),
    ("framepack", I2V, False),
    ("framepack", I2V, True),
    ("framepack-vanilla", I2V, False),
]


@pytest.mark.parametrize(("name", "mode", "with_last"), CASES)
def test_each_pipeline_renders_a_contract_mp4(
    settings: Any, folders: dict[str, Path], engine: Any, calls: list[dict[str, Any]],
    picture: Path, tmp_path: Path, name: str, mode: str, with_last: bool,
) -> None:  # fmt: skip
    configure(settings, folders, name)
    spec = make_spec(SERVES[name], mode)
    image = picture if mode == I2V else None
    last = picture if with_last else None
    result = render(engine, spec, tmp_path / "out", image, end_image=last)

    info = probe(result.video_path)
    assert (info["width"], info["height"]) == (854, 480)
    assert info["frame_count"] == 30 and info["fps"] == 30
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["color_space"] == "bt709" and not info["has_audio"]
    for extra in (result.poster_path, result.extras["preview"], result.extras["spritesheet"]):
        assert extra.stat().st_size > 0
    assert Image.open(result.poster_path).size == (854, 480)

    (call,) = calls
    index = json.loads((folders[name] / "model_index.json").read_text())
    assert call["class"] == index["_class_name"]
    # The planned frame count is what the pipeline really returned.
    assert call["returned_frames"] == call["num_frames"] or name.startswith("framepack")
    assert ("image" in call) == (mode == I2V)
    assert ("last_image" in call) == with_last


def test_a_framepack_section_count_returns_the_frames_planned(
    settings: Any, folders: dict[str, Path], engine: Any, calls: list[dict[str, Any]],
    picture: Path, tmp_path: Path,
) -> None:  # fmt: skip
    from generations.rendering.diffusers.engine import native_frames_needed

    configure(settings, folders, "framepack")
    render(engine, make_spec("framepack", I2V), tmp_path / "out", picture)
    (call,) = calls
    # latent_window_size 2, VAE time factor 4: 8 frames per section plus the first, and
    # enough sections to cover 30 frames at 30 fps: 4 sections, 33 frames.
    assert call["latent_window_size"] == 2
    assert call["num_frames"] == 4 * ((2 - 1) * 4 + 1)
    assert call["returned_frames"] == 33 >= native_frames_needed(30, 30, 30)
    assert call["sampling_type"] == "inverted_anti_drifting"


# --- parameter mapping ---------------------------------------------------------------------


def test_ltx_gets_the_frame_count_its_vae_takes_at_its_rate_and_the_requested_guidance(
    settings: Any, folders: dict[str, Path], engine: Any, calls: list[dict[str, Any]],
    tmp_path: Path,
) -> None:  # fmt: skip
    configure(settings, folders, "ltx-t2v")
    settings.VIDEOGEN_DIFFUSERS_STEPS = {"ltxv-13b": 3}
    spec = make_spec(
        "ltxv-13b", negative_prompt="blurry", guidance_scale=4.5, cfg_scale=7.0, seed=7,
        style="anime", camera_fixed=True,
    )  # fmt: skip
    render(engine, spec, tmp_path / "out")
    (call,) = calls
    # 30 frames at 30 fps span 29/30 s: at 25 fps that takes 26 frames; LTX takes t * k + 1,
    # t the VAE's time compression (8 in the real one, 4 in this tiny one): 29.
    assert call["num_frames"] == 29 and call["returned_frames"] == 29
    assert call["frame_rate"] == 25
    assert call["num_inference_steps"] == 3
    assert call["guidance_scale"] == 4.5  # guidance_scale wins over cfg_scale
    assert "true_cfg_scale" not in call
    assert call["negative_prompt"] == "blurry"
    assert call["prompt"] == "a cat walks on the beach at sunset, anime style, static camera"
    assert call["height"] % 32 == 0 and call["width"] % 32 == 0
    assert call["width"] / call["height"] == pytest.approx(854 / 480, rel=0.5)
    assert call["max_sequence_length"] == 16
    assert call["output_type"] == "pt"
    assert call["generator"].initial_seed() == 7


def test_wan_gets_4k_plus_1_frames_and_cfg_scale_as_its_guidance(
    settings: Any, folders: dict[str, Path], engine: Any, calls: list[dict[str, Any]],
    tmp_path: Path,
) -> None:  # fmt: skip
    configure(settings, folders, "wan-t2v")
    render(engine, make_spec("wan-25", cfg_scale=3.5, duration=2, num_frames=60), tmp_path / "o")
    (call,) = calls
    # 60 frames at 30 fps span 59/30 s: at 16 fps that is 33 frames, 4k + 1.
    assert call["num_frames"] == 33 and call["returned_frames"] == 33
    assert call["guidance_scale"] == 3.5
    assert "negative_prompt" not in call and "frame_rate" not in call
    assert call["num_inference_steps"] == config.FAMILY_DEFAULTS["wan"].steps
    assert call["height"] % 16 == 0 and call["width"] % 16 == 0


def test_framepack_maps_cfg_scale_to_true_cfg_with_a_negative_branch(
    settings: Any, folders: dict[str, Path], engine: Any, calls: list[dict[str, Any]],
    picture: Path, tmp_path: Path,
) -> None:  # fmt: skip
    configure(settings, folders, "framepack-vanilla")
    spec = make_spec("framepack", I2V, cfg_scale=2.0, guidance_scale=9.0)
    render(engine, spec, tmp_path / "out", picture)
    (call,) = calls
    assert call["true_cfg_scale"] == 2.0 and call["guidance_scale"] == 9.0
    assert call["negative_prompt"] == ""
    assert call["sampling_type"] == "vanilla"
    # The operator's call options from videogen.json reach the pipeline.
    assert call["prompt_template"] == {"template": "{}", "crop_start": 0}


def test_the_conditioning_image_is_cover_cropped_to_the_generated_size(
    settings: Any, folders: dict[str, Path], engine: Any, calls: list[dict[str, Any]],
    picture: Path, tmp_path: Path,
) -> None:  # fmt: skip
    configure(settings, folders, "wan-i2v")
    render(engine, make_spec("wan-25", I2V, aspect_ratio="9:16", width=480, height=854),
           tmp_path / "out", picture)  # fmt: skip
    (call,) = calls
    assert call["image"].size == (call["width"], call["height"])
    assert call["height"] > call["width"]
    assert probe(tmp_path / "out" / "video.mp4")["width"] == 480


def test_every_request_parameter_is_documented() -> None:
    pytest.importorskip("numpy")
    from generations.rendering.diffusers.engine import PARAMETER_USE

    fields = {f.name for f in dataclasses.fields(GenerationSpec)}
    internal = {"model", "requested_model", "width", "height", "fps"}  # not the engine's
    assert fields - internal <= set(PARAMETER_USE)


# --- progress, cancel, determinism ---------------------------------------------------------


def test_progress_rises_with_each_step_and_ends_at_100(
    settings: Any, folders: dict[str, Path], engine: Any, tmp_path: Path
) -> None:
    configure(settings, folders, "wan-t2v")
    settings.VIDEOGEN_DIFFUSERS_STEPS = {"wan-25": 4}
    recorder = Recorder()
    render(engine, make_spec("wan-25"), tmp_path / "out", recorder=recorder)
    values = recorder.values
    assert values == sorted(values) and values[-1] == 100
    # One report per denoising step (a quarter of the denoising share each), then frames.
    assert values[:4] == [22.5, 45.0, 67.5, 90.0]
    assert len(values) > 4 + 29


def test_cancel_stops_the_pipeline_at_the_next_step(
    settings: Any, folders: dict[str, Path], engine: Any, calls: list[dict[str, Any]],
    picture: Path, tmp_path: Path,
) -> None:  # fmt: skip
    configure(settings, folders, "framepack")
    settings.VIDEOGEN_DIFFUSERS_STEPS = {"framepack": 5}
    recorder = Recorder(stop_after=1)
    with pytest.raises(Canceled):
        render(engine, make_spec("framepack", I2V), tmp_path / "out", picture, recorder)
    # 4 sections x 5 steps were planned; it stopped after the first step.
    assert recorder.values == [90.0 / 20]
    assert "returned_frames" not in calls[0]
    assert not list((tmp_path / "out").iterdir())


def test_cancel_while_encoding_leaves_no_outputs(
    settings: Any, folders: dict[str, Path], engine: Any, tmp_path: Path
) -> None:
    configure(settings, folders, "wan-t2v")
    recorder = Recorder(stop_after=TINY_STEPS + 5)
    with pytest.raises(Canceled):
        render(engine, make_spec("wan-25"), tmp_path / "out", recorder=recorder)
    assert not list((tmp_path / "out").iterdir())


def test_the_same_seed_gives_the_same_frames_and_another_seed_others(
    settings: Any, folders: dict[str, Path], engine: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    from generations.media.encode import Mp4Writer

    # The frames the engine hands the encoder (x264's own bitstream may vary with timing).
    encoded: list[list[np.ndarray]] = []
    real = Mp4Writer.write_i420

    def write_i420(writer: Mp4Writer, buffer: np.ndarray) -> None:
        encoded[-1].append(buffer.copy())
        real(writer, buffer)

    monkeypatch.setattr(Mp4Writer, "write_i420", write_i420)
    configure(settings, folders, "ltx-t2v")
    for seed, folder in ((5, "a"), (5, "b"), (6, "c")):
        encoded.append([])
        render(engine, make_spec("ltxv-13b", seed=seed), tmp_path / folder)
    a, b, c = encoded
    assert len(a) == 30
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_audio_is_added_when_asked(
    settings: Any, folders: dict[str, Path], engine: Any, tmp_path: Path
) -> None:
    configure(settings, folders, "wan-t2v")
    result = render(engine, make_spec("wan-25", add_audio=True), tmp_path / "out")
    info = probe(result.video_path)
    assert result.has_audio and info["audio_codec"] == "aac"
    assert info["audio_duration"] == pytest.approx(1.0, abs=0.05)


def test_a_worker_loads_each_pipeline_once(
    settings: Any, folders: dict[str, Path], engine: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    configure(settings, folders, "wan-t2v", "ltx-t2v")
    settings.VIDEOGEN_DIFFUSERS_CACHE = 1
    loads: list[str] = []
    real = type(engine)._load

    def load(self: Any, local: config.LocalPipeline) -> Any:
        loads.append(local.key)
        return real(self, local)

    monkeypatch.setattr(type(engine), "_load", load)
    render(engine, make_spec("wan-25", num_frames=2), tmp_path / "1")
    render(engine, make_spec("wan-25", num_frames=2), tmp_path / "2")
    assert loads == ["wan-25"]
    # One pipeline kept per worker here: switching models unloads the other.
    render(engine, make_spec("ltxv-13b", num_frames=2), tmp_path / "3")
    render(engine, make_spec("wan-25", num_frames=2), tmp_path / "4")
    assert loads == ["wan-25", "ltxv-13b", "wan-25"]
    assert registry.get_engine("diffusers") is registry.get_engine("diffusers")


def test_a_last_frame_is_refused_by_pipelines_without_one(
    settings: Any, folders: dict[str, Path], engine: Any, picture: Path, tmp_path: Path
) -> None:
    configure(settings, folders, "ltx-i2v", "wan-i2v")
    for model in ("pixverse", "wan-25"):
        with pytest.raises(EngineError, match="end_image_url") as info:
            render(engine, make_spec(model, I2V), tmp_path, picture, end_image=picture)
        assert info.value.code == "invalid_request"


def test_the_end_image_reaches_framepack_as_its_last_image_cover_cropped(
    settings: Any, folders: dict[str, Path], engine: Any, calls: list[dict[str, Any]],
    picture: Path, tmp_path: Path,
) -> None:  # fmt: skip
    configure(settings, folders, "framepack")
    # A portrait end picture, half blue and half green, distinct from the first image.
    pixels = np.zeros((640, 360, 3), dtype=np.uint8)
    pixels[:320] = (20, 40, 230)
    pixels[320:] = (30, 220, 60)
    end = tmp_path / "end.png"
    Image.fromarray(pixels).save(end)
    render(engine, make_spec(SERVES["framepack"], I2V), tmp_path / "out", picture, end_image=end)
    (call,) = calls
    first, last = np.asarray(call["image"]), np.asarray(call["last_image"])
    assert last.shape == first.shape  # both at the generated size
    # Cover-cropped (the landscape frame takes the middle band of the portrait), not
    # stretched: the frame is split between blue and green around its middle row.
    top, bottom = (
        last[: last.shape[0] // 4].mean(axis=(0, 1)),
        last[-last.shape[0] // 4 :].mean(axis=(0, 1)),
    )
    assert top[2] > 200 and top[1] < 60 and bottom[1] > 200 and bottom[2] < 80
    assert not np.array_equal(first, last)


# --- the plan (no torch needed) ------------------------------------------------------------


def test_sequential_offload_keeps_on_the_gpu_what_its_hooks_cannot_stream(gpu_extra: Any) -> None:
    """On CUDA, VIDEOGEN_DIFFUSERS_OFFLOAD=sequential failed every FramePack render inside its
    SigLIP image encoder (weights left on the meta device). The same accelerate hooks that
    diffusers puts on each component show it on the CPU; the engine keeps such components
    whole on the GPU."""
    from accelerate import cpu_offload

    from generations.rendering.diffusers.engine import unstreamable_components

    torch = gpu_extra

    def offloaded(keep: list[str]) -> Any:
        pipe = tiny_pipelines.framepack()
        for name, component in pipe.components.items():
            if isinstance(component, torch.nn.Module) and name not in keep:
                offload_buffers = len(component._parameters) > 0
                cpu_offload(component, torch.device("cpu"), offload_buffers=offload_buffers)
        return pipe

    kept = unstreamable_components(tiny_pipelines.framepack())
    assert kept == ["image_encoder"]
    assert unstreamable_components(tiny_pipelines.wan(image_to_video=True)) == []
    call = {
        "image": Image.new("RGB", (32, 32), (200, 100, 50)),
        "prompt": "a cat walks on the beach",
        "height": 32,
        "width": 32,
        "num_frames": 9,
        "num_inference_steps": 1,
        "output_type": "pt",
        **tiny_pipelines.TINY_OPTIONS["framepack"]["call"],
        "latent_window_size": 2,
        "max_sequence_length": 16,
    }
    with pytest.raises(RuntimeError, match="meta"):
        offloaded([])(**call)
    frames = offloaded(kept)(**call).frames[0]
    assert tuple(frames.shape[1:]) == (3, 32, 32)


def test_sizes_round_to_the_models_multiples_under_the_pixel_cap() -> None:
    from generations.rendering.diffusers.engine import cover_box, generation_size

    assert generation_size(854, 480, 32, 1280 * 720) == (864, 480)
    assert generation_size(854, 480, 16, 1280 * 720) == (848, 480)
    assert generation_size(1920, 1080, 16, 1280 * 720) == (1280, 720)
    assert generation_size(480, 854, 32, 1280 * 720) == (480, 864)
    assert cover_box(864, 480, 854, 480) == (5, 0, 854, 480)


def test_frames_are_resampled_in_time_from_the_native_rate() -> None:
    from generations.rendering.diffusers.engine import native_frames_needed, source_positions

    assert native_frames_needed(30, 30, 30) == 30
    # 5 s at 30 fps spans 149/30 s: 79.5 frames at 16 fps, so 81 (the last one blends two).
    assert native_frames_needed(150, 30, 16) == 81
    assert source_positions(4, 30, 15, 10) == [0.0, 0.5, 1.0, 1.5]
    # Fewer frames than planned: squeezed into what came back rather than frozen.
    assert source_positions(3, 30, 30, 2) == [0.0, 0.5, 1.0]


# --- configuration, availability and the missing extra (no torch needed) ------------------


def write_folder(path: Path, class_name: str, options: dict[str, Any] | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "model_index.json").write_text(json.dumps({"_class_name": class_name}))
    if options is not None:
        (path / config.OPTIONS_FILE).write_text(json.dumps(options))
    return path


def test_a_configured_model_is_served_by_diffusers_ahead_of_a_hosted_provider(
    settings: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(config, "missing_modules", lambda: ())
    settings.FAL_KEY = "fal-key"
    kling = catalog.get_model("kling_25")
    assert kling is not None and registry.engine_name_for(kling, test_mode=False) == "fal"
    folder = write_folder(tmp_path / "wan", "WanPipeline")
    settings.VIDEOGEN_DIFFUSERS_MODELS = [("kling_25", str(folder))]
    assert registry.engine_name_for(kling, test_mode=False) == "diffusers"
    assert registry.engine_name_for(kling, test_mode=False, mode=T2V) == "diffusers"
    # Only the modes it has a pipeline for; never sent upstream instead.
    assert registry.engine_name_for(kling, test_mode=False, mode=I2V) is None
    assert registry.engine_name_for(kling, test_mode=True) == "local"


def test_a_key_may_name_a_text_and_an_image_pipeline(
    settings: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(config, "missing_modules", lambda: ())
    t2v = write_folder(tmp_path / "t2v", "WanPipeline", {"steps": 30})
    i2v = write_folder(tmp_path / "i2v", "WanImageToVideoPipeline", {"fps": 24})
    settings.VIDEOGEN_DIFFUSERS_MODELS = f"wan-25={t2v},wan-25={i2v}"
    assert config.pipeline_for("wan-25", T2V).options.steps == 30  # type: ignore[union-attr]
    assert config.pipeline_for("wan-25", I2V).options.fps == 24  # type: ignore[union-attr]
    assert config.pipeline_for("wan-25", I2V).class_name == "WanImageToVideoPipeline"  # type: ignore[union-attr]


def test_without_the_extra_configured_models_are_unavailable_and_say_why(
    settings: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(config, "missing_modules", lambda: ("torch", "diffusers"))
    settings.VIDEOGEN_DIFFUSERS_MODELS = [
        ("wan-25", str(write_folder(tmp_path / "w", "WanPipeline")))
    ]
    wan = catalog.get_model("wan-25")
    assert wan is not None and not registry.is_available(wan)
    reason = config.unavailable_reason("wan-25")
    assert reason is not None and "pip install 'videogen[gpu]'" in reason and "torch" in reason
    (warning,) = config.check_diffusers_models()
    assert warning.id == "videogen.W101" and "pip install 'videogen[gpu]'" in warning.msg


def test_the_engine_says_which_extra_is_missing(settings: Any, monkeypatch: Any) -> None:
    import builtins

    from generations.rendering.diffusers import engine as engine_module

    real_import = builtins.__import__

    def no_torch(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in ("torch", "diffusers"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    monkeypatch.setattr(config, "missing_modules", lambda: ("torch", "diffusers"))
    with pytest.raises(EngineError) as caught:
        engine_module._import_torch()
    assert caught.value.code == "engine_unavailable"
    assert "pip install 'videogen[gpu]'" in caught.value.message


def test_check_names_every_broken_entry(settings: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(config, "missing_modules", lambda: ())
    good = write_folder(tmp_path / "good", "HunyuanVideoFramepackPipeline")
    settings.VIDEOGEN_DIFFUSERS_MODELS = [
        ("framepack", str(good)),
        ("wan-25", str(tmp_path / "missing")),
        ("no-such-model", str(good)),
        ("ltxv-13b", str(write_folder(tmp_path / "ltx-i2v", "LTXImageToVideoPipeline"))),
        ("seedance", str(write_folder(tmp_path / "sd", "StableDiffusionPipeline"))),
        ("kling_25", str(write_folder(tmp_path / "bad", "WanPipeline", {"sampling_type": "x"}))),
        ("sora-2", ""),
    ]
    messages = config.check_diffusers_models()
    assert all(isinstance(m, checks.Warning) and m.id == "videogen.W102" for m in messages)
    text = "\n".join(m.msg for m in messages)
    assert "does not exist" in text
    assert "'no-such-model' is not a catalog model" in text
    assert "text-to-video only" in text
    assert "'StableDiffusionPipeline' is not supported" in text
    assert "`sampling_type` is for FramePack only" in text
    assert "expected `key=/path/to/pipeline`" in text
    assert len(messages) == 6
    assert config.pipeline_for("framepack") is not None
    assert config.pipeline_for("wan-25") is None


def test_manage_check_reports_the_missing_extra_without_failing(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "wan", "WanPipeline")
    # A Python that cannot import torch: the check must say what to install, and exit 0.
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "from importlib.machinery import PathFinder\n"
        "class Hidden(PathFinder):\n"
        "    @classmethod\n"
        "    def find_spec(cls, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'diffusers'):\n"
        "            return None\n"
        "        return PathFinder.find_spec(name, path, target)\n"
        "sys.meta_path = [Hidden if f is PathFinder else f for f in sys.meta_path]\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(blocker),
        "VIDEOGEN_DATA_DIR": str(tmp_path / "data"),
        "VIDEOGEN_DIFFUSERS_MODELS": f"wan-25={folder}",
        "DJANGO_SETTINGS_MODULE": "videogen_site.settings",
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "videogen.W101" in done.stderr and "pip install 'videogen[gpu]'" in done.stderr


def test_the_web_and_parent_processes_never_import_torch(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason=EXTRA_REASON)
    folder = write_folder(tmp_path / "wan", "WanPipeline")
    script = (
        "import django, sys; django.setup()\n"
        "import videogen_site.urls, generations.admin  # all that a web process imports\n"
        "from generations import catalog, tasks\n"
        "from generations.rendering import registry\n"
        "from generations.rendering.diffusers import engine\n"
        "from django_q import cluster\n"
        "wan = catalog.get_model('wan-25')\n"
        "assert registry.engine_name_for(wan, test_mode=False) == 'diffusers'\n"
        "assert registry.get_engine('diffusers').name == 'diffusers'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers')))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "VIDEOGEN_DATA_DIR": str(tmp_path / "data"),
        "VIDEOGEN_DIFFUSERS_MODELS": f"wan-25={folder}",
        "DJANGO_SETTINGS_MODULE": "videogen_site.settings",
        "Q_CLUSTER_NAME": "gpu",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "[]"


def test_the_gpu_cluster_takes_one_worker_per_gpu(monkeypatch: Any) -> None:
    from videogen_site import settings as site_settings

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,-1,3")
    assert site_settings.gpu_count() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert site_settings.gpu_count() == 0
    gpu = site_settings.Q_CLUSTER["ALT_CLUSTERS"]["gpu"]  # type: ignore[index]
    assert gpu["workers"] == site_settings.VIDEOGEN_GPU_WORKERS >= 1
    assert gpu["timeout"] < gpu["retry"]


def _png_data_url(picture: Path) -> str:
    import base64

    buf = io.BytesIO()
    Image.open(picture).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


# --- through the API and the real task code ----------------------------------------------


def test_diffusers_jobs_are_queued_for_the_gpu_cluster_and_others_for_the_main_one(
    settings: Any, owner: Account, tmp_path: Path, monkeypatch: Any
) -> None:
    from django_q.models import OrmQ

    monkeypatch.setattr(config, "missing_modules", lambda: ())
    settings.VIDEOGEN_DIFFUSERS_MODELS = [
        ("wan-25", str(write_folder(tmp_path / "w", "WanPipeline")))
    ]
    client = owner.client()
    body = {"prompt": "a cat walks on the beach", "duration": 1, "resolution": "480p"}
    assert client.post("/api/v1/generate", body | {"model": "wan-25"}).status_code == 200
    assert client.post("/api/v1/generate", body | {"model": "local"}).status_code == 200
    assert sorted(OrmQ.objects.values_list("key", flat=True)) == ["gpu", "videogen"]
    # The model listing says which engine serves it, and in which modes.
    listed = {m["key"]: m for m in client.get("/api/v1/models").json()["models"]}
    assert listed["wan-25"]["available"] and listed["wan-25"]["engine"] == "diffusers"
    assert listed["wan-25"]["available_modes"] == [T2V]


def test_a_generation_runs_through_the_api_on_the_diffusers_engine(
    settings: Any, folders: dict[str, Path], owner: Account, sync_tasks: None, picture: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    configure(settings, folders, "framepack")
    client = owner.client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/generate", {
            "model": "framepack", "prompt": "a cat walks on the beach", "duration": 1,
            "resolution": "480p", "aspect_ratio": "9:16", "image_url": _png_data_url(picture),
            "seed": 9, "add_audio": True,
        })  # fmt: skip
    assert response.status_code == 200, response.content
    gen = Generation.objects.get(generation_id=response.json()["generation_id"])
    assert gen.status == "completed" and gen.engine == "diffusers", gen.error_message
    info = probe(gen.video.path)
    assert (info["width"], info["height"], info["frame_count"]) == (480, 854, 30)
    assert info["has_audio"] and gen.poster and gen.preview and gen.spritesheet
    status = client.get(f"/api/v1/status/{gen.generation_id}").json()
    assert status["status"] == "completed" and status["progress"] == 100
