"""IPAM: fixed IPs from the allocation range, unique MACs, floating IPs, release."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import select

from novaflow import ipam
from novaflow.db import Database
from novaflow.errors import Conflict, Invalid, PortInUse
from novaflow.models import FixedIP, FloatingIP, Network, Port, Subnet
from novaflow.seed import PRIVATE_NETWORK_ID


def small_network(db: Database, size: int) -> str:
    with db.write() as s:
        net = Network(name=f"n{size}")
        s.add(net)
        s.flush()
        s.add(
            Subnet(
                network_id=net.id,
                cidr="192.168.9.0/24",
                allocation_start="192.168.9.10",
                allocation_end=f"192.168.9.{9 + size}",
            )
        )
        return net.id


def test_ports_get_the_lowest_free_address_and_a_unique_mac(db: Database) -> None:
    with db.write() as s:
        a = ipam.create_port(s, "pa", PRIVATE_NETWORK_ID, "p", device_id="srv")
        b = ipam.create_port(s, "pb", PRIVATE_NETWORK_ID, "p", device_id="srv")
        assert ipam.create_port(s, "pa", PRIVATE_NETWORK_ID, "p").mac_address == a.mac_address
        views = ipam.ports_of(s, "srv")
    assert [v.fixed_ips for v in views] == [["10.0.0.2"], ["10.0.0.3"]]
    assert a.mac_address != b.mac_address and a.mac_address.startswith("fa:16:3e:")


def test_requested_fixed_ip_must_be_free_and_in_range(db: Database) -> None:
    with db.write() as s:
        ipam.create_port(s, "p1", PRIVATE_NETWORK_ID, "p", fixed_ip="10.0.1.7")
    with pytest.raises(Conflict, match="10.0.1.7"), db.write() as s:
        ipam.create_port(s, "p2", PRIVATE_NETWORK_ID, "p", fixed_ip="10.0.1.7")
    with pytest.raises(Invalid, match="fixed_ip"), db.write() as s:
        ipam.create_port(s, "p3", PRIVATE_NETWORK_ID, "p", fixed_ip="192.168.1.1")
    with db.read() as s:
        assert s.get(Port, "p2") is None and s.get(Port, "p3") is None


def test_exhausted_subnet_is_a_clear_conflict(db: Database) -> None:
    net = small_network(db, 2)
    with db.write() as s:
        ipam.create_port(s, "x1", net, "p")
        ipam.create_port(s, "x2", net, "p")
    with pytest.raises(Conflict, match="No more IP addresses"), db.write() as s:
        ipam.create_port(s, "x3", net, "p")


def test_concurrent_allocations_never_share_an_address(db: Database) -> None:
    net = small_network(db, 40)

    def one(i: int) -> str | None:
        try:
            with db.write() as s:
                ipam.create_port(s, f"c{i}", net, "p")
                return s.exec(select(FixedIP.address).where(FixedIP.port_id == f"c{i}")).one()
        except Conflict:
            return None

    with ThreadPoolExecutor(max_workers=10) as pool:
        addresses = [a for a in pool.map(one, range(50)) if a]
    assert len(addresses) == 40 and len(set(addresses)) == 40


def test_release_deletes_own_ports_and_unbinds_users_ports(db: Database) -> None:
    with db.write() as s:
        own = ipam.create_port(
            s, "own", PRIVATE_NETWORK_ID, "p", device_id="srv", owned_by_server=True
        )
        ipam.allocate_floating_ip(s, "fip", "p", own)
        ipam.create_port(s, "user", PRIVATE_NETWORK_ID, "p")
        ipam.bind_port(s, "user", "srv")
    with pytest.raises(PortInUse), db.write() as s:
        ipam.bind_port(s, "user", "other")
    for _ in range(2):  # idempotent
        with db.write() as s:
            ipam.release_for_server(s, "srv")
    with db.read() as s:
        assert s.get(Port, "own") is None and s.get(FloatingIP, "fip") is None
        user = s.get(Port, "user")
        assert user is not None and user.device_id is None
        assert s.exec(select(FixedIP).where(FixedIP.port_id == "own")).first() is None
        assert s.exec(select(FixedIP).where(FixedIP.port_id == "user")).first() is not None


def test_floating_ips_come_from_the_pool(db: Database) -> None:
    with db.write() as s:
        port = ipam.create_port(s, str(uuid.uuid4()), PRIVATE_NETWORK_ID, "p", device_id="s")
        fip = ipam.allocate_floating_ip(s, "f1", "p", port)
        again = ipam.allocate_floating_ip(s, "f1", "p", port)
    assert fip.address == "172.24.4.10" and again.address == fip.address


def test_a_port_being_bound_is_not_deleted_meanwhile(db: Database) -> None:
    """A delete of a port that a server is binding waits on the port's row until the bind
    commits, then finds it bound and refuses (without the lock, on PostgreSQL, it would read
    the port unbound and delete it under the server)."""
    with db.write() as s:
        ipam.create_port(s, "user", PRIVATE_NETWORK_ID, "p")

    def delete() -> None:
        with db.write() as s:
            ipam.delete_port(s, "user")

    with ThreadPoolExecutor(1) as pool, db.write() as s:
        ipam.bind_port(s, "user", "srv")
        deleting = pool.submit(delete)
        with pytest.raises(TimeoutError):  # held while the bind's transaction is open
            deleting.result(timeout=0.5)
    with pytest.raises(PortInUse, match="srv"):
        deleting.result()
    with db.read() as s:
        port = s.get(Port, "user")
        assert port is not None and port.device_id == "srv"
        assert s.exec(select(FixedIP).where(FixedIP.port_id == "user")).first() is not None
