"""Compute services (Nova's os-services): one `nova-compute` per hypervisor host.

A service's state is its Host row's: `enabled` (the scheduler's ComputeFilter skips a disabled
host), `disabled_reason`, `forced_down` (down at once, heartbeat or not: hosts.heartbeat_fresh)
and up/down from the heartbeat its compute worker writes. Its ids are the Host's uuid (2.53 and
later) and the integer of its ComputeService row (before).

novaflow's control plane (the control worker, Temporal) writes no row and no heartbeat, so no
`nova-conductor` or `nova-scheduler` is listed: a service whose state nothing reports would be
made up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from novaflow.errors import Conflict, Invalid, NotFound
from novaflow.hosts import heartbeat_fresh
from novaflow.models import Claim, ComputeService, Host, Migration, Server

COMPUTE = "nova-compute"

# A migration in one of these states is over; any other still needs its hosts (Nova's
# MigrationList.get_in_progress_by_host_and_node leaves out the same ones).
MIGRATION_DONE = frozenset({"confirmed", "reverted", "error", "failed", "completed", "cancelled"})


@dataclass(frozen=True)
class Service:
    """A host's nova-compute as os-services shows it."""

    number: int  # its id before 2.53
    host: Host
    up: bool

    @property
    def binary(self) -> str:
        return COMPUTE


def _service(number: int, host: Host, now: datetime, down_after: timedelta) -> Service:
    return Service(number=number, host=host, up=heartbeat_fresh(host, now, down_after))


def list_services(
    session: Session,
    now: datetime,
    down_after: timedelta,
    host: str | None = None,
    binary: str | None = None,
) -> list[Service]:
    """Every compute service, oldest first (Nova lists by id), filtered as os-services'
    `host` and `binary` query parameters ask (an empty value filters nothing, as Nova)."""
    if binary and binary != COMPUTE:
        return []
    statement = (
        select(ComputeService.id, Host)
        .join(Host, col(Host.name) == col(ComputeService.host))
        .order_by(col(ComputeService.id))
    )
    if host:
        statement = statement.where(Host.name == host)
    return [_service(number or 0, row, now, down_after) for number, row in session.exec(statement)]


def _number_of(session: Session, host: Host) -> int:
    number = session.exec(select(ComputeService.id).where(ComputeService.host == host.name)).first()
    return number or 0


def by_host(
    session: Session, host: str, binary: str, now: datetime, down_after: timedelta
) -> Service:
    """The service an update before 2.53 names by host and binary; only nova-compute is
    updatable (Nova's 400), an unknown host is a 404."""
    if binary != COMPUTE:
        raise Invalid(
            f"Updating a {binary} service is not supported. Only nova-compute services "
            "can be updated."
        )
    found = session.get(Host, host)
    if found is None:
        raise NotFound(f"Host '{host}' is not mapped to any cell")
    return _service(_number_of(session, found), found, now, down_after)


def by_number(session: Session, number: int, now: datetime, down_after: timedelta) -> Service:
    """The service with this integer id (before 2.53), else NotFound."""
    row = session.get(ComputeService, number)
    host = session.get(Host, row.host) if row is not None else None
    if host is None:
        raise NotFound(f"Service {number} not found.")
    return _service(number, host, now, down_after)


def by_uuid(session: Session, uuid: str, now: datetime, down_after: timedelta) -> Service:
    """The service with this uuid (2.53 and later: the host's), else NotFound."""
    host = session.exec(select(Host).where(Host.id == uuid)).first()
    if host is None:
        raise NotFound(f"Service {uuid} could not be found.")
    return _service(_number_of(session, host), host, now, down_after)


@dataclass(frozen=True)
class Change:
    """What an operator changes on a service; None leaves it as it is."""

    enabled: bool | None = None
    disabled_reason: str | None = None  # with enabled=False (enabling forgets the reason)
    forced_down: bool | None = None


def update(session: Session, host: Host, change: Change) -> None:
    """Apply `change`: a disabled host gets no new server from the scheduler (the ones it has
    keep running); a forced-down one is down at once, for the scheduler and os-services alike,
    without waiting for its heartbeat to time out."""
    if change.enabled is not None:
        host.enabled = change.enabled
        host.disabled_reason = None if change.enabled else change.disabled_reason
    if change.forced_down is not None:
        host.forced_down = change.forced_down
    session.add(host)
    session.flush()


def delete(session: Session, host: Host) -> None:
    """Forget a compute service and its host, as Nova's DELETE /os-services/{id}: refused
    (409) while the host holds a server or a move through it is unfinished, since their
    resources would then be accounted nowhere. Its compute worker, if it still runs, records
    it again when it next starts (as a nova-compute does)."""
    holds_servers = (
        session.exec(
            select(Server.id)
            .where(Server.host == host.name)
            .where(col(Server.deleted).is_(False))
            .limit(1)
        ).first()
        or session.exec(
            select(Claim.id).where(Claim.host == host.name).where(Claim.state == "active").limit(1)
        ).first()
    )
    if holds_servers:
        raise Conflict(
            "Unable to delete compute service that is hosting instances. Migrate or delete "
            "the instances first."
        )
    moving = session.exec(
        select(Migration.id)
        .where((Migration.source_compute == host.name) | (Migration.dest_compute == host.name))
        .where(col(Migration.status).not_in(MIGRATION_DONE))
        .limit(1)
    ).first()
    if moving is not None:
        raise Conflict(
            "Unable to delete compute service that has in-progress migrations. Complete the "
            "migrations or delete the instances first."
        )
    # Released claims are history only, but they name the host (a foreign key).
    for claim in session.exec(select(Claim).where(Claim.host == host.name)):
        session.delete(claim)
    for service in session.exec(select(ComputeService).where(ComputeService.host == host.name)):
        session.delete(service)
    session.flush()
    session.delete(host)
    session.flush()
