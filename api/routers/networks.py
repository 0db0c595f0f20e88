"""/v2.1/os-networks (Nova's network view, a proxy 2.36 removed: 404 from then on) and
/v2.1/ports (a small Neutron-like resource, so that a server can be booted on a port made
beforehand)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from api import views
from api.deps import ContextDep, DbDep, SessionDep
from api.microversion import until
from api.policy import rule
from api.schemas import PortBody
from novaflow import networks

router = APIRouter(prefix="/v2.1", tags=["networks"])


@router.get("/os-networks", dependencies=[until((2, 36)), rule("os_compute_api:os-networks:list")])
def list_networks(session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    rows = networks.networks(session, ctx.project_id, ctx.is_admin)
    return {"networks": [views.network_view(n) for n in rows]}


@router.get(
    "/os-networks/{network_id}",
    dependencies=[until((2, 36)), rule("os_compute_api:os-networks:view")],
)
def show_network(network_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    usage = networks.network(session, network_id, ctx.project_id, ctx.is_admin)
    return {"network": views.network_view(usage)}


@router.get("/ports", dependencies=[rule("get_port")])
def list_ports(session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    rows = networks.ports(session, ctx.project_id, ctx.is_admin)
    return {"ports": [views.port_body(session, p)["port"] for p in rows]}


@router.post("/ports", status_code=201, dependencies=[rule("create_port")])
def create_port(body: Annotated[PortBody, Body()], db: DbDep, ctx: ContextDep) -> dict[str, Any]:
    spec = body.port
    fixed_ip = spec.fixed_ips[0].ip_address if spec.fixed_ips else None
    with db.write() as session:
        port = networks.create_port(
            session, spec.network_id, ctx.project_id, ctx.is_admin, fixed_ip
        )
        return views.port_body(session, port)


@router.get("/ports/{port_id}", dependencies=[rule("get_port")])
def show_port(port_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    return views.port_body(session, networks.port(session, port_id, ctx.project_id, ctx.is_admin))


@router.delete("/ports/{port_id}", status_code=204, dependencies=[rule("delete_port")])
def delete_port(port_id: str, db: DbDep, ctx: ContextDep) -> Response:
    with db.write() as session:
        networks.delete_port(session, port_id, ctx.project_id, ctx.is_admin)
    return Response(status_code=204)
