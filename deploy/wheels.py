"""Which requirements a folder of wheels does not cover for the image's Python.

`pip download` evaluates environment markers for the Python that runs it, not for
`--python-version`: this host's 3.11.7 skips `async-timeout; python_full_version < "3.11.3"`,
which bookworm's 3.11.2 needs. This walks the wheels' own metadata from the top-level
requirements with the image's marker environment and prints each requirement no wheel in
the folder satisfies, one a line, for deploy/image.sh to download (it repeats until none).

    python deploy/wheels.py --python 3.11.2 deploy/build/wheels-base requirements.txt
"""

from __future__ import annotations

import argparse
import email.parser
import zipfile
from collections.abc import Iterable
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version


def wheel_requires(path: Path) -> list[Requirement]:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.BytesParser().parsebytes(archive.read(name), headersonly=True)
    return [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]


def marker_env(python: str) -> dict[str, str]:
    """This host's marker environment, with the image's Python version."""
    env = {name: str(value) for name, value in default_environment().items()}
    env["python_full_version"] = python
    env["python_version"] = ".".join(python.split(".")[:2])
    return env


def uncovered(wheels: Path, top: Iterable[Requirement], env: dict[str, str]) -> list[str]:
    available: dict[str, list[tuple[Version, Path]]] = {}
    for path in wheels.glob("*.whl"):
        name, version, _build, _tags = parse_wheel_filename(path.name)
        available.setdefault(name, []).append((version, path))
    wanted = list(top)
    seen: set[tuple[str, frozenset[str]]] = set()
    missing: list[str] = []
    while wanted:
        req = wanted.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        matches = [p for v, p in available.get(name, []) if req.specifier.contains(v, True)]
        if not matches:
            missing.append(str(Requirement(f"{req.name}{req.specifier}")))
            continue
        for dep in wheel_requires(matches[0]):
            extras = [""] + sorted(req.extras)
            if dep.marker is None or any(dep.marker.evaluate({**env, "extra": e}) for e in extras):
                wanted.append(dep)
    return sorted(set(missing))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="the image's Python, e.g. 3.11.2")
    parser.add_argument("wheels", type=Path)
    parser.add_argument("requirements", type=Path)
    args = parser.parse_args()
    top = [
        Requirement(line.split("#")[0].strip())
        for line in args.requirements.read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    env = marker_env(args.python)
    top = [r for r in top if r.marker is None or r.marker.evaluate(env)]
    for line in uncovered(args.wheels, top, env):
        print(line)


if __name__ == "__main__":
    main()
