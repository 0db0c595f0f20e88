"""/v2.1/servers/{id}/os-instance-actions: a server's audit trail, as Nova shows it at the
negotiated version: a deleted server's from 2.21, a non-admin's events from 2.51, updated_at
and paging (limit, marker, changes-since) from 2.58, the events' hosts from 2.62.

Included by the servers router (same prefix).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api import listing, views
from api.auth import RequestContext
from api.compute import MAX_PAGE, ComputeAPI
from api.deps import ContextDep, SessionDep
from api.microversion import current
from api.policy import rule
from novaflow import servers
from novaflow.models import Server

router = APIRouter(tags=["instance actions"])


class ActionListQuery(BaseModel):
    """Nova 2.58's paging of a server's instance actions (ignored before, as Nova)."""

    model_config = ConfigDict(populate_by_name=True)

    limit: int | None = Field(default=None, ge=0)
    marker: str | None = None  # a request id
    changes_since: datetime | None = Field(default=None, alias="changes-since")


def _actions_server(session: SessionDep, ctx: RequestContext, server_id: str) -> Server:
    # A deleted server's actions are shown from 2.21 (before, it is not found).
    return ComputeAPI.visible_in(session, ctx, server_id, include_deleted=current.get() >= (2, 21))


@router.get(
    "/{server_id}/os-instance-actions",
    dependencies=[rule("os_compute_api:os-instance-actions:list")],
)
def list_actions(
    server_id: str,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    q: Annotated[ActionListQuery, Query()],
) -> dict[str, Any]:
    server = _actions_server(session, ctx, server_id)
    limit = None
    if current.get() < (2, 58):
        rows = servers.actions_of(session, server.id)
    else:
        # Nova clamps a page to its maximum; limit=0 is an empty page (Nova's actions_get).
        limit = min(q.limit, MAX_PAGE) if q.limit is not None else None
        rows = servers.actions_of(session, server.id, limit, q.marker, q.changes_since)
    body: dict[str, Any] = {"instanceActions": [views.action_view(a) for a in rows]}
    if (end := listing.nova_page_end(rows, limit)) is not None:
        body["links"] = listing.next_links(request, end.request_id)
    return body


@router.get(
    "/{server_id}/os-instance-actions/{request_id}",
    dependencies=[rule("os_compute_api:os-instance-actions:show")],
)
def show_action(
    server_id: str, request_id: str, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    server = _actions_server(session, ctx, server_id)
    action = servers.get_action(session, server.id, request_id)
    body = views.action_view(action)
    # Before 2.51 only an admin sees the events (Nova's policy then).
    if ctx.is_admin or current.get() >= (2, 51):
        body["events"] = views.action_events(session, action, ctx)
    return {"instanceAction": body}
