"""What each project's servers used over a period (Nova's os-simple-tenant-usage).

A server is charged from the moment it first became ACTIVE (`launched_at`) until it was
deleted (`terminated_at`) or the period ended, whichever comes first; deleted servers count for
the time they existed. A server that never became ACTIVE used nothing and is not listed, as in
Nova (whose query compares launched_at, which such a server has not).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from novaflow.errors import Invalid
from novaflow.models import Flavor, Server


@dataclass(frozen=True)
class ServerUsage:
    server: Server
    flavor_name: str  # "" when the flavor is gone (Nova's answer then)
    hours: float


@dataclass
class ProjectUsage:
    """One project's totals over the period, and the servers they come from."""

    project_id: str
    servers: list[ServerUsage]

    @property
    def total_hours(self) -> float:
        return sum(u.hours for u in self.servers)

    @property
    def total_vcpus_usage(self) -> float:
        return sum(u.server.vcpus * u.hours for u in self.servers)

    @property
    def total_memory_mb_usage(self) -> float:
        return sum(u.server.memory_mb * u.hours for u in self.servers)

    @property
    def total_local_gb_usage(self) -> float:
        return sum(u.server.disk_gb * u.hours for u in self.servers)


def hours_in(
    launched: datetime | None, terminated: datetime | None, start: datetime, stop: datetime
) -> float:
    """Hours of [launched, terminated) that fall within [start, stop) (never negative: Nova's
    own count goes below zero for a period that starts in the future)."""
    if launched is None or launched >= stop or (terminated is not None and terminated <= start):
        return 0.0
    end = min(stop, terminated) if terminated is not None else stop
    return max(0.0, (end - max(launched, start)).total_seconds() / 3600.0)


def usage_by_project(
    session: Session,
    start: datetime,
    stop: datetime,
    project_id: str | None = None,
    limit: int | None = None,
    marker: str | None = None,
) -> list[ProjectUsage]:
    """The projects that ran servers in [start, stop) (only `project_id`'s if given), each
    with its servers in the order they were created. A page (Nova's 2.40) is over servers, not
    projects: at most `limit` servers, those created after the server `marker` (one this
    listing holds: of the project asked for, run in the period; else Invalid, so that another
    project's server answers like an unknown one)."""
    statement = (
        select(Server)
        .where(col(Server.launched_at).is_not(None))
        .where(col(Server.launched_at) < stop)
        .where(col(Server.terminated_at).is_(None) | (col(Server.terminated_at) > start))
        .order_by(col(Server.created_at), col(Server.id))
    )
    if project_id is not None:
        statement = statement.where(Server.project_id == project_id)
    if marker is not None:
        after = session.exec(statement.where(Server.id == marker)).first()
        if after is None:
            raise Invalid(f"Marker {marker} could not be found.")
        statement = statement.where(
            (col(Server.created_at) > after.created_at)
            | ((col(Server.created_at) == after.created_at) & (col(Server.id) > after.id))
        )
    if limit is not None:
        statement = statement.limit(limit)
    rows = list(session.exec(statement))
    flavor_ids = {server.flavor_id for server in rows}
    names = {
        flavor.id: flavor.name
        for flavor in session.exec(select(Flavor).where(col(Flavor.id).in_(flavor_ids)))
    }
    found: dict[str, ProjectUsage] = {}
    for server in rows:
        hours = hours_in(server.launched_at, server.terminated_at, start, stop)
        used = ServerUsage(server, names.get(server.flavor_id, ""), hours)
        found.setdefault(server.project_id, ProjectUsage(server.project_id, [])).servers.append(
            used
        )
    return list(found.values())
