"""novaflow's own extension resources: what it knows beyond the bodies Nova serves at the
negotiated microversion (which must validate against Nova's schemas, so carry nothing extra).

- GET /v2.1/os-novaflow-servers[/{id}]: each server's lock (Nova 2.9/2.73) and the flavor it
  was built with (Nova's embedded flavor, 2.47);
- GET /v2.1/os-novaflow-servers/{id}/actions/{request_id} (admin): the Temporal workflow that
  runs an instance action;
- GET /v2.1/os-novaflow-hypervisors[/{id}] (admin): each host's zone, allocation ratios,
  libvirt URI and last heartbeat;
- GET /v2.1/os-novaflow-quota-sets/{project}/detail (in quotas.py): the ports quota.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api import views
from api.compute import ComputeAPI
from api.deps import ContextDep, SessionDep
from api.policy import rule
from api.routers.servers import ListQuery, _page
from novaflow import hosts, servers

router = APIRouter(prefix="/v2.1", tags=["novaflow extensions"])


@router.get("/os-novaflow-servers", dependencies=[rule("os_compute_api:servers:detail")])
def list_servers(session: SessionDep, ctx: ContextDep, q: ListQuery) -> dict[str, Any]:
    return {"servers": [views.server_extension_view(session, s) for s in _page(session, ctx, q)]}


@router.get("/os-novaflow-servers/{server_id}", dependencies=[rule("os_compute_api:servers:show")])
def show_server(server_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    server = ComputeAPI.visible_in(session, ctx, server_id)
    return {"server": views.server_extension_view(session, server)}


@router.get(
    "/os-novaflow-servers/{server_id}/actions/{request_id}",
    dependencies=[rule("novaflow:os-instance-actions:workflow")],
)
def show_action(
    server_id: str, request_id: str, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    server = ComputeAPI.visible_in(session, ctx, server_id, include_deleted=True)
    action = servers.get_action(session, server.id, request_id)
    return {"instanceAction": {"request_id": request_id, "workflow_id": action.workflow_id}}


@router.get(
    "/os-novaflow-hypervisors", dependencies=[rule("os_compute_api:os-hypervisors:list-detail")]
)
def list_hypervisors(session: SessionDep) -> dict[str, Any]:
    return {"hypervisors": [views.hypervisor_extension_view(h) for h in hosts.all_hosts(session)]}


@router.get(
    "/os-novaflow-hypervisors/{hypervisor_id}",
    dependencies=[rule("os_compute_api:os-hypervisors:show")],
)
def show_hypervisor(hypervisor_id: str, session: SessionDep) -> dict[str, Any]:
    return {"hypervisor": views.hypervisor_extension_view(hosts.find_host(session, hypervisor_id))}
