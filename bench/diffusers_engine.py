"""Overhead of the diffusers engine over the bare pipeline call (issue 8, point 6).

    .venv/bin/python -m bench.diffusers_engine                 # tiny Wan text-to-video, CPU
    .venv/bin/python -m bench.diffusers_engine --pipeline ltx-t2v --rounds 9

A tiny random pipeline (tests/tiny_pipelines.py) is saved to a temporary folder and served
through VIDEOGEN_DIFFUSERS_MODELS, exactly as in production. For one 1 s 480p 16:9 request,
each round times, one after the other (interleaved, so that load from other processes on a
shared machine hits them alike):

* bare: `pipe(**kwargs)` with the very arguments the engine plans (same size, frame count,
  steps, seed), no callback: what a hand-written script would run;
* engine: what the engine adds around that call, all of it: the request mapped onto the
  pipeline (plan_call, the generator), the step callback (progress, cancel check), and the
  frame conversion it streams from (time resampling to 30 fps, float to uint8, to numpy);
* render: the whole `DiffusersEngine.render` (all of the above, plus the cover-crop and
  scaling to the contract's 854x480, H.264 encoding, poster, preview and spritesheet).

The overhead ratio is engine / bare (target <= 1.05, from the best round of each); the
output stage (render - engine) is printed as a row of its own: it scales with the output
size, not with the model. The pipeline is loaded once, before the rounds (as a GPU worker
keeps it). Runs on the CPU here; on a GPU machine pass --device cuda and a larger
--max-pixels / --steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videogen_site.settings")

TARGET_RATIO = 1.05
ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", default="wan-t2v", help="a tests/tiny_pipelines.py name")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--max-pixels", type=int, default=128 * 80)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    try:
        import diffusers  # noqa: F401
        import torch
    except ImportError:
        print("skipped: the diffusers bench needs the `gpu` extra (pip install '.[gpu]')")
        return 0
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    from generations.rendering.base import RenderContext
    from generations.rendering.diffusers import config
    from generations.rendering.diffusers.engine import DiffusersEngine, _frame_at, plan_call
    from generations.spec import GenerationSpec
    from generations.vocabulary import I2V, T2V
    from tests import tiny_pipelines

    family = args.pipeline.split("-")[0]
    key = {"framepack": "framepack", "ltx": "ltxv-13b", "wan": "wan-25"}[family]
    mode = I2V if args.pipeline.endswith("i2v") or family == "framepack" else T2V
    work = Path(tempfile.mkdtemp(prefix="bench-diffusers-"))
    folder = tiny_pipelines.save(args.pipeline, work / "pipeline")
    settings.VIDEOGEN_DIFFUSERS_MODELS = [(key, str(folder))]
    settings.VIDEOGEN_DIFFUSERS_STEPS = {key: args.steps}
    settings.VIDEOGEN_DIFFUSERS_MAX_PIXELS = args.max_pixels
    settings.VIDEOGEN_DIFFUSERS_DEVICE = args.device
    image: Path | None = None
    if mode == I2V:
        from PIL import Image

        image = work / "first.png"
        Image.new("RGB", (640, 360), (200, 120, 40)).save(image)

    spec = GenerationSpec(
        model=key, mode=mode, prompt="a cat walks on the beach at sunset", negative_prompt="",
        image_url="x" if image else "", duration=1, resolution="480p", aspect_ratio="16:9",
        width=854, height=480, fps=30, num_frames=30, seed=1, camera_fixed=False,
        add_audio=False, audio_prompt="", style="realistic", cfg_scale=None,
        guidance_scale=None, enable_safety_checker=False,
    )  # fmt: skip
    engine = DiffusersEngine()
    local = config.pipeline_for(key, mode)
    assert local is not None, config.unavailable_reason(key)
    loaded = engine.pipeline(local)
    pipe = loaded.pipe

    def base_kwargs() -> dict[str, Any]:
        from generations.rendering.diffusers.engine import _conditioning_image

        plan = plan_call(spec, local, loaded.geometry, max_pixels=args.max_pixels)
        kwargs = dict(plan.kwargs)
        if image is not None:
            kwargs["image"] = _conditioning_image(image, plan.width, plan.height)
        kwargs["generator"] = torch.Generator(device="cpu").manual_seed(spec.seed)
        return kwargs

    fixed = base_kwargs()  # planned once, outside the timing of `bare`
    plan = plan_call(spec, local, loaded.geometry, max_pixels=args.max_pixels)

    def settle() -> None:
        # CUDA runs kernels asynchronously: a call returns with its frames still being
        # computed, and the next timed call would pay for them. Wait for the device.
        if loaded.device.startswith("cuda"):
            torch.cuda.synchronize(loaded.device)

    def bare() -> None:
        kwargs = dict(fixed, generator=torch.Generator(device="cpu").manual_seed(spec.seed))
        pipe(**kwargs)
        settle()

    def engine_path() -> None:
        from generations.rendering.diffusers.engine import (
            _Keepalive,
            _StepCallback,
            source_positions,
        )

        ctx = RenderContext(work, lambda pct: None, lambda: False, image)
        with _Keepalive(ctx) as keepalive:
            kwargs = base_kwargs()
            kwargs["callback_on_step_end"] = _StepCallback(ctx, keepalive, plan.total_steps)
            frames = engine.call(pipe, kwargs)
            with torch.inference_mode():
                for position in source_positions(
                    spec.num_frames, spec.fps, plan.native_fps, int(frames.shape[0])
                ):
                    _frame_at(torch, frames, position)
            settle()

    def render() -> None:
        out = Path(tempfile.mkdtemp(dir=work))
        engine.render(spec, RenderContext(out, lambda pct: None, lambda: False, image))

    timings: dict[str, list[float]] = {"bare": [], "engine": [], "render": []}
    runs = {"bare": bare, "engine": engine_path, "render": render}
    for run in runs.values():
        run()  # warm-up: first-call allocations, lazy imports
    for _ in range(args.rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - started)

    best = {name: min(values) for name, values in timings.items()}
    median = {name: statistics.median(values) for name, values in timings.items()}
    ratio = best["engine"] / best["bare"]
    print(
        f"diffusers engine bench: {args.pipeline} on {loaded.device}, {args.steps} steps, "
        f"generated {plan.width}x{plan.height} x {plan.native_frames} frames at "
        f"{plan.native_fps} fps -> 854x480 x 30 at 30 fps; {args.rounds} interleaved rounds"
    )
    print(f"{'':52} {'best':>9} {'median':>9}")
    rows = [
        ("bare pipeline call", "bare"),
        ("engine: plan + callback + frame conversion", "engine"),
        ("whole render (engine + scale + encode + previews)", "render"),
    ]
    for label, name in rows:
        print(f"{label:52} {best[name]:8.3f}s {median[name]:8.3f}s")
    print(
        f"{'output stage (render - engine)':52} {best['render'] - best['engine']:8.3f}s "
        f"{median['render'] - median['engine']:8.3f}s"
    )
    verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"{'engine overhead ratio (engine / bare)':52} {ratio:8.3f}x  target <= "
          f"{TARGET_RATIO:.2f}x: {verdict}")  # fmt: skip
    print("all rounds (s): " + "; ".join(
        f"{n} " + " ".join(f"{v:.3f}" for v in values) for n, values in timings.items()
    ))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
