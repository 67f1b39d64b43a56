"""deploy/: the chart's values, the compose file and its env example name every setting of
the README's settings tables, so they cannot drift apart; the compose wiring; the small
programs the image uses. Plain and fast: `make chart-lint` renders and validates the chart."""

from __future__ import annotations

import importlib.util
import json
import re
import zipfile
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "videogen"
SETTINGS_TABLE = re.compile(r"^\|\s*variable\s*\|\s*default\s*\|\s*meaning\s*\|")


def readme_settings() -> list[str]:
    """Every variable named in the first column of the README's settings tables."""
    names: list[str] = []
    in_table = False
    for line in (ROOT / "README.md").read_text().splitlines():
        if SETTINGS_TABLE.match(line):
            in_table = True
            continue
        if not in_table or not line.startswith("|"):
            in_table = False
            continue
        first = line.split("|")[1]
        names += [n for n in re.findall(r"`([A-Z][A-Z0-9_]+)`", first) if n not in names]
    return names


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", DEPLOY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_the_readme_tables_are_found():
    names = readme_settings()
    assert len(names) > 60
    assert {"DATABASE_URL", "VIDEOGEN_DIFFUSERS_MODELS", "LOG_FORMAT"} <= set(names)


def test_every_readme_setting_is_a_chart_value():
    named = set(values()["config"]) | set(values()["secrets"])
    assert [n for n in readme_settings() if n not in named] == []


def test_a_setting_is_either_config_or_secret():
    assert set(values()["config"]) & set(values()["secrets"]) == set()


def test_the_values_schema_names_exactly_the_chart_values():
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]
    assert set(schema["config"]["properties"]) == set(values()["config"])
    assert set(schema["secrets"]["properties"]) == set(values()["secrets"])
    assert schema["config"]["additionalProperties"] is False  # a misspelt setting fails lint


def test_every_readme_setting_is_in_the_env_example():
    example = (DEPLOY / "videogen.env.example").read_text()
    named = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert [n for n in readme_settings() if n not in named] == []


def test_compose_runs_migrate_before_the_web_and_the_workers():
    services = compose()["services"]
    for name in ("web", "worker", "gpu-worker"):
        after = services[name]["depends_on"]
        assert after["migrate"]["condition"] == "service_completed_successfully"
        assert after["bucket"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_checks_the_health_of_every_server():
    services = compose()["services"]
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "healthcheck.py" in services["web"]["healthcheck"]["test"][-1]
    assert "/healthz" in (DEPLOY / "healthcheck.py").read_text()


def test_the_compose_gpu_worker_is_optional_and_reserves_gpus():
    gpu = compose()["services"]["gpu-worker"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["command"] == ["gpu-worker"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["capabilities"] == ["gpu"]


def test_compose_takes_secrets_from_the_env_file_only():
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search("PASSWORD|SECRET|KEY|TOKEN|_URL", key):
                assert str(value).startswith("${"), (name, key)


def test_the_health_check_sends_a_host_the_site_accepts():
    healthcheck = load("healthcheck")
    assert healthcheck.probe_host("videogen.example.com,localhost") == "videogen.example.com"
    assert healthcheck.probe_host(".example.com") == "example.com"
    assert healthcheck.probe_host("*") == "localhost"
    assert healthcheck.probe_host("") == "localhost"


def test_the_image_installs_the_gpu_extra_only_when_asked():
    requirements = load("requirements")
    pyproject = ROOT / "pyproject.toml"
    assert not any(r.startswith("torch") for r in requirements.requirements(pyproject, []))
    assert "torch==2.13.0" in requirements.requirements(pyproject, ["gpu"])


def fake_wheel(folder: Path, name: str, version: str, *requires: str) -> None:
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as archive:
        archive.writestr(f"{name}-{version}.dist-info/METADATA", metadata)


def test_wheels_finds_what_the_images_older_python_needs(tmp_path):
    wheels = load("wheels")
    from packaging.requirements import Requirement

    fake_wheel(tmp_path, "redis", "7.0", 'async-timeout>=4; python_full_version < "3.11.3"')
    fake_wheel(tmp_path, "uvicorn", "0.54", "h11", 'httptools; extra == "standard"')
    fake_wheel(tmp_path, "h11", "0.16")
    top = [Requirement("redis>=5"), Requirement("uvicorn[standard]")]
    assert wheels.uncovered(tmp_path, top, wheels.marker_env("3.11.2")) == [
        "async-timeout>=4",
        "httptools",
    ]
    assert wheels.uncovered(tmp_path, top, wheels.marker_env("3.11.7")) == ["httptools"]
