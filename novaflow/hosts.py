"""Host records as compute workers report them: capacity from libvirt, liveness by heartbeat."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from novaflow.errors import NotFound
from novaflow.images import KERNEL_ID, RAMDISK_ID
from novaflow.models import Claim, ComputeService, Host, Image, Server, utcnow


def register_host(
    session: Session,
    name: str,
    *,
    vcpus: int,
    memory_mb: int,
    disk_gb: int,
    arch: str,
    libvirt_uri: str,
    hypervisor_type: str,
    availability_zone: str = "nova",
    disk_transfer_url: str | None = None,
) -> Host:
    """Create or refresh the host's row. Usage counters are the claims': never reset here."""
    host = session.get(Host, name)
    if host is None:
        host = Host(name=name)
        session.add(host)
    host.vcpus, host.memory_mb, host.disk_gb = vcpus, memory_mb, disk_gb
    host.arch, host.libvirt_uri, host.hypervisor_type = arch, libvirt_uri, hypervisor_type
    host.availability_zone, host.disk_transfer_url = availability_zone, disk_transfer_url
    host.last_heartbeat = utcnow()
    session.flush()
    if session.exec(select(ComputeService).where(ComputeService.host == name)).first() is None:
        session.add(ComputeService(host=name))  # its os-services id (see ComputeService)
        session.flush()
    return host


def disk_transfer_url(session: Session, name: str) -> str | None:
    """Where the host's compute worker serves disks, as it last registered."""
    host = session.get(Host, name)
    return host.disk_transfer_url if host is not None else None


def heartbeat_fresh(host: Host, now: datetime, down_after: timedelta) -> bool:
    """A host is up while its compute worker heartbeats (Nova's servicegroup), unless an
    operator forced it down (os-services): then it is down at once, heartbeat or not."""
    if host.forced_down:
        return False
    return host.last_heartbeat is not None and now - host.last_heartbeat <= down_after


def is_up(session: Session, name: str, now: datetime, down_after: timedelta) -> bool:
    host = session.get(Host, name)
    return host is not None and heartbeat_fresh(host, now, down_after)


def unwanted_on_host(session: Session, host: str, server_ids: list[str]) -> list[str]:
    """Which of these servers, found on `host`, are not wanted there (safe to reap): the
    database knows them, and they hold no active claim on this host (deleted, or built or
    moved elsewhere while this host was down). A claim is taken before anything is put on a
    host and released only after it was removed, so a wanted domain always has one. Servers
    the database does not know are not returned: an orphan is reported, never destroyed."""
    if not server_ids:
        return []
    claimed = (
        select(Claim.server_id)
        .where(Claim.host == host)
        .where(Claim.state == "active")
        .where(col(Claim.server_id).in_(server_ids))
    )
    rows = session.exec(
        select(Server.id)
        .where(col(Server.id).in_(server_ids))
        .where(col(Server.id).not_in(claimed))
    )
    return sorted(rows)


def images_in_use(session: Session, host: str) -> set[str]:
    """The images of the servers that hold a claim on `host`, and the kernels and ramdisks
    those images boot with (their kernel_id/ramdisk_id): its cache keeps them."""
    used = set(
        session.exec(
            select(Server.image_id)
            .join(Claim, col(Claim.server_id) == col(Server.id))
            .where(Claim.host == host)
            .where(Claim.state == "active")
        )
    )
    boot_images = (
        image.properties.get(prop)
        for image in session.exec(select(Image).where(col(Image.id).in_(used)))
        for prop in (KERNEL_ID, RAMDISK_ID)
    )
    return used | {image_id for image_id in boot_images if image_id}


def unknown_among(session: Session, server_ids: list[str]) -> list[str]:
    """Which of these ids the database has never heard of (orphans: reported, not touched)."""
    if not server_ids:
        return []
    known = set(session.exec(select(Server.id).where(col(Server.id).in_(server_ids))))
    return sorted(set(server_ids) - known)


def heartbeat(session: Session, name: str) -> None:
    host = session.get(Host, name)
    if host is not None:
        host.last_heartbeat = utcnow()
        session.flush()


def all_hosts(session: Session) -> list[Host]:
    return list(session.exec(select(Host).order_by(Host.name)))


def numbered_hosts(session: Session) -> list[tuple[Host, int]]:
    """Every host with the integer id of its ComputeService row (0 if it has none yet), in
    that id's order (Nova lists hypervisors by id)."""
    rows = session.exec(
        select(Host, ComputeService.id)
        .outerjoin(ComputeService, col(ComputeService.host) == col(Host.name))
        .order_by(col(ComputeService.id), col(Host.name))
    )
    return [(host, number or 0) for host, number in rows]


def servers_on(session: Session, host: str) -> list[Server]:
    """The servers (not deleted) a host holds, oldest first."""
    return list(
        session.exec(
            select(Server)
            .where(Server.host == host, col(Server.deleted).is_(False))
            .order_by(col(Server.created_at))
        )
    )


def find_host(session: Session, id_or_name: str) -> Host:
    """A host by its id or its name (os-hypervisors takes either), else NotFound."""
    host = session.exec(
        select(Host).where((Host.id == id_or_name) | (Host.name == id_or_name))
    ).first()
    if host is None:
        raise NotFound(f"Hypervisor {id_or_name} could not be found.")
    return host


def zones(
    session: Session, now: datetime, down_after: timedelta
) -> dict[str, list[tuple[Host, bool]]]:
    """Each availability zone's hosts, each with whether it is available (up and enabled)."""
    found: dict[str, list[tuple[Host, bool]]] = {}
    for host in all_hosts(session):
        up = heartbeat_fresh(host, now, down_after) and host.enabled
        found.setdefault(host.availability_zone, []).append((host, up))
    return found
