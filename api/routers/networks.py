"""/v2.1/os-networks (Nova's network view) and /v2.1/ports (a small Neutron-like resource, so
that a server can be booted on a port made beforehand)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from sqlmodel import Session, col, select

from api.auth import RequestContext
from api.deps import ContextDep, DbDep, SessionDep
from api.schemas import PortBody
from novaflow import ipam, quota
from novaflow.errors import Invalid, NotFound
from novaflow.models import FloatingIP, Network, Port, Subnet

router = APIRouter(prefix="/v2.1", tags=["networks"])


def _visible(ctx: RequestContext):  # type: ignore[no-untyped-def]
    return (col(Network.project_id).is_(None)) | (col(Network.project_id) == ctx.project_id)


def network_view(session: Session, network: Network) -> dict[str, Any]:
    subnet = session.exec(select(Subnet).where(Subnet.network_id == network.id)).first()
    used = 0
    if subnet is not None:
        from novaflow.models import FixedIP

        fixed = session.exec(select(FixedIP.address).where(FixedIP.subnet_id == subnet.id)).all()
        floating = session.exec(
            select(FloatingIP.id).where(FloatingIP.network_id == network.id)
        ).all()
        used = len(fixed) + len(floating)
    return {
        "id": network.id,
        "label": network.name,
        "project_id": network.project_id,
        "external": network.external,
        "cidr": subnet.cidr if subnet else None,
        "gateway": subnet.gateway_ip if subnet else None,
        "subnet_id": subnet.id if subnet else None,
        "allocation_pool": (
            {"start": subnet.allocation_start, "end": subnet.allocation_end} if subnet else None
        ),
        "addresses_used": used,
    }


@router.get("/os-networks")
def list_networks(session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    statement = select(Network).order_by(Network.name)
    if not ctx.is_admin:
        statement = statement.where(_visible(ctx))
    return {"networks": [network_view(session, n) for n in session.exec(statement)]}


@router.get("/os-networks/{network_id}")
def show_network(network_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    network = session.get(Network, network_id)
    if network is None or (network.project_id not in (None, ctx.project_id) and not ctx.is_admin):
        raise NotFound(f"Network {network_id} could not be found.")
    return {"network": network_view(session, network)}


def port_body(session: Session, port: Port) -> dict[str, Any]:
    view = ipam.port_view(session, port)
    return {
        "port": {
            "id": port.id,
            "network_id": port.network_id,
            "mac_address": port.mac_address,
            "device_id": port.device_id or "",
            "project_id": port.project_id,
            "status": port.status,
            "fixed_ips": [
                {"subnet_id": s, "ip_address": a}
                for s, a in zip(view.subnet_ids, view.fixed_ips, strict=True)
            ],
        }
    }


@router.get("/ports")
def list_ports(session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    statement = select(Port).order_by(Port.created_at)
    if not ctx.is_admin:
        statement = statement.where(Port.project_id == ctx.project_id)
    return {"ports": [port_body(session, p)["port"] for p in session.exec(statement)]}


@router.post("/ports", status_code=201)
def create_port(body: Annotated[PortBody, Body()], db: DbDep, ctx: ContextDep) -> dict[str, Any]:
    spec = body.port
    port_id = str(uuid.uuid4())
    with db.write() as session:
        network = session.get(Network, spec.network_id)
        if (
            network is None
            or network.external
            or (network.project_id not in (None, ctx.project_id) and not ctx.is_admin)
        ):
            raise Invalid(
                f"Invalid input for field/attribute port.network_id. "
                f"Network {spec.network_id} could not be found."
            )
        quota.reserve(session, ctx.project_id, [port_id], quota.QuotaDeltas(instances=0, ports=1))
        quota.commit(session, port_id)
        fixed_ip = spec.fixed_ips[0].ip_address if spec.fixed_ips else None
        port = ipam.create_port(session, port_id, network.id, ctx.project_id, fixed_ip=fixed_ip)
        return port_body(session, port)


@router.get("/ports/{port_id}")
def show_port(port_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    port = session.get(Port, port_id)
    if port is None or (port.project_id != ctx.project_id and not ctx.is_admin):
        raise NotFound(f"Port {port_id} could not be found.")
    return port_body(session, port)


@router.delete("/ports/{port_id}", status_code=204)
def delete_port(port_id: str, db: DbDep, ctx: ContextDep) -> Response:
    with db.write() as session:
        port = session.get(Port, port_id)
        if port is None or (port.project_id != ctx.project_id and not ctx.is_admin):
            raise NotFound(f"Port {port_id} could not be found.")
        ipam.delete_port(session, port_id)
        quota.release(session, port_id)
    return Response(status_code=204)
