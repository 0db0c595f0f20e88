"""/v2.1/os-migrations (admin): every resize and cold migration, newest first, with its
status from pre-migrating to confirmed, reverted or error (Nova's fields and filters)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api import views
from api.deps import SessionDep
from api.policy import rule
from novaflow import moves

router = APIRouter(prefix="/v2.1/os-migrations", tags=["migrations"])


class MigrationQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    host: str | None = None  # the source or the destination
    status: str | None = None
    migration_type: str | None = None  # resize | migration
    instance_uuid: str | None = None
    changes_since: datetime | None = Field(default=None, alias="changes-since")
    limit: int | None = Field(default=None, ge=0, le=1000)


@router.get("", dependencies=[rule("os_compute_api:os-migrations:index")])
def list_migrations(session: SessionDep, q: Annotated[MigrationQuery, Query()]) -> dict[str, Any]:
    filters = moves.MigrationFilters(
        host=q.host,
        status=q.status,
        migration_type=q.migration_type,
        instance_uuid=q.instance_uuid,
        changes_since=q.changes_since,
    )
    rows = moves.list_migrations(session, filters, q.limit)
    return {"migrations": [views.migration_view(m) for m in rows]}
