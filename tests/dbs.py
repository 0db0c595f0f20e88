"""Databases for tests: a fresh SQLite file, and PostgreSQL when NOVAFLOW_TEST_POSTGRES_URL
names one (`make test` and CI always set it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from novaflow.db import Database
from novaflow.seed import seed

POSTGRES_URL = os.environ.get("NOVAFLOW_TEST_POSTGRES_URL")


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
