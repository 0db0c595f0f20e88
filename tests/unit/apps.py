"""The API app on a test database, without a stack: for checks of bodies at microversions above
the API's maximum of the day, which a test raises for itself (`max_version`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import microversion
from api.app import create_app
from novaflow import hosts
from novaflow.config import Settings
from novaflow.db import Database
from tests.dbs import fresh_database


def client(
    db: Database, monkeypatch: pytest.MonkeyPatch, max_version: tuple[int, int], token: str
) -> TestClient:
    """A client of the app on `db` (as the caller `token`, e.g. "admin:p"), answering up to
    `max_version` for this test only. No Temporal: only routes that start no workflow work."""
    monkeypatch.setattr(microversion, "MAX_VERSION", microversion.Version(*max_version))
    settings = Settings(database_url=db.url)
    app = create_app(settings)
    app.state.settings = settings  # what the lifespan sets (not run: it connects to Temporal)
    app.state.db = db
    # A loopback base URL: noauth refuses any other address.
    return TestClient(app, base_url="http://127.0.0.1", headers={"X-Auth-Token": token})


def database_with_hosts(tmp_path: Path, *names: str) -> Database:
    """A fresh, seeded SQLite database with test-driver hosts of 4 vCPU, 4 GiB, 40 GiB."""
    database = fresh_database("sqlite", tmp_path)
    with database.write() as session:
        for name in names:
            hosts.register_host(
                session,
                name,
                vcpus=4,
                memory_mb=4096,
                disk_gb=40,
                arch="x86_64",
                libvirt_uri="test:///default",
                hypervisor_type="test",
            )
    return database


def at(version: str) -> dict[str, str]:
    """The header that asks for compute microversion `version`."""
    return {"OpenStack-API-Version": f"compute {version}"}
