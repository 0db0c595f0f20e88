"""/v2.1/servers: create (202), list, show, rename, delete (204), diagnostics, os-interface.
Under this router: metadata (server_metadata.py), actions (server_actions.py), tags
(server_tags.py), os-instance-actions (instance_actions.py), migrations
(server_migrations.py)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api import views
from api.auth import RequestContext
from api.compute import ComputeAPI
from api.deps import ComputeDep, ContextDep, SessionDep
from api.microversion import current
from api.policy import allowed, rule
from api.routers.instance_actions import router as instance_actions_router
from api.routers.server_actions import router as actions_router
from api.routers.server_metadata import router as metadata_router
from api.routers.server_migrations import router as migrations_router
from api.routers.server_tags import router as tags_router
from api.schemas import ServerCreateBody, ServerUpdateBody
from novaflow import ipam, servers
from novaflow.errors import Invalid
from novaflow.models import Server

router = APIRouter(prefix="/v2.1/servers", tags=["servers"])
router.include_router(metadata_router)
router.include_router(actions_router)
router.include_router(tags_router)
router.include_router(instance_actions_router)
router.include_router(migrations_router)


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

    model_config = ConfigDict(populate_by_name=True)

    all_tenants: bool = False
    name: str | None = None
    status: str | None = None
    host: str | None = None
    reservation_id: str | None = None
    limit: int | None = Field(default=None, ge=0)
    marker: str | None = None
    ip6: str | None = None  # an admin's, and from 2.5 everyone's
    # Nova 2.26, comma-separated: all of them, any of them, not all of them, none of them.
    tags: str | None = None
    tags_any: str | None = Field(default=None, alias="tags-any")
    not_tags: str | None = Field(default=None, alias="not-tags")
    not_tags_any: str | None = Field(default=None, alias="not-tags-any")


# Every status Nova's servers can have (its _STATE_MAP), whether novaflow's can or not.
NOVA_STATUSES = frozenset(
    {
        "ACTIVE", "BUILD", "REBOOT", "HARD_REBOOT", "PASSWORD", "REBUILD", "MIGRATING",
        "RESIZE", "VERIFY_RESIZE", "REVERT_RESIZE", "PAUSED", "SUSPENDED", "RESCUE", "ERROR",
        "DELETED", "SOFT_DELETED", "SHUTOFF", "SHELVED", "SHELVED_OFFLOADED",
    }
)  # fmt: skip


def _tag_list(value: str | None) -> tuple[str, ...]:
    return tuple(t for t in value.split(",") if t) if value else ()


def _filters(ctx: RequestContext, q: ServerListQuery) -> servers.ServerFilters:
    # `host` is an admin's filter (Nova's): a non-admin's is ignored, or it would name hosts.
    host = q.host if ctx.is_admin else None
    version = current.get()
    # An unknown status matches nothing; from 2.38 it is refused.
    if q.status is not None and q.status.upper() not in NOVA_STATUSES and version >= (2, 38):
        raise Invalid("Invalid status value")
    filters = servers.ServerFilters(None, q.name, q.status, host, q.reservation_id)
    if version < (2, 26):  # Nova ignores the filters it does not know yet
        return filters
    return replace(
        filters,
        tags=_tag_list(q.tags),
        tags_any=_tag_list(q.tags_any),
        not_tags=_tag_list(q.not_tags),
        not_tags_any=_tag_list(q.not_tags_any),
    )


def _page(session: SessionDep, ctx: RequestContext, q: ServerListQuery) -> list[Server]:
    filters = _filters(ctx, q)
    if q.ip6 is not None and (ctx.is_admin or current.get() >= (2, 5)):
        return []  # novaflow's networks are IPv4 only: no server has an address it matches
    return ComputeAPI.list(session, ctx, filters, q.all_tenants, q.limit, q.marker)


def _host_status_after(request: Request, ctx: RequestContext) -> timedelta | None:
    """How long a host may miss heartbeats, for a caller who may see host_status (2.16)."""
    if not allowed(ctx, "os_compute_api:servers:show:host_status"):
        return None
    return request.app.state.settings.service_down


ListQuery = Annotated[ServerListQuery, Query()]


@router.get("", dependencies=[rule("os_compute_api:servers:index")])
def list_servers(session: SessionDep, ctx: ContextDep, q: ListQuery) -> dict[str, Any]:
    return {"servers": [views.server_summary(s) for s in _page(session, ctx, q)]}


@router.get("/detail", dependencies=[rule("os_compute_api:servers:detail")])
def list_servers_detail(
    request: Request, session: SessionDep, ctx: ContextDep, q: ListQuery
) -> dict[str, Any]:
    down_after = _host_status_after(request, ctx)
    page = _page(session, ctx, q)
    # The page's tags, images and hosts: one query each, not one per server.
    related = views.Related.of(session, page, ctx, down_after)
    return {"servers": [views.server_view(session, s, ctx, down_after, related) for s in page]}


@router.get("/{server_id}", dependencies=[rule("os_compute_api:servers:show")])
def show_server(
    server_id: str, request: Request, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    server = ComputeAPI.visible_in(session, ctx, server_id)
    return {"server": views.server_view(session, server, ctx, _host_status_after(request, ctx))}


@router.put("/{server_id}", dependencies=[rule("os_compute_api:servers:update")])
def update_server(
    server_id: str, body: ServerUpdateBody, ctx: ContextDep, compute: ComputeDep
) -> dict[str, Any]:
    """Nova's rename: 200 with the whole server; 409 while it is being deleted."""

    def rename(session: SessionDep, server: Server) -> dict[str, Any]:
        if body.server.name is not None:
            servers.rename(session, server, body.server.name)
        if "description" in body.server.model_fields_set:  # (null clears it)
            servers.describe(session, server, body.server.description)
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
    """What the hypervisor itself reports (admin), asked on the server's host: libvirt's own
    keys before 2.48, Nova's standard format from 2.48."""
    host, info = await compute.diagnostics(ctx, server_id)
    if current.get() >= (2, 48):
        return views.diagnostics_view(host, server_id, info)
    return views.libvirt_diagnostics_view(server_id, info)


@router.get(
    "/{server_id}/os-interface", dependencies=[rule("os_compute_api:os-attach-interfaces:list")]
)
def list_interfaces(server_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    server = ComputeAPI.visible_in(session, ctx, server_id)
    return {
        "interfaceAttachments": [views.interface_view(p) for p in ipam.ports_of(session, server.id)]
    }
