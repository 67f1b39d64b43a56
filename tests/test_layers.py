"""The shape of generations/: its import graph, built with `ast` from the source (imports inside
functions counted), has no cycle, and every import points down the layers that README.md's
"Where things live" map documents. A new module that breaks the order fails here, naming the
import."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "generations"

# Top to bottom. A module may import from its own room and from rooms of lower layers only;
# rooms that share a layer stay out of each other (the API and the dashboard, say).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("admin", "apps", "management"),  # what Django itself loads and runs
    ("api", "dashboard", "tasks"),  # the surfaces: HTTP requests, and the broker's jobs
    ("web",),  # the HTTP plumbing both HTTP surfaces share
    ("core",),  # every write (services, lifecycle) and the reads pages share
    ("routing",),  # which provider serves a job, what it costs, model aliases
    ("rendering",),  # the engines: local, diffusers, hosted providers
    ("media",),  # pure: encode, images, audio
    ("net",),  # the SSRF-safe HTTP client
    ("ops",),  # health, metrics, logs, retention, storage, background loops
    ("db",),  # query and lock helpers
    ("models",),  # the database models
    ("catalog", "spec", "ids", "errors", "credentials"),  # value types
    ("vocabulary",),  # modes and statuses
)
# Inside rendering/, an engine's package imports none of the others: adding an engine touches
# its own package (and the registries that list engines) only.
ENGINE_ROOMS = ("rendering.local", "rendering.diffusers", "rendering.hosted")
# Imports inside functions, each with its reason; any other is a cycle dodged or an import
# that belongs at the top of its module.
FUNCTION_LEVEL = {
    # post_spawn fires in worker processes only: web processes never load the jobs' media stack.
    ("generations.apps", "generations.tasks.dispatch"),
    # Django's rule: ready() imports what needs the models.
    ("generations.apps", "generations.ops.health"),
    ("generations.apps", "generations.ops.signing"),
    ("generations.apps", "generations.ops.tasklogs"),
    ("generations.apps", "generations.rendering.diffusers.config"),
    ("generations.apps", "generations.routing.aliases"),
    # The providers' clients bring `requests`: loaded where hosted jobs run, not in web processes.
    ("generations.rendering.hosted.providers", "generations.rendering.hosted.fal"),
    ("generations.rendering.hosted.providers", "generations.rendering.hosted.gemini"),
    ("generations.rendering.hosted.providers", "generations.rendering.hosted.openai"),
    ("generations.rendering.hosted.providers", "generations.rendering.hosted.replicate"),
    # The engines bring numpy, OpenCV and PyAV (and torch on a first render): loaded on first use.
    ("generations.rendering.registry", "generations.rendering.local.procedural"),
    ("generations.rendering.registry", "generations.rendering.diffusers.engine"),
    # A verify check decodes the upload and reads its manifest: PyAV, OpenCV and the C2PA
    # library load on the first check, not with the web process.
    ("generations.api.verify", "generations.core.provenance"),
    ("generations.dashboard.verify", "generations.core.provenance"),
}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    in_function: bool


def modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if "migrations" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(known: dict[str, Path]) -> Iterator[Import]:
    for module, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        in_function: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                in_function.update(id(child) for child in ast.walk(node) if child is not node)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + [base] * bool(base))
                names = [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                target = _resolve(name, known) if name.startswith(PACKAGE) else None
                # Importing one's own package (or the top package) is not an edge: Python
                # initialises a package before any of its modules.
                if target is None or target == module or module.startswith(target + "."):
                    continue
                yield Import(module, target, node.lineno, id(node) in in_function)


def room(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def layer(module: str) -> int:
    for index, rooms in enumerate(LAYERS):
        if room(module) in rooms:
            return index
    raise AssertionError(f"{module} is in no layer: add its room to LAYERS and README.md")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_there_is_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for edge in imports(modules()):
        graph.setdefault(edge.source, set()).add(edge.target)
    assert cycles(graph) == []


def test_every_module_is_in_one_layer() -> None:
    for module in modules():
        if module != PACKAGE:
            layer(module)


def test_every_import_points_down_the_layers() -> None:
    wrong = [
        f"{edge.source}:{edge.line} imports {edge.target}"
        for edge in imports(modules())
        if room(edge.source) != room(edge.target)
        and room(edge.target)
        and layer(edge.target) <= layer(edge.source)
    ]
    assert wrong == []


def test_engines_do_not_import_each_other() -> None:
    def engine_room(module: str) -> str | None:
        short = module.removeprefix(f"{PACKAGE}.")
        return next((r for r in ENGINE_ROOMS if short == r or short.startswith(r + ".")), None)

    wrong = [
        f"{edge.source}:{edge.line} imports {edge.target}"
        for edge in imports(modules())
        if engine_room(edge.source)
        and engine_room(edge.target)
        and engine_room(edge.source) != engine_room(edge.target)
    ]
    assert wrong == []


def test_imports_inside_functions_are_only_the_known_ones() -> None:
    found = {(e.source, e.target) for e in imports(modules()) if e.in_function}
    assert found == FUNCTION_LEVEL


def test_a_web_process_loads_no_engine_stack(tmp_path: Path) -> None:
    """The web process (URL conf, admin, every view) never loads torch, PyAV, OpenCV or the
    providers' HTTP client (requests): the engines are imported where they run, in the
    workers."""
    script = (
        "import django, sys; django.setup()\n"
        "import videogen_site.urls, generations.admin\n"
        "heavy = {'torch', 'av', 'cv2', 'requests'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "videogen_site.settings",
             "VIDEOGEN_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
