"""/v2.1/os-migrations (admin): every resize and cold migration, newest first, with its
status from pre-migrating to confirmed, reverted or error (Nova's fields and filters).
2.59 pages the list (`limit`, `marker`: a migration's uuid) and filters it by `changes-since`;
before, Nova ignores those."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api import listing, views
from api.compute import MAX_PAGE
from api.deps import SessionDep
from api.microversion import current
from api.policy import rule
from novaflow import moves

router = APIRouter(prefix="/v2.1/os-migrations", tags=["migrations"])


class MigrationQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    host: str | None = None  # the source or the destination
    status: str | None = None
    migration_type: str | None = None  # resize | migration
    instance_uuid: str | None = None
    changes_since: datetime | None = Field(default=None, alias="changes-since")  # 2.59
    limit: int | None = Field(default=None, ge=0)  # 2.59
    marker: str | None = None  # 2.59


@router.get("", dependencies=[rule("os_compute_api:os-migrations:index")])
def list_migrations(
    request: Request, session: SessionDep, q: Annotated[MigrationQuery, Query()]
) -> dict[str, Any]:
    paged = current.get() >= (2, 59)
    filters = moves.MigrationFilters(
        host=q.host,
        status=q.status,
        migration_type=q.migration_type,
        instance_uuid=q.instance_uuid,
        changes_since=q.changes_since if paged else None,
    )
    limit, marker = (q.limit, q.marker) if paged else (None, None)
    if limit is not None:
        limit = min(limit, MAX_PAGE)  # Nova clamps a page rather than refusing it
    rows = moves.list_migrations(session, filters, limit, marker)
    body: dict[str, Any] = {"migrations": [views.migration_view(m) for m in rows]}
    if (end := listing.nova_page_end(rows, limit)) is not None:
        body["migrations_links"] = listing.next_links(request, end.uuid)
    return body
