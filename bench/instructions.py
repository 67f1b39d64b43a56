"""Instructions per request of the API's hot paths, this checkout against another: a count
that does not move with the machine's load, where req/s on a small shared machine does.

    .venv/bin/python -m bench.instructions /path/to/other/checkout [--requests 100]

For each checkout and endpoint (the bare JSON view behind the API handler, a status poll, a
submit), bench/asgi_calls.py serves requests in process through the production ASGI app,
under valgrind's callgrind (with a fixed hash seed), once with the warm-up alone and once
with REQUESTS more: the difference over REQUESTS is the cost of one request. Throughput
varies inversely with it, so "ratio" (the bare view's instructions over the endpoint's) is
the req/s ratio that `make bench` measures, without the noise. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.run import migrate_with_key, table

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "bench" / "asgi_calls.py"
ENDPOINTS = ("bare", "status", "submit")
BASELINE_COUNT = 5


def prepare(tree: Path) -> str:
    """A migrated data dir with an API key (in memory where the machine has /dev/shm)."""
    shm = Path("/dev/shm")
    data_dir = tempfile.mkdtemp(prefix="videogen-ic-", dir=shm if shm.is_dir() else None)
    env = {**os.environ, "VIDEOGEN_DATA_DIR": data_dir, "DJANGO_SETTINGS_MODULE": "bench.settings",
           "PYTHONPATH": str(tree)}  # fmt: skip
    (Path(data_dir) / "key").write_text(migrate_with_key(tree, env))
    return data_dir


def instructions(tree: Path, endpoint: str, count: int) -> int:
    data_dir = prepare(tree)
    try:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
             str(HARNESS), str(tree), data_dir, endpoint, str(count)],
            env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found, done.stderr[-2000:]
    return int(found.group(1))


def per_request(tree: Path, endpoint: str, requests: int) -> float:
    extra = instructions(tree, endpoint, BASELINE_COUNT + requests)
    return (extra - instructions(tree, endpoint, BASELINE_COUNT)) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("other", type=Path, help="the checkout to compare this one with")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="measure each figure this many times, alternating checkouts; the median counts "
             "(the handlers run on a DB thread, so the event loop's waiting varies a little)",
    )  # fmt: skip
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("skipped: valgrind is not installed (apt-get install valgrind)")
        return
    trees = {"other": args.other.resolve(), "this": ROOT}
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeat):
        for endpoint in ENDPOINTS:
            for name, tree in trees.items():
                samples.setdefault((name, endpoint), []).append(
                    per_request(tree, endpoint, args.requests)
                )
    cost = {key: statistics.median(values) for key, values in samples.items()}
    rows = []
    for endpoint in ENDPOINTS:
        other, this = cost[("other", endpoint)], cost[("this", endpoint)]
        ratio_other = cost[("other", "bare")] / other
        ratio_this = cost[("this", "bare")] / this
        rows.append([endpoint, f"{other / 1e6:.3f}", f"{this / 1e6:.3f}", f"{this / other:.3f}",
                     f"{ratio_other:.3f}", f"{ratio_this:.3f}",
                     f"{ratio_this / ratio_other:.3f}"])  # fmt: skip
    table(
        f"Instructions per request (callgrind, {args.requests} requests, median of "
        f"{args.repeat}, in process through the ASGI app); other = {trees['other']}",
        ["endpoint", "other M", "this M", "this / other", "other ratio", "this ratio",
         "ratio this / other"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
