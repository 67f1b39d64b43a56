"""Print the project's requirements, one a line, for the extras named on the command line
(`python3 deploy/requirements.py gpu`): the image installs these, not the project itself,
which runs from its source folder (templates and static files live beside the packages)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    found: list[str] = list(project["dependencies"])
    for extra in extras:
        found += project["optional-dependencies"][extra]
    return found


def main() -> None:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    extras = [name for arg in sys.argv[1:] for name in arg.split(",") if name]
    print("\n".join(requirements(pyproject, extras)))


if __name__ == "__main__":
    main()
