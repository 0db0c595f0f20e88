"""The files the design card fixes exist and hang together."""

from __future__ import annotations

import json
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


def test_compose_runs_the_api_with_keycloak_and_the_repos_realm() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    api_env = services["api"]["environment"]
    assert api_env["NOVAFLOW_AUTH_STRATEGY"] == "keycloak"  # it listens on 0.0.0.0
    keycloak = services["keycloak"]
    assert any("deploy/keycloak/novaflow-realm.json" in v for v in keycloak["volumes"])
    assert "--import-realm" in keycloak["command"]
    attributes = " ".join(services["temporal-create-search-attributes"]["command"])
    assert "--name UserId --type Keyword" in attributes


def test_the_development_realm_has_what_the_api_reads() -> None:
    realm = json.loads((ROOT / "deploy/keycloak/novaflow-realm.json").read_text())
    assert realm["realm"] == "novaflow" and realm["accessTokenLifespan"] <= 300
    assert {r["name"] for r in realm["roles"]["realm"]} >= {"reader", "member", "admin"}
    users = {u["username"]: u for u in realm["users"]}
    for name, role, project in (
        ("alice", "member", "demo"),
        ("bob", "member", "other"),
        ("carol", "reader", "demo"),
        ("admin", "admin", "admin"),
    ):
        user = users[name]
        assert user["realmRoles"] == [role] and user["attributes"]["project_id"] == [project]
        assert user["enabled"] and user["emailVerified"] and not user["requiredActions"]
    scope = next(s for s in realm["clientScopes"] if s["name"] == "novaflow-api")
    mappers = {m["protocolMapper"]: m["config"] for m in scope["protocolMappers"]}
    assert mappers["oidc-usermodel-attribute-mapper"]["claim.name"] == "project_id"
    assert mappers["oidc-audience-mapper"]["included.custom.audience"] == "novaflow-api"
    clients = {c["clientId"]: c for c in realm["clients"]}
    assert (
        clients["novaflow-cli"]["publicClient"]
        and clients["novaflow-cli"]["directAccessGrantsEnabled"]
    )
    assert clients["novaflow-ops"]["serviceAccountsEnabled"]
    for client in clients.values():
        assert "novaflow-api" in client["defaultClientScopes"]
    assert users["service-account-novaflow-ops"]["realmRoles"] == ["admin"]


def test_compose_publishes_no_temporal_port_beyond_the_loopback_ui() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "ports" not in services["temporal"]  # the frontend: the compose network only
    assert services["temporal-ui"]["ports"] == ["127.0.0.1:8233:8080"]
