"""What a fresh deployment offers: a few flavors, images, a tenant network and a floating pool.
Idempotent: running it again changes nothing."""

from __future__ import annotations

from typing import TypeVar

from sqlmodel import Session, SQLModel, select

from novaflow.db import Database
from novaflow.models import Flavor, Image, Network, Subnet

FLAVORS = [
    Flavor(id="1", name="m1.tiny", vcpus=1, ram=512, disk=1),
    Flavor(id="2", name="m1.small", vcpus=1, ram=2048, disk=20),
    Flavor(id="3", name="m1.medium", vcpus=2, ram=4096, disk=40),
    Flavor(id="4", name="m1.large", vcpus=4, ram=8192, disk=80),
]
# Fixed ids so that docs, scripts and tests can name them.
IMAGES = [
    Image(
        id="6b7c0e4a-2f44-4b8e-9b1a-0c1f1d9e5a01",
        name="cirros-0.6.2",
        size=21430272,
        properties={"architecture": "x86_64", "os_distro": "cirros"},
    ),
    Image(
        id="6b7c0e4a-2f44-4b8e-9b1a-0c1f1d9e5a02",
        name="debian-12",
        size=355401728,
        min_disk=2,
        properties={"architecture": "x86_64", "os_distro": "debian"},
    ),
    Image(
        id="6b7c0e4a-2f44-4b8e-9b1a-0c1f1d9e5a03",
        name="debian-12-arm64",
        size=341573632,
        min_disk=2,
        properties={"architecture": "aarch64", "os_distro": "debian"},
    ),
]
T = TypeVar("T", bound=SQLModel)

PRIVATE_NETWORK_ID = "3f4e1b2a-9c8d-4e7f-a6b5-0d1c2e3f4a01"
PUBLIC_NETWORK_ID = "3f4e1b2a-9c8d-4e7f-a6b5-0d1c2e3f4a02"
NETWORKS = [
    (
        Network(id=PRIVATE_NETWORK_ID, name="private"),
        Subnet(
            id="7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c01",
            network_id=PRIVATE_NETWORK_ID,
            cidr="10.0.0.0/22",
            gateway_ip="10.0.0.1",
            allocation_start="10.0.0.2",
            allocation_end="10.0.3.254",
        ),
    ),
    (
        Network(id=PUBLIC_NETWORK_ID, name="public", external=True),
        Subnet(
            id="7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c02",
            network_id=PUBLIC_NETWORK_ID,
            cidr="172.24.4.0/24",
            gateway_ip="172.24.4.1",
            allocation_start="172.24.4.10",
            allocation_end="172.24.4.250",
        ),
    ),
]


def _fresh(row: T) -> T:
    """A new row from a template (the templates themselves never join a session)."""
    return type(row).model_validate(row.model_dump())


def seed(db: Database) -> None:
    with db.write() as session:
        _add_missing(session)


def _add_missing(session: Session) -> None:
    for flavor in FLAVORS:
        if session.get(Flavor, flavor.id) is None:
            session.add(_fresh(flavor))
    for image in IMAGES:
        if session.get(Image, image.id) is None:
            session.add(_fresh(image))
    for network, subnet in NETWORKS:
        if session.get(Network, network.id) is None:
            session.add(_fresh(network))
            session.flush()
        if session.exec(select(Subnet).where(Subnet.id == subnet.id)).first() is None:
            session.add(_fresh(subnet))
