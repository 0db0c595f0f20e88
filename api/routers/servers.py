"""/v2.1/servers: create (202), list, show, rename, delete (204), os-interface,
os-instance-actions; the metadata routes are in server_metadata.py, under this router."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from api import operations, views
from api.auth import RequestContext
from api.compute import new_request_id
from api.deps import AdminDep, ComputeDep, ContextDep, DbDep, SessionDep, TemporalDep
from api.routers.server_actions import router as actions_router
from api.routers.server_actions import server_host_that_is_up
from api.routers.server_metadata import router as metadata_router
from api.schemas import ServerCreateBody, ServerUpdateBody
from api.server_create import build_reserve_input
from novaflow import ipam, servers
from novaflow.errors import Invalid, NotFound
from novaflow.models import InstanceAction, Server
from novaflow.states import LIBVIRT_POWER_STATE, PowerState, derive_status

router = APIRouter(prefix="/v2.1/servers", tags=["servers"])
router.include_router(metadata_router)
router.include_router(actions_router)


def visible_server(
    session: Session,
    server_id: str,
    ctx: RequestContext,
    include_deleted: bool = False,
    for_update: bool = False,
) -> Server:
    """The server the caller may see (else 404); `for_update` locks it for a change."""
    return servers.get_visible_server(
        session,
        server_id,
        ctx.project_id,
        is_admin=ctx.is_admin,
        include_deleted=include_deleted,
        for_update=for_update,
    )


@router.post("", status_code=202)
async def create_server(
    request: Request,
    body: Annotated[ServerCreateBody, Body()],
    ctx: ContextDep,
    db: DbDep,
    temporal: TemporalDep,
    response: Response,
) -> dict[str, Any]:
    request_id = new_request_id()

    def validate() -> Any:
        with db.read() as session:
            return build_reserve_input(session, body, ctx, request_id)

    reserve = await run_in_threadpool(validate)
    settings = request.app.state.settings
    result = await operations.start_create(
        temporal, reserve, settings.max_build_attempts, settings.host_pickup_seconds
    )
    response.headers["x-openstack-request-id"] = request_id
    if body.server.return_reservation_id:
        return {"reservation_id": reserve.request.reservation_id}
    first = result.server_ids[0]
    return {
        "server": {
            "id": first,
            "links": views.links("servers", first),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
            "adminPass": body.server.adminPass or uuid.uuid4().hex[:12],
        }
    }


class ServerListQuery(BaseModel):
    """The filters and paging of GET /servers and /servers/detail (Nova's names)."""

    all_tenants: bool = False
    name: str | None = None
    status: str | None = None
    host: str | None = None
    reservation_id: str | None = None
    limit: int | None = Field(default=None, ge=0)
    marker: str | None = None


def _query(session: Session, ctx: RequestContext, q: ServerListQuery) -> list[Server]:
    statement = select(Server).where(col(Server.deleted).is_(False))
    if not (q.all_tenants and ctx.is_admin):
        statement = statement.where(Server.project_id == ctx.project_id)
    if q.name:
        statement = statement.where(col(Server.name).contains(q.name))
    if q.host and ctx.is_admin:
        statement = statement.where(Server.host == q.host)
    if q.reservation_id:
        statement = statement.where(Server.reservation_id == q.reservation_id)
    statement = statement.order_by(col(Server.created_at).desc(), col(Server.id))
    rows = list(session.exec(statement))
    if q.status:
        wanted = q.status.upper()
        rows = [s for s in rows if derive_status(s.vm_state, s.task_state) == wanted]
    if q.marker is not None:
        ids = [s.id for s in rows]
        if q.marker not in ids:
            raise Invalid(f"marker [{q.marker}] not found")
        rows = rows[ids.index(q.marker) + 1 :]
    return rows[: q.limit] if q.limit is not None else rows


ListQuery = Annotated[ServerListQuery, Query()]


@router.get("")
def list_servers(session: SessionDep, ctx: ContextDep, q: ListQuery) -> dict[str, Any]:
    return {"servers": [views.server_summary(s) for s in _query(session, ctx, q)]}


@router.get("/detail")
def list_servers_detail(session: SessionDep, ctx: ContextDep, q: ListQuery) -> dict[str, Any]:
    return {"servers": [views.server_view(session, s, ctx) for s in _query(session, ctx, q)]}


@router.get("/{server_id}")
def show_server(server_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    return {"server": views.server_view(session, visible_server(session, server_id, ctx), ctx)}


@router.put("/{server_id}")
def update_server(
    server_id: str, body: ServerUpdateBody, ctx: ContextDep, db: DbDep
) -> dict[str, Any]:
    """Nova's rename: 200 with the whole server; 409 while it is being deleted."""
    with db.write() as session:
        server = visible_server(session, server_id, ctx, for_update=True)
        if body.server.name is not None:
            servers.rename(session, server, body.server.name)
        return {"server": views.server_view(session, server, ctx)}


@router.delete("/{server_id}", status_code=204)
async def delete_server(server_id: str, ctx: ContextDep, compute: ComputeDep) -> Response:
    """Accepted from any state (409 only when locked, for a non-admin). Repeating it while a
    delete is under way joins that delete, or restarts it if its workflow failed."""
    ticket = await compute.delete(ctx, server_id)
    return Response(status_code=204, headers={"x-openstack-request-id": ticket.request_id})


@router.get("/{server_id}/diagnostics")
async def server_diagnostics(
    request: Request, server_id: str, ctx: AdminDep, db: DbDep, temporal: TemporalDep
) -> dict[str, Any]:
    """What the hypervisor itself reports (admin), asked on the server's host."""
    settings = request.app.state.settings
    host = await run_in_threadpool(
        server_host_that_is_up, db, server_id, ctx, settings, "diagnostics"
    )
    info = await operations.diagnostics(temporal, server_id, host)
    state = LIBVIRT_POWER_STATE.get(info.state, PowerState.NOSTATE) if info.defined else None
    return {
        "state": state.name.lower() if state is not None else "not defined",
        "driver": "libvirt",
        "hypervisor": host,
        "num_cpus": info.vcpus,
        "memory_details": {"maximum": info.memory_mb},
        "cpu_details": [{"time": info.cpu_time_ns}],
        "nic_details": [{"mac_address": mac} for mac in info.mac_addresses],
        "num_nics": len(info.mac_addresses),
    }


@router.get("/{server_id}/os-interface")
def list_interfaces(server_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    server = visible_server(session, server_id, ctx)
    return {
        "interfaceAttachments": [
            {
                "port_id": port.port_id,
                "net_id": port.network_id,
                "mac_addr": port.mac_address,
                "port_state": "ACTIVE",
                "fixed_ips": [
                    {"subnet_id": subnet, "ip_address": address}
                    for subnet, address in zip(port.subnet_ids, port.fixed_ips, strict=True)
                ],
            }
            for port in ipam.ports_of(session, server.id)
        ]
    }


@router.get("/{server_id}/os-instance-actions")
def list_actions(server_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    server = visible_server(session, server_id, ctx, include_deleted=True)
    rows = session.exec(
        select(InstanceAction)
        .where(InstanceAction.server_id == server.id)
        .order_by(col(InstanceAction.start_time).desc())
    ).all()
    return {"instanceActions": [views.action_view(row) for row in rows]}


@router.get("/{server_id}/os-instance-actions/{request_id}")
def show_action(
    server_id: str, request_id: str, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    server = visible_server(session, server_id, ctx, include_deleted=True)
    action = session.get(InstanceAction, (server.id, request_id))
    if action is None:
        raise NotFound(f"Action {request_id} for instance {server_id} could not be found.")
    body = views.action_view(action)
    body["events"] = views.action_events(session, action, ctx)
    if ctx.is_admin:
        body["workflow_id"] = action.workflow_id
    return {"instanceAction": body}
