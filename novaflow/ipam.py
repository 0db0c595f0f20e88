"""IP address management: ports with unique MACs, fixed IPs from a subnet's allocation range,
floating IPs from an external network's pool.

No address is ever handed out twice: each allocation is a row whose key is (subnet, address),
so the database refuses a duplicate and the loser of a race simply takes the next address.
Every function is idempotent on the ids the caller passes in.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from novaflow.errors import Conflict, Invalid, NotFound, PortInUse
from novaflow.models import FixedIP, FloatingIP, Network, Port, Subnet

MAC_PREFIX = "fa:16:3e"  # the OpenStack prefix, so tools that know it recognise our ports


@dataclass(frozen=True)
class PortView:
    port_id: str
    network_id: str
    network_name: str
    mac_address: str
    fixed_ips: list[str]
    floating_ips: list[str] = field(default_factory=list)
    subnet_ids: list[str] = field(default_factory=list)


def addresses_in_range(subnet: Subnet) -> Iterator[str]:
    start = ipaddress.ip_address(subnet.allocation_start)
    end = ipaddress.ip_address(subnet.allocation_end)
    for value in range(int(start), int(end) + 1):
        yield str(ipaddress.ip_address(value))


def check_address_in_subnet(subnet: Subnet, address: str) -> None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise Invalid(
            f"Invalid input for field/attribute fixed_ip. '{address}' is not an IP address"
        ) from None
    start, end = (ipaddress.ip_address(a) for a in (subnet.allocation_start, subnet.allocation_end))
    if not start <= ip <= end:
        raise Invalid(
            f"Invalid input for field/attribute fixed_ip. {address} is outside the allocation "
            f"range {subnet.allocation_start}-{subnet.allocation_end} of subnet {subnet.id}"
        )


def subnet_of(session: Session, network_id: str) -> Subnet:
    subnet = session.exec(select(Subnet).where(Subnet.network_id == network_id)).first()
    if subnet is None:
        raise Invalid(f"Network {network_id} has no subnet to allocate addresses from")
    return subnet


def _take_address(session: Session, subnet: Subnet, wanted: str | None, make_row) -> str:  # type: ignore[no-untyped-def]
    """Insert the first free address of the subnet (or `wanted`) through make_row(address)."""
    if wanted is not None:
        check_address_in_subnet(subnet, wanted)
        candidates: Iterator[str] = iter([wanted])
    else:
        candidates = addresses_in_range(subnet)
    used = _used_addresses(session, subnet)
    for address in candidates:
        if address in used:
            continue
        try:
            with session.begin_nested():
                session.add(make_row(address))
        except IntegrityError:
            continue  # taken by a concurrent transaction since we read: try the next one
        return address
    if wanted is not None:
        raise Conflict(f"IP address {wanted} is already allocated in subnet {subnet.id}")
    raise Conflict(f"No more IP addresses available on network {subnet.network_id}")


def _used_addresses(session: Session, subnet: Subnet) -> set[str]:
    fixed = session.exec(select(FixedIP.address).where(FixedIP.subnet_id == subnet.id))
    floating = session.exec(
        select(FloatingIP.address).where(FloatingIP.network_id == subnet.network_id)
    )
    return set(fixed) | set(floating)


def _new_mac(session: Session) -> str:
    while True:
        mac = f"{MAC_PREFIX}:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))
        if session.exec(select(Port.id).where(Port.mac_address == mac)).first() is None:
            return mac


def create_port(
    session: Session,
    port_id: str,
    network_id: str,
    project_id: str,
    device_id: str | None = None,
    fixed_ip: str | None = None,
    owned_by_server: bool = False,
) -> Port:
    """Create a port with a MAC and a fixed IP. Returns the existing port for a known id."""
    existing = session.get(Port, port_id)
    if existing is not None:
        return existing
    subnet = subnet_of(session, network_id)
    port = Port(
        id=port_id,
        network_id=network_id,
        project_id=project_id,
        mac_address=_new_mac(session),
        device_id=device_id,
        owned_by_server=owned_by_server,
        status="ACTIVE" if device_id else "DOWN",
    )
    session.add(port)
    session.flush()
    _take_address(
        session,
        subnet,
        fixed_ip,
        lambda a: FixedIP(subnet_id=subnet.id, address=a, port_id=port_id),
    )
    return port


def bind_port(session: Session, port_id: str, server_id: str) -> Port:
    port = session.get(Port, port_id, with_for_update=True)
    if port is None:
        raise NotFound(f"Port {port_id} could not be found.")
    if port.device_id not in (None, server_id):
        raise PortInUse(f"Port {port_id} is still in use.")
    port.device_id = server_id
    port.status = "ACTIVE"
    session.flush()
    return port


def allocate_floating_ip(
    session: Session,
    floating_ip_id: str,
    project_id: str,
    port: Port,
    pool_network_id: str | None = None,
) -> FloatingIP:
    existing = session.get(FloatingIP, floating_ip_id)
    if existing is not None:
        return existing
    pool = session.get(Network, pool_network_id) if pool_network_id else default_pool(session)
    if pool is None or not pool.external:
        raise Invalid("Invalid input for field/attribute floating_ip. No floating IP pool")
    subnet = subnet_of(session, pool.id)
    fixed = session.exec(select(FixedIP.address).where(FixedIP.port_id == port.id)).first()

    def row(address: str) -> FloatingIP:
        return FloatingIP(
            id=floating_ip_id,
            network_id=pool.id,
            address=address,
            project_id=project_id,
            port_id=port.id,
            fixed_ip_address=fixed,
            owned_by_server=True,
        )

    _take_address(session, subnet, None, row)
    return session.get(FloatingIP, floating_ip_id)  # type: ignore[return-value]


def default_pool(session: Session) -> Network | None:
    return session.exec(select(Network).where(col(Network.external)).order_by(Network.name)).first()


def release_for_server(session: Session, server_id: str) -> int:
    """Delete what the server's create made (ports, their IPs, floating IPs); unbind the
    user's own ports and floating IPs. Idempotent: returns how many ports it touched."""
    ports = session.exec(select(Port).where(Port.device_id == server_id)).all()
    for port in ports:
        for fip in session.exec(select(FloatingIP).where(FloatingIP.port_id == port.id)):
            if fip.owned_by_server:
                session.delete(fip)
            else:
                fip.port_id = None
                fip.fixed_ip_address = None
        if port.owned_by_server:
            session.exec(delete(FixedIP).where(col(FixedIP.port_id) == port.id))  # type: ignore[call-overload]
            session.delete(port)
        else:
            port.device_id = None
            port.status = "DOWN"
    session.flush()
    return len(ports)


def delete_port(session: Session, port_id: str) -> None:
    """Remove an unbound port and its fixed IPs. The row is locked (as bind_port locks it) and
    read afresh, so a bind in progress is waited for and its binding seen: PortInUse."""
    port = session.get(Port, port_id, with_for_update=True, populate_existing=True)
    if port is None:
        raise NotFound(f"Port {port_id} could not be found.")
    if port.device_id is not None:
        raise PortInUse(f"Port {port_id} is still in use by server {port.device_id}.")
    session.exec(delete(FixedIP).where(col(FixedIP.port_id) == port_id))  # type: ignore[call-overload]
    session.delete(port)
    session.flush()


def ports_of(session: Session, server_id: str) -> list[PortView]:
    ports = session.exec(
        select(Port).where(Port.device_id == server_id).order_by(Port.created_at, Port.id)
    ).all()
    return [port_view(session, port) for port in ports]


def port_view(session: Session, port: Port) -> PortView:
    network = session.get(Network, port.network_id)
    fixed = session.exec(select(FixedIP).where(FixedIP.port_id == port.id)).all()
    floating = session.exec(select(FloatingIP.address).where(FloatingIP.port_id == port.id)).all()
    return PortView(
        port_id=port.id,
        network_id=port.network_id,
        network_name=network.name if network else port.network_id,
        mac_address=port.mac_address,
        fixed_ips=[row.address for row in fixed],
        floating_ips=list(floating),
        subnet_ids=[row.subnet_id for row in fixed],
    )
