"""The API's hot paths on two checkouts, in one run: did a change make them slower?

    .venv/bin/python -m bench.compare /path/to/other/checkout [--rounds 5]
    .venv/bin/python -m bench.compare --rev 1e53f17 --against status --only submit
    .venv/bin/python -m bench.compare --rev a4367f8 --only submit --against status \
        --body '{"model": "kling_25", ...}' --set FAL_KEY=... --set REPLICATE_API_TOKEN=...

(--rev: that commit of this repository, exported with `git archive` to a temporary
directory; --against status: the authenticated read, not the bare view, is the baseline;
--body: the submit's JSON body, by default a 1 s `local` generation.)

Both checkouts are served side by side (uvicorn, the production ASGI app, each on a data dir
of its own, with this venv), and measured in alternating rounds, so that drift on a shared
machine (other processes, CPU frequency) hits both alike. Status polls first, then submits
(whose writes would slow the reads that follow them): each round, for each checkout, the
bare JSON view behind the API handler, then the endpoint. What compares is the endpoint's
req/s over the bare view's just before it, on the same server (the median of those
per-round ratios), and, since both are measured in the same rounds, its req/s over the
other checkout's in each round. (--against status: the baseline is a status poll, the
authenticated read, measured the same way just before the submits.) Nothing here asserts
on time: the tables say how far apart the two are.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.run import CLIENTS, WEB_WORKERS, free_port, load, migrate_with_key, table

ROOT = Path(__file__).resolve().parent.parent
SUBMIT = json.dumps(
    {"model": "local", "prompt": "bench", "duration": 1, "resolution": "480p"}
).encode()
# What --body sets (the submit every server is measured with).
submit_body = SUBMIT
BASELINES = {"bare": "bare view", "status": "authenticated read (status)"}


@dataclass
class Served:
    name: str
    tree: Path
    port: int
    auth: dict[str, str]
    status_path: str
    process: subprocess.Popen[bytes]
    rps: dict[str, list[float]] = field(default_factory=dict)


def export(rev: str) -> Path:
    """That commit of this repository in a temporary directory (git archive: no worktree
    is registered, nothing in the repository changes)."""
    tree = Path(tempfile.mkdtemp(prefix=f"videogen-compare-{rev[:12]}-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                             capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def serve(name: str, tree: Path, extra_env: dict[str, str]) -> Served:
    data_dir = Path(tempfile.mkdtemp(prefix=f"videogen-compare-{name}-"))
    env = {
        **os.environ,
        **extra_env,
        "VIDEOGEN_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "VIDEOGEN_DEFAULT_RATE_LIMIT": "1000000000",  # measure the path, not the 429s
        "PYTHONPATH": str(tree),
    }
    auth = {
        "Authorization": f"Bearer {migrate_with_key(tree, env)}",
        "Content-Type": "application/json",
    }
    port = free_port()
    log = (data_dir / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "videogen_site.asgi:application", "--host",
         "127.0.0.1", "--port", str(port), "--workers", str(WEB_WORKERS), "--no-access-log"],
        env=env, cwd=tree, stdout=log, stderr=log,
    )  # fmt: skip
    for _ in range(300):
        try:
            if load(port, "GET", "/api/bench/bare", {}, None, 1, 1)["errors"] == 0:
                break
        except OSError:
            time.sleep(0.1)
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/api/v1/generate", body=submit_body, headers=auth)
    gen_id = json.loads(conn.getresponse().read())["generation_id"]
    return Served(name, tree, port, auth, f"/api/v1/status/{gen_id}", process)


def measure(served: Served, endpoint: str, count: int, against: str = "bare") -> None:
    """One round on one checkout: the baseline (the bare view, or a status poll), then
    `endpoint` ("status" or "submit")."""
    port, auth = served.port, served.auth
    requests = {
        "bare": ("GET", "/api/bench/bare", {}, None),
        "status": ("GET", served.status_path, auth, None),
        "submit": ("POST", "/api/v1/generate", auth, submit_body),
    }
    for name in (f"{against}-{endpoint}", endpoint):
        method, path, headers, body = requests[name.split("-")[0]]
        result = load(port, method, path, headers, body, count, CLIENTS)
        assert result["errors"] == 0, f"{served.name} {name}: {result['errors']} errors"
        served.rps.setdefault(name, []).append(result["rps"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("other", type=Path, nargs="?", help="the checkout to compare this one with")
    parser.add_argument("--rev", help="compare with this commit of this repository instead")
    parser.add_argument(
        "--against", choices=("bare", "status"), default="bare",
        help="the baseline each endpoint's req/s is divided by: the bare JSON view, or the "
             "authenticated read (a status poll; then only submit is measured)",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="an environment variable for both servers (say, VIDEOGEN_QUEUE_AHEAD=1000000)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="per round, bare and status")
    parser.add_argument("--submits", type=int, default=400, help="per round")
    parser.add_argument("--only", choices=("status", "submit"), help="measure one endpoint")
    parser.add_argument("--body", help="the submit's JSON body (default: a 1 s local video)")
    args = parser.parse_args()
    global submit_body  # noqa: PLW0603  (one setting for the whole run)
    if args.body:
        submit_body = json.dumps(json.loads(args.body)).encode()
    if (args.other is None) == (args.rev is None):
        parser.error("name the other checkout, or --rev")
    other_tree = export(args.rev) if args.rev else args.other.resolve()
    extra_env = dict(item.split("=", 1) for item in args.set)
    against = args.against
    trees: list[Served] = []
    try:
        trees += [serve("other", other_tree, extra_env), serve("this", ROOT, extra_env)]
        for served in trees:  # warm both: compiled queries, connections, caches
            measure(served, "status", 400)
            measure(served, "submit", 100)
            served.rps.clear()
        plan = [("status", args.requests), ("submit", args.submits)]
        plan = [(endpoint, count) for endpoint, count in plan if args.only in (None, endpoint)]
        if against == "status":
            plan = [(endpoint, count) for endpoint, count in plan if endpoint != "status"]
        for endpoint, count in plan:
            for _ in range(args.rounds):
                for served in trees:
                    measure(served, endpoint, count, against)
        rows = []
        ratios: dict[str, dict[str, float]] = {}
        for served in trees:
            ratios[served.name] = {}
            for name, _ in plan:
                bare = served.rps[f"{against}-{name}"]
                per_round = [v / b for v, b in zip(served.rps[name], bare, strict=True)]
                ratios[served.name][name] = statistics.median(per_round)
                tree = args.rev if args.rev and served.name == "other" else str(served.tree)
                rows.append([served.name, tree, name,
                             f"{statistics.median(served.rps[name]):.0f}",
                             f"{statistics.median(bare):.0f}", f"{ratios[served.name][name]:.3f}",
                             " ".join(f"{v:.2f}" for v in per_round)])  # fmt: skip
        table(
            f"Two checkouts, {args.rounds} alternating rounds each, {CLIENTS} keep-alive clients, "
            f"uvicorn --workers {WEB_WORKERS} each{''.join(f', {s}' for s in args.set)}; ratio: "
            f"median over rounds of req/s over the {BASELINES[against]}'s just before",
            ["checkout", "tree", "endpoint", "req/s", f"{against} req/s", "ratio", "per round"],
            rows,
        )
        this, other = trees[1].rps, trees[0].rps

        def paired(name: str) -> float:
            return statistics.median(a / b for a, b in zip(this[name], other[name], strict=True))

        table(
            f"This checkout against the other: its ratio to the {BASELINES[against]} over the "
            "other's, and "
            "its req/s over the other's in the same round (median of the rounds)",
            ["endpoint", "ratio / ratio", "req/s / req/s"],
            [[name, f"{ratios['this'][name] / ratios['other'][name]:.3f}",
              f"{paired(name):.3f}"]
             for name, _ in plan],
        )  # fmt: skip
    finally:
        for served in trees:
            served.process.terminate()
            try:
                served.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                served.process.kill()
        if args.rev:
            shutil.rmtree(other_tree, ignore_errors=True)


if __name__ == "__main__":
    main()
