"""Networks and ports as a project sees them (os-networks, /ports): which it may use, what
they hold, and ports made or removed by hand (with their quota). Allocation is ipam's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import Session, col, select

from novaflow import ipam, quota
from novaflow.errors import Invalid, NotFound
from novaflow.models import FixedIP, FloatingIP, Network, Port, Subnet


@dataclass(frozen=True)
class NetworkUsage:
    network: Network
    subnet: Subnet | None
    addresses_used: int


def _usage(session: Session, network: Network) -> NetworkUsage:
    subnet = session.exec(select(Subnet).where(Subnet.network_id == network.id)).first()
    used = 0
    if subnet is not None:
        fixed = session.exec(select(FixedIP.address).where(FixedIP.subnet_id == subnet.id)).all()
        floating = session.exec(
            select(FloatingIP.id).where(FloatingIP.network_id == network.id)
        ).all()
        used = len(fixed) + len(floating)
    return NetworkUsage(network, subnet, used)


def networks(session: Session, project_id: str, is_admin: bool) -> list[NetworkUsage]:
    """The networks a caller may see: shared ones and its project's (an admin: all)."""
    statement = select(Network).order_by(Network.name)
    if not is_admin:
        statement = statement.where(
            col(Network.project_id).is_(None) | (col(Network.project_id) == project_id)
        )
    return [_usage(session, n) for n in session.exec(statement)]


def network(session: Session, network_id: str, project_id: str, is_admin: bool) -> NetworkUsage:
    found = session.get(Network, network_id)
    if found is None or (found.project_id not in (None, project_id) and not is_admin):
        raise NotFound(f"Network {network_id} could not be found.")
    return _usage(session, found)


def ports(session: Session, project_id: str, is_admin: bool) -> list[Port]:
    statement = select(Port).order_by(Port.created_at)
    if not is_admin:
        statement = statement.where(Port.project_id == project_id)
    return list(session.exec(statement))


def port(
    session: Session, port_id: str, project_id: str, is_admin: bool, lock: bool = False
) -> Port:
    found = session.get(Port, port_id, with_for_update=True if lock else None)
    if found is None or (found.project_id != project_id and not is_admin):
        raise NotFound(f"Port {port_id} could not be found.")
    return found


def create_port(
    session: Session, network_id: str, project_id: str, is_admin: bool, fixed_ip: str | None
) -> Port:
    """A port made by hand on a tenant network, counted against the project's port quota."""
    found = session.get(Network, network_id)
    if (
        found is None
        or found.external
        or (found.project_id not in (None, project_id) and not is_admin)
    ):
        raise Invalid(
            f"Invalid input for field/attribute port.network_id. "
            f"Network {network_id} could not be found."
        )
    port_id = str(uuid.uuid4())
    quota.reserve(session, project_id, [port_id], quota.QuotaDeltas(instances=0, ports=1))
    quota.commit(session, port_id)
    return ipam.create_port(session, port_id, found.id, project_id, fixed_ip=fixed_ip)


def delete_port(session: Session, port_id: str, project_id: str, is_admin: bool) -> None:
    """Remove a port (not while a server uses it) and give its quota back. The row is locked,
    so a server cannot bind it meanwhile."""
    port(session, port_id, project_id, is_admin, lock=True)
    ipam.delete_port(session, port_id)
    quota.release(session, port_id)
