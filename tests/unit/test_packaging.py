"""The files the design card fixes exist and hang together."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_runs_every_process_on_postgres() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "temporal", "temporal-ui", "api", "control"} <= set(services)
    assert [s for s in services if s.startswith("compute-")]
    commands = {
        name: " ".join(s.get("command", []))
        for name, s in services.items()
        if isinstance(s.get("command"), list)
    }
    assert "workers.control" in commands["control"]
    assert "api.app:app" in commands["api"]
    env = services["control"]["environment"]
    assert env["NOVAFLOW_DATABASE_URL"].startswith("postgresql://")


def test_pyproject_packages_the_top_level_modules() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in ("api", "workflows", "activities", "workers", "novaflow"):
        assert f"{package}*" in include
        assert (ROOT / package / "__init__.py").exists()
