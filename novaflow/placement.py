"""Claims of host capacity, atomic in the database.

A claim is one conditional UPDATE of the host's usage counters (`vcpus_used + n <= vcpus *
ratio ...`) plus a Claim row keyed by an id the caller derives from the operation, so a
retried claim finds its row instead of claiming twice. Concurrent claims can therefore never
over-commit a host beyond its allocation ratios.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from novaflow.hosts import heartbeat_fresh
from novaflow.models import Claim, Host, ServerGroup, ServerGroupMember
from novaflow.resources import Resources
from novaflow.scheduler import HostState


def host_states(session: Session, now: datetime, down_after: timedelta) -> list[HostState]:
    return [
        HostState(
            name=h.name,
            availability_zone=h.availability_zone,
            enabled=h.enabled,
            up=heartbeat_fresh(h, now, down_after),
            arch=h.arch,
            vcpus=h.vcpus,
            vcpus_used=h.vcpus_used,
            cpu_allocation_ratio=h.cpu_allocation_ratio,
            memory_mb=h.memory_mb,
            memory_mb_used=h.memory_mb_used,
            ram_allocation_ratio=h.ram_allocation_ratio,
            disk_gb=h.disk_gb,
            disk_gb_used=h.disk_gb_used,
            disk_allocation_ratio=h.disk_allocation_ratio,
            instance_count=h.running_vms,
        )
        for h in session.exec(select(Host))
    ]


def group_hosts(session: Session, group_id: str, except_server: str) -> frozenset[str]:
    """Hosts holding an active claim of another member of the server group."""
    rows = session.exec(
        select(Claim.host)
        .join(ServerGroupMember, col(ServerGroupMember.server_id) == col(Claim.server_id))
        .where(ServerGroupMember.group_id == group_id)
        .where(Claim.state == "active")
        .where(Claim.server_id != except_server)
    )
    return frozenset(rows)


def claim(
    session: Session,
    claim_id: str,
    server_id: str,
    host: str,
    amount: Resources,
    group_id: str | None = None,
) -> bool:
    """Claim `amount` on `host`. True if held (now or by an earlier call with this id)."""
    vcpus, memory_mb, disk_gb = amount.vcpus, amount.memory_mb, amount.disk_gb
    existing = session.get(Claim, claim_id)
    if existing is not None:
        return existing.state == "active" and existing.host == host
    if group_id is not None and not _group_policy_allows(session, group_id, server_id, host):
        return False
    result = session.execute(
        update(Host)
        .where(col(Host.name) == host)
        .where(col(Host.vcpus_used) + vcpus <= col(Host.vcpus) * col(Host.cpu_allocation_ratio))
        .where(
            col(Host.memory_mb_used) + memory_mb
            <= col(Host.memory_mb) * col(Host.ram_allocation_ratio)
        )
        .where(
            col(Host.disk_gb_used) + disk_gb <= col(Host.disk_gb) * col(Host.disk_allocation_ratio)
        )
        .values(
            vcpus_used=col(Host.vcpus_used) + vcpus,
            memory_mb_used=col(Host.memory_mb_used) + memory_mb,
            disk_gb_used=col(Host.disk_gb_used) + disk_gb,
            running_vms=col(Host.running_vms) + 1,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.add(
        Claim(
            id=claim_id,
            server_id=server_id,
            host=host,
            vcpus=vcpus,
            memory_mb=memory_mb,
            disk_gb=disk_gb,
        )
    )
    session.flush()
    return True


def release(session: Session, claim_id: str) -> bool:
    """Return a claim's resources to its host. Idempotent; True if this call released it."""
    row = session.get(Claim, claim_id, with_for_update=True)
    if row is None or row.state != "active":
        return False
    session.execute(
        update(Host)
        .where(col(Host.name) == row.host)
        .values(
            vcpus_used=col(Host.vcpus_used) - row.vcpus,
            memory_mb_used=col(Host.memory_mb_used) - row.memory_mb,
            disk_gb_used=col(Host.disk_gb_used) - row.disk_gb,
            running_vms=col(Host.running_vms) - 1,
        )
    )
    row.state = "released"
    session.flush()
    return True


def release_all(session: Session, server_id: str) -> int:
    ids = session.exec(
        select(Claim.id).where(Claim.server_id == server_id).where(Claim.state == "active")
    ).all()
    return sum(release(session, claim_id) for claim_id in ids)


def _group_policy_allows(session: Session, group_id: str, server_id: str, host: str) -> bool:
    """The late check of hard (anti-)affinity, inside the claim's transaction.

    The scheduler's filters already chose a host that fits the policy; this repeats the check
    under a lock on the group row so that two members scheduled at the same moment cannot
    both pass on stale data."""
    group = session.get(ServerGroup, group_id, with_for_update=True)
    if group is None or group.policy not in {"affinity", "anti-affinity"}:
        return True
    others = group_hosts(session, group_id, except_server=server_id)
    if group.policy == "anti-affinity":
        return host not in others
    return not others or others == {host}
