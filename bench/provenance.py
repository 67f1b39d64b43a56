"""What provenance costs (issue 18): signing plus watermarking a finished video, and checking
an upload.

    .venv/bin/python -m bench.provenance

* render + mark + sign: the `local` engine's 5 s 720p text-to-video render with the
  watermark on every frame, then the C2PA manifest signed into the file (what a worker does),
  against the same render unmarked and unsigned, in the same run (runs alternate, so that
  load from other processes hits both alike; the best of --repeat is reported). Target:
  at most 1.15x.
* verify: core/provenance.verify (the manifest read and validated, the watermark looked
  for) on a 10 s 1080p video of ours, the work behind one `POST /api/v1/verify`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videogen_site.settings")

TARGET_RATIO = 1.15
PROMPT = "a calm ocean at sunset, gentle waves"


def _spec(seconds: int, resolution: str) -> object:
    from generations import catalog
    from generations.spec import GenerationSpec

    width, height = catalog.frame_size(resolution, "16:9")
    return GenerationSpec(
        model="local", mode="text-to-video", prompt=PROMPT, negative_prompt="", image_url="",
        duration=seconds, resolution=resolution, aspect_ratio="16:9", width=width,
        height=height, fps=30, num_frames=30 * seconds, seed=7, camera_fixed=False,
        add_audio=True, audio_prompt="", style="procedural", cfg_scale=None,
        guidance_scale=None, enable_safety_checker=False,
    )  # fmt: skip


def _render(spec: object, folder: Path, *, provenance: bool) -> tuple[float, Path]:
    from generations.core import provenance as prov
    from generations.media.watermark import Mark
    from generations.rendering.base import RenderContext
    from generations.rendering.local.procedural import ProceduralEngine

    ctx = RenderContext(
        output_dir=folder, progress=lambda _: None, should_stop=lambda: False,
        mark=Mark.random() if provenance else None,
    )  # fmt: skip
    started = time.perf_counter()
    result = ProceduralEngine().render(spec, ctx)  # type: ignore[arg-type]
    if provenance:
        prov.sign(result.video_path, model="local", engine="local", title=PROMPT)
    return time.perf_counter() - started, result.video_path


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="videogen-bench-prov-"))
    os.environ["VIDEOGEN_DATA_DIR"] = str(data_dir)
    import django

    django.setup()
    from django.core.management import call_command

    from generations.core import provenance as prov

    call_command("migrate", verbosity=0)  # verify looks the mark up
    from generations.ops import signing

    signing.credentials()  # the development chain, made once, outside the timings
    spec = _spec(5, "720p")
    plain: list[float] = []
    marked: list[float] = []
    for i in range(args.repeat):
        for runs, with_it in ((plain, False), (marked, True)):
            folder = data_dir / f"r{i}-{with_it}"
            folder.mkdir()
            runs.append(_render(spec, folder, provenance=with_it)[0])
    ratio = min(marked) / min(plain)
    table(
        "Provenance: 5 s 720p local render with audio (best of "
        f"{args.repeat}; all runs: plain {', '.join(f'{t:.2f}' for t in plain)}; "
        f"marked+signed {', '.join(f'{t:.2f}' for t in marked)})",
        ["render", "marked + signed", "ratio", f"target <= {TARGET_RATIO}"],
        [[f"{min(plain):.2f} s", f"{min(marked):.2f} s", f"{ratio:.3f}x",
          "met" if ratio <= TARGET_RATIO else "missed"]],
    )  # fmt: skip
    folder = data_dir / "verify"
    folder.mkdir()
    _, video = _render(_spec(10, "1080p"), folder, provenance=True)
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        verdict = prov.verify(video)
        times.append(time.perf_counter() - started)
    assert verdict.watermark["found"] and verdict.c2pa["valid"], verdict
    size = video.stat().st_size / 1e6
    table(
        "Verify: a 10 s 1080p video of ours (manifest read + watermark found)",
        ["file", "best", "median", "runs"],
        [[f"{size:.1f} MB", f"{min(times):.2f} s", f"{sorted(times)[len(times) // 2]:.2f} s",
          ", ".join(f"{t:.2f}" for t in times)]],
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
