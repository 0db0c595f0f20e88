from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from novaflow.db import Database
from tests.dbs import fresh_database


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """Every DB-level test runs on SQLite and on PostgreSQL."""
    database = fresh_database(request.param, tmp_path)
    yield database
    database.dispose()
