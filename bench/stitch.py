"""Cost of stitching shots (issue 17): `python -m bench.stitch`.

Ten 5 s shots at 720p (1280x720, 30 fps, with a tone each) are made first with Mp4Writer
from cheap synthetic frames (a panning multi-scale texture, different per shot; not timed).
Then, best of --repeat runs, alternating:

* stitch, cut: clips from one encoder setting, so their H.264 packets are copied and only the
  sound is encoded again (the frames are still decoded for the poster, preview, spritesheet);
* stitch, crossfade (0.5 s): every frame decoded and encoded again at STITCH_CRF;
* stitch, cut between clips from different encoders (the last shot made at another CRF):
  the re-encoding fallback;

each against the baseline: Mp4Writer alone encoding the same number of output frames with
the same sound, the frames generated on the fly as the clips' were (about 1 ms a frame).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from generations.media.encode import (
    AUDIO_SAMPLE_RATE,
    Mp4Writer,
    audio_samples_for,
    i420_planes,
    new_i420,
)
from generations.media.stitch import STITCH_CRF, overlap_frames, stitch

WIDTH, HEIGHT, FPS = 1280, 720, 30
SHOTS = 10
SECONDS = 5
FRAMES = SECONDS * FPS
PAN_PX = 2  # per frame, even so that the chroma planes pan by whole pixels too


class ShotFrames:
    """A shot's I420 frames: windows of a wide texture, panning PAN_PX a frame."""

    def __init__(self, shot: int) -> None:
        rng = np.random.default_rng(shot)
        wide = WIDTH + PAN_PX * FRAMES
        texture = np.zeros((HEIGHT, wide), np.float32)
        for scale, weight in ((2, 20.0), (8, 40.0), (32, 60.0), (128, 80.0)):
            noise = rng.random((HEIGHT // scale + 2, wide // scale + 2)).astype(np.float32)
            texture += cv2.resize(noise, (wide, HEIGHT), interpolation=cv2.INTER_CUBIC) * weight
        self.y = np.clip(texture + 16, 16, 235).astype(np.uint8)
        half = cv2.resize(texture, (wide // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA)
        tint = 30.0 * np.array([np.cos(shot), np.sin(shot)])
        self.u = np.clip(128 + tint[0] + (half - 100) * 0.2, 16, 240).astype(np.uint8)
        self.v = np.clip(128 + tint[1] - (half - 100) * 0.2, 16, 240).astype(np.uint8)
        self.buffer = new_i420(WIDTH, HEIGHT)

    def frame(self, index: int) -> np.ndarray:
        y, u, v = i420_planes(self.buffer, WIDTH, HEIGHT)
        x = PAN_PX * index
        y[...] = self.y[:, x : x + WIDTH]
        u[...] = self.u[:, x // 2 : x // 2 + WIDTH // 2]
        v[...] = self.v[:, x // 2 : x // 2 + WIDTH // 2]
        return self.buffer


def shot_tone(shot: int, frames: int = FRAMES) -> np.ndarray:
    t = np.arange(audio_samples_for(frames, FPS)) / AUDIO_SAMPLE_RATE
    wave = (0.2 * np.sin(2 * np.pi * (220 + 55 * shot) * t)).astype(np.float32)
    return np.stack([wave, wave], axis=1)


def make_clips(root: Path) -> tuple[list[Path], Path]:
    """The ten shots, and shot 10 again at another CRF (other H.264 parameters)."""
    clips = []
    for shot in range(SHOTS):
        source = ShotFrames(shot)
        path = root / f"shot{shot}.mp4"
        with Mp4Writer(path, WIDTH, HEIGHT, FPS, shot_tone(shot)) as writer:
            for index in range(FRAMES):
                writer.write_i420(source.frame(index))
        clips.append(path)
    source = ShotFrames(SHOTS - 1)
    other = root / "other-encoder.mp4"
    with Mp4Writer(other, WIDTH, HEIGHT, FPS, shot_tone(SHOTS - 1), crf=24) as writer:
        for index in range(FRAMES):
            writer.write_i420(source.frame(index))
    return clips, other


def baseline(path: Path, overlap: int) -> float:
    """Mp4Writer alone: the output's number of frames (shots shortened by the overlaps)."""
    sound = np.concatenate([shot_tone(shot) for shot in range(SHOTS)])
    sources = [ShotFrames(shot) for shot in range(SHOTS)]
    start = time.perf_counter()
    with Mp4Writer(path, WIDTH, HEIGHT, FPS, sound) as writer:
        for shot, source in enumerate(sources):
            skip = overlap if shot else 0
            for index in range(skip, FRAMES):
                writer.write_i420(source.frame(index))
    elapsed = time.perf_counter() - start
    path.unlink()
    return elapsed


def timed_stitch(clips: list[Path], out: Path, transition: str) -> float:
    out.mkdir()
    start = time.perf_counter()
    stitch(clips, out, width=WIDTH, height=HEIGHT, fps=FPS, transition=transition, audio=True)
    elapsed = time.perf_counter() - start
    for path in out.iterdir():
        path.unlink()
    out.rmdir()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (best kept)")
    args = parser.parse_args(argv)
    overlap = overlap_frames(0.5, FPS)
    print(
        f"stitch bench: {SHOTS} shots x {SECONDS} s, {WIDTH}x{HEIGHT} {FPS} fps with sound, "
        f"{os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        clips, other = make_clips(root)
        print(f"  clips made in {time.perf_counter() - start:.1f} s (not timed)", flush=True)
        mixed = [*clips[:-1], other]
        cases = [
            ("cut (packet copy)", clips, "cut", 0),
            (f"crossfade 0.5 s (re-encode, CRF {STITCH_CRF})", clips, "crossfade", overlap),
            (f"cut, mixed encoders (re-encode, CRF {STITCH_CRF})", mixed, "cut", 0),
        ]
        stitched: dict[str, list[float]] = {name: [] for name, *_ in cases}
        base: dict[int, list[float]] = {0: [], overlap: []}
        for _attempt in range(args.repeat):
            for name, inputs, transition, _cut in cases:
                stitched[name].append(timed_stitch(inputs, root / "out", transition))
                print(f"  {name}: {stitched[name][-1]:.2f} s", flush=True)
            for cut in base:
                base[cut].append(baseline(root / "baseline.mp4", cut))
                print(f"  Mp4Writer alone, overlap {cut}: {base[cut][-1]:.2f} s", flush=True)
    print()
    print("| stitch | output frames | stitch | Mp4Writer alone, same frames | ratio |")
    print("|--------|---------------|--------|------------------------------|-------|")
    for name, _inputs, _transition, cut in cases:
        frames = SHOTS * FRAMES - (SHOTS - 1) * cut
        s, b = min(stitched[name]), min(base[cut])
        print(f"| {name} | {frames} | {s:.2f} s | {b:.2f} s | {s / b:.2f}x |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(f"peak RSS of this process: {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
