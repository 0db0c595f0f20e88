"""Alembic environment: runs against the engine the caller hands over (Database.migrate),
or against NOVAFLOW_DATABASE_URL / DATABASE_URL when run from the alembic command line."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import novaflow.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from novaflow.config import get_settings
from novaflow.db import make_engine

config = context.config
engine = config.attributes.get("engine") or make_engine(get_settings().database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
