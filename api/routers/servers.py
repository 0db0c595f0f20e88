"""/v2.1/servers: create (202), list, show, rename, delete (204), os-interface,
os-instance-actions; the metadata routes are in server_metadata.py, under this router."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, Field

from api import views
from api.auth import RequestContext
from api.compute import ComputeAPI
from api.deps import ComputeDep, ContextDep, SessionDep
from api.policy import rule
from api.routers.server_actions import router as actions_router
from api.routers.server_metadata import router as metadata_router
from api.schemas import ServerCreateBody, ServerUpdateBody
from novaflow import ipam, servers
from novaflow.models import Server

router = APIRouter(prefix="/v2.1/servers", tags=["servers"])
router.include_router(metadata_router)
router.include_router(actions_router)


@router.post("", status_code=202, dependencies=[rule("os_compute_api:servers:create")])
async def create_server(
    body: Annotated[ServerCreateBody, Body()],
    ctx: ContextDep,
    compute: ComputeDep,
    response: Response,
) -> dict[str, Any]:
    reserve, result = await compute.create(ctx, body)
    response.headers["x-openstack-request-id"] = reserve.request.request_id
    if body.server.return_reservation_id:
        return {"reservation_id": reserve.request.reservation_id}
    return views.create_answer(result.server_ids[0], body.server.adminPass or uuid.uuid4().hex[:12])


class ServerListQuery(BaseModel):
    """The filters and paging of GET /servers and /servers/detail (Nova's names)."""

    all_tenants: bool = False
    name: str | None = None
    status: str | None = None
    host: str | None = None
    reservation_id: str | None = None
    limit: int | None = Field(default=None, ge=0)
    marker: str | None = None


def _page(session: SessionDep, ctx: RequestContext, q: ServerListQuery) -> list[Server]:
    # `host` is an admin's filter (Nova's): a non-admin's is ignored, or it would name hosts.
    host = q.host if ctx.is_admin else None
    filters = servers.ServerFilters(None, q.name, q.status, host, q.reservation_id)
    return ComputeAPI.list(session, ctx, filters, q.all_tenants, q.limit, q.marker)


ListQuery = Annotated[ServerListQuery, Query()]


@router.get("", dependencies=[rule("os_compute_api:servers:index")])
def list_servers(session: SessionDep, ctx: ContextDep, q: ListQuery) -> dict[str, Any]:
    return {"servers": [views.server_summary(s) for s in _page(session, ctx, q)]}


@router.get("/detail", dependencies=[rule("os_compute_api:servers:detail")])
def list_servers_detail(session: SessionDep, ctx: ContextDep, q: ListQuery) -> dict[str, Any]:
    return {"servers": [views.server_view(session, s, ctx) for s in _page(session, ctx, q)]}


@router.get("/{server_id}", dependencies=[rule("os_compute_api:servers:show")])
def show_server(server_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    server = ComputeAPI.visible_in(session, ctx, server_id)
    return {"server": views.server_view(session, server, ctx)}


@router.put("/{server_id}", dependencies=[rule("os_compute_api:servers:update")])
def update_server(
    server_id: str, body: ServerUpdateBody, ctx: ContextDep, compute: ComputeDep
) -> dict[str, Any]:
    """Nova's rename: 200 with the whole server; 409 while it is being deleted."""

    def rename(session: SessionDep, server: Server) -> dict[str, Any]:
        if body.server.name is not None:
            servers.rename(session, server, body.server.name)
        return {"server": views.server_update_view(session, server, ctx)}

    return compute.change(ctx, server_id, rename)


@router.delete(
    "/{server_id}", status_code=204, dependencies=[rule("os_compute_api:servers:delete")]
)
async def delete_server(server_id: str, ctx: ContextDep, compute: ComputeDep) -> Response:
    """Accepted from any state (409 only when locked, for a non-admin). Repeating it while a
    delete is under way joins that delete, or restarts it if its workflow failed."""
    ticket = await compute.delete(ctx, server_id)
    return Response(status_code=204, headers={"x-openstack-request-id": ticket.request_id})


@router.get("/{server_id}/diagnostics", dependencies=[rule("os_compute_api:os-server-diagnostics")])
async def server_diagnostics(
    server_id: str, ctx: ContextDep, compute: ComputeDep
) -> dict[str, Any]:
    """What the hypervisor itself reports (admin), asked on the server's host."""
    host, info = await compute.diagnostics(ctx, server_id)
    return views.diagnostics_view(host, info)


@router.get(
    "/{server_id}/os-interface", dependencies=[rule("os_compute_api:os-attach-interfaces:list")]
)
def list_interfaces(server_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    server = ComputeAPI.visible_in(session, ctx, server_id)
    return {
        "interfaceAttachments": [views.interface_view(p) for p in ipam.ports_of(session, server.id)]
    }


@router.get(
    "/{server_id}/os-instance-actions",
    dependencies=[rule("os_compute_api:os-instance-actions:list")],
)
def list_actions(server_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    server = ComputeAPI.visible_in(session, ctx, server_id, include_deleted=True)
    return {
        "instanceActions": [views.action_view(a) for a in servers.actions_of(session, server.id)]
    }


@router.get(
    "/{server_id}/os-instance-actions/{request_id}",
    dependencies=[rule("os_compute_api:os-instance-actions:show")],
)
def show_action(
    server_id: str, request_id: str, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    server = ComputeAPI.visible_in(session, ctx, server_id, include_deleted=True)
    action = servers.get_action(session, server.id, request_id)
    body = views.action_view(action)
    body["events"] = views.action_events(session, action, ctx)
    return {"instanceAction": body}
