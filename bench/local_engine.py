"""Speed and memory of the `local` engine (issue 3, point 7).

    .venv/bin/python -m bench.local_engine            # 720p, 1080p and 4K rows + 60 s 4K RSS
    .venv/bin/python -m bench.local_engine --quick    # 720p only, no RSS run

For each size, in one run:

* engine: wall time of ProceduralEngine.render for a 5 s 30 fps text-to-video clip with audio
  (render, audio synthesis, encode, poster, preview and spritesheet: everything a job does);
* encoder only: the same frames, pre-rendered to a raw file, encoded by the ffmpeg command-line
  tool with the same codec settings as Mp4Writer (libx264, veryfast, crf 20, yuv420p, BT.709
  tags, frame threads), reading rawvideo on stdin. Two baselines: from rgb24 frames (ffmpeg
  converts to yuv420p, the usual way to feed raw frames) and from the engine's own yuv420p
  frames (pure encoding, no conversion and no audio: a strict lower bound);
* the ratio engine / encoder-only (the target compares with the rgb24 baseline).

Each measurement is repeated (--repeat, default 3), alternating engine and encoder runs so
that load from other processes on a shared machine hits them alike; the best run of each is
reported (all runs are printed too).

Then the peak RSS of a 60 s 4K render with audio, measured in a child process
(resource.getrusage(RUSAGE_CHILDREN).ru_maxrss).

ffmpeg: the one on PATH, else the binary shipped by the `imageio-ffmpeg` package; without
either the encoder-only columns are skipped (the script says so).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videogen_site.settings")

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}
# Targets from the issue (2 cores).
TARGET_720P_WALL_S = 2.5
TARGET_720P_RATIO = 1.3
TARGET_4K_WALL_S = 20.0
TARGET_RSS_BYTES = int(1.5 * 1024**3)
PROMPT = "a calm ocean at sunset, gentle waves"
SECONDS = 5
FPS = 30


def find_ffmpeg() -> str | None:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        return None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError:
        return None


def make_spec(resolution: str, seconds: int, *, add_audio: bool = True):
    from generations.spec import GenerationSpec

    width, height = SIZES[resolution]
    return GenerationSpec(
        model="local",
        mode="text-to-video",
        prompt=PROMPT,
        negative_prompt="",
        image_url="",
        duration=seconds,
        resolution=resolution,
        aspect_ratio="16:9",
        width=width,
        height=height,
        fps=FPS,
        num_frames=seconds * FPS,
        seed=1234,
        camera_fixed=False,
        add_audio=add_audio,
        audio_prompt="",
        style="",
        cfg_scale=None,
        guidance_scale=None,
        enable_safety_checker=False,
    )


def render_once(spec, out_dir: Path) -> float:
    from generations.rendering.base import RenderContext
    from generations.rendering.local.procedural import ProceduralEngine

    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = RenderContext(out_dir, lambda _p: None, lambda: False, None)
    start = time.perf_counter()
    ProceduralEngine().render(spec, ctx)
    return time.perf_counter() - start


def dump_raw_frames(spec, rgb_path: Path, yuv_path: Path) -> None:
    """The engine's frames for `spec`, written as raw yuv420p and as raw rgb24."""
    from generations.media.encode import i420_to_rgb, new_i420
    from generations.rendering.local.procedural import TextVideo

    video = TextVideo(spec)
    buffer = new_i420(spec.width, spec.height)
    with rgb_path.open("wb") as rgb_out, yuv_path.open("wb") as yuv_out:
        for index in range(spec.num_frames):
            video.i420(index, buffer)
            yuv_out.write(buffer.tobytes())
            rgb_out.write(i420_to_rgb(buffer, spec.width, spec.height).tobytes())


def encode_cli(ffmpeg: str, raw: Path, pix_fmt: str, width: int, height: int, out: Path) -> float:
    from generations.media.encode import X264_CRF, X264_PRESET

    command = [
        ffmpeg,
        "-v",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        pix_fmt,
        "-s",
        f"{width}x{height}",
        "-r",
        str(FPS),
        "-i",
        "-",
        "-c:v",
        "libx264",
        "-preset",
        X264_PRESET,
        "-crf",
        str(X264_CRF),
        "-pix_fmt",
        "yuv420p",
        "-colorspace",
        "bt709",
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        "-color_range",
        "tv",
        "-movflags",
        "faststart",
        str(out),
    ]
    if pix_fmt == "rgb24":
        # Convert with the BT.709 matrix, as Mp4Writer.write does.
        command[-1:-1] = ["-vf", "scale=out_color_matrix=bt709:out_range=tv"]
    with raw.open("rb") as stdin:
        start = time.perf_counter()
        subprocess.run(command, stdin=stdin, check=True)
        return time.perf_counter() - start


def encode_pyav(raw: Path, width: int, height: int, out: Path) -> float:
    """The same raw yuv420p frames through Mp4Writer (the engine's encoder, no audio)."""
    import numpy as np

    from generations.media.encode import Mp4Writer

    size = width * height * 3 // 2
    start = time.perf_counter()
    with raw.open("rb") as stdin, Mp4Writer(out, width, height, FPS) as writer:
        while chunk := stdin.read(size):
            writer.write_i420(np.frombuffer(chunk, np.uint8).reshape(height * 3 // 2, width))
    return time.perf_counter() - start


def peak_rss_child(resolution: str, seconds: int) -> int:
    """Peak RSS (bytes) of a child process that renders one clip."""
    code = (
        "import tempfile, pathlib, django; django.setup();"
        "from bench.local_engine import make_spec, render_once\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        f"    render_once(make_spec({resolution!r}, {seconds}), pathlib.Path(d) / 'out')"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss is in KiB on Linux; it is the largest child so far, so run this first.
    return max(before, after) * 1024


def _times(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) + " s" if values else "-"


def mark(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="720p only, no 60 s RSS run")
    parser.add_argument("--rss-seconds", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    args = parser.parse_args(argv)

    import django

    django.setup()

    cores = os.cpu_count()
    print(f"local engine bench: {SECONDS} s {FPS} fps clips, prompt {PROMPT!r}, {cores} CPUs")
    rss = None
    if not args.quick:
        # First, so that RUSAGE_CHILDREN's maximum is this render's (ffmpeg runs come later).
        rss = peak_rss_child("4K", args.rss_seconds)

    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        print("ffmpeg not found (neither on PATH nor via imageio-ffmpeg): encoder-only skipped")
    rows = []
    libs: dict[str, float | None] = {}
    sizes = ["720p"] if args.quick else list(SIZES)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for resolution in sizes:
            spec = make_spec(resolution, SECONDS)
            w, h = spec.width, spec.height
            rgb_raw, yuv_raw = root / f"{resolution}.rgb", root / f"{resolution}.yuv"
            if ffmpeg is not None:
                dump_raw_frames(spec, rgb_raw, yuv_raw)
            engine, rgb, yuv, lib = [], [], [], []
            # Alternate the three measurements so that load from other processes on a shared
            # machine hits them alike; the best of each is reported.
            for attempt in range(args.repeat):
                engine.append(render_once(spec, root / f"{resolution}-{attempt}"))
                if ffmpeg is not None:
                    rgb.append(encode_cli(ffmpeg, rgb_raw, "rgb24", w, h, root / "rgb.mp4"))
                    yuv.append(encode_cli(ffmpeg, yuv_raw, "yuv420p", w, h, root / "yuv.mp4"))
                    lib.append(encode_pyav(yuv_raw, w, h, root / "lib.mp4"))
            rgb_raw.unlink(missing_ok=True)
            yuv_raw.unlink(missing_ok=True)
            rows.append(
                (resolution, min(engine), min(rgb) if rgb else None, min(yuv) if yuv else None)
            )
            libs[resolution] = min(lib) if lib else None
            print(
                f"  {resolution}: engine {_times(engine)}; ffmpeg rgb24 {_times(rgb)}; "
                f"ffmpeg yuv420p {_times(yuv)}; Mp4Writer yuv420p {_times(lib)}",
                flush=True,
            )

    print()
    print(
        "| size  | engine (render+audio+encode) | ffmpeg CLI from rgb24 | ratio | "
        "ffmpeg CLI from yuv420p | ratio | target | result |"
    )
    print("|-------|------|------|------|------|------|------|------|")
    for resolution, engine_s, rgb_s, yuv_s in rows:
        r_rgb = f"{engine_s / rgb_s:.2f}x" if rgb_s else "-"
        r_yuv = f"{engine_s / yuv_s:.2f}x" if yuv_s else "-"
        if resolution == "720p":
            target = f"<= {TARGET_720P_WALL_S} s and <= {TARGET_720P_RATIO}x"
            ok = engine_s <= TARGET_720P_WALL_S and (
                rgb_s is None or engine_s / rgb_s <= TARGET_720P_RATIO
            )
            result = mark(ok)
        elif resolution == "4K":
            target = f"<= {TARGET_4K_WALL_S} s"
            result = mark(engine_s <= TARGET_4K_WALL_S)
        else:
            target, result = "-", "-"
        print(
            f"| {resolution:5} | {engine_s:.2f} s | "
            f"{f'{rgb_s:.2f} s' if rgb_s else '-'} | {r_rgb} | "
            f"{f'{yuv_s:.2f} s' if yuv_s else '-'} | {r_yuv} | {target} | {result} |"
        )
    print()
    print("Encoder only through the engine's own encoder (Mp4Writer, PyAV's libx264, same")
    print("yuv420p frames, no audio), for comparison with the ffmpeg command line's build:")
    for resolution, engine_s, _rgb, _yuv in rows:
        lib_s = libs.get(resolution)
        if lib_s:
            print(f"  {resolution}: {lib_s:.2f} s; engine / Mp4Writer = {engine_s / lib_s:.2f}x")
    if rss is not None:
        print()
        print(
            f"| peak RSS, {args.rss_seconds} s 4K render with audio | {rss / 1024**3:.2f} GiB | "
            f"< 1.5 GiB | {mark(rss < TARGET_RSS_BYTES)} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
