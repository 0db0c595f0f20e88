"""Host records as compute workers report them: capacity from libvirt, liveness by heartbeat."""

from __future__ import annotations

from sqlmodel import Session

from novaflow.models import Host, utcnow


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
) -> Host:
    """Create or refresh the host's row. Usage counters are the claims': never reset here."""
    host = session.get(Host, name)
    if host is None:
        host = Host(name=name)
        session.add(host)
    host.vcpus, host.memory_mb, host.disk_gb = vcpus, memory_mb, disk_gb
    host.arch, host.libvirt_uri, host.hypervisor_type = arch, libvirt_uri, hypervisor_type
    host.availability_zone = availability_zone
    host.last_heartbeat = utcnow()
    session.flush()
    return host


def heartbeat(session: Session, name: str) -> None:
    host = session.get(Host, name)
    if host is not None:
        host.last_heartbeat = utcnow()
        session.flush()
