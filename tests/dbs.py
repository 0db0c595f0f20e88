"""Databases for tests: a fresh SQLite file, and PostgreSQL when NOVAFLOW_TEST_POSTGRES_URL
names one (`make test` and CI always set it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from novaflow.db import Database, make_engine
from novaflow.models import Server
from novaflow.seed import seed


def _per_worker(url: str | None) -> str | None:
    """The database of this test process: under pytest-xdist each worker has one of its own
    (`<name>_gw0`, ...), made on first use, since every test drops what it finds there."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if found is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


POSTGRES_URL = _per_worker(os.environ.get("NOVAFLOW_TEST_POSTGRES_URL"))


def fresh_database(kind: str, tmp_path: Path) -> Database:
    if kind == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'test.db'}")
    else:
        if not POSTGRES_URL:
            pytest.skip("PostgreSQL not configured (NOVAFLOW_TEST_POSTGRES_URL)")
        db = Database(POSTGRES_URL)
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    db.migrate()
    seed(db)
    return db


def add_server(
    db: Database,
    server_id: str | None = None,
    *,
    deleted: bool = False,
    metadata: dict[str, str] | None = None,
) -> str:
    """A bare server row (project "p", user "u", 1 vCPU/512 MiB/1 GiB); returns its id."""
    server = Server(
        name=server_id or "vm",
        project_id="p",
        user_id="u",
        reservation_id="r-1",
        flavor_id="1",
        image_id="i",
        vcpus=1,
        memory_mb=512,
        disk_gb=1,
        deleted=deleted,
        metadata_=metadata or {},
    )
    if server_id is not None:
        server.id = server_id
    with db.write() as s:
        s.add(server)
    return server.id
