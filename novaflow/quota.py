"""Per-project quotas: limits, usage counters, and reservations that are reserved, committed
or released exactly once.

The check and the increment are one conditional UPDATE (`SET cores = cores + 2 WHERE
cores + 2 <= limit ...`), so racing requests can never push usage past a limit, on SQLite and on
PostgreSQL alike. Each reservation is a row keyed by the server id, which makes reserve,
commit and release idempotent: a retried activity finds its own row and changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import update
from sqlmodel import Session, col, select

from novaflow.errors import Invalid, OverQuota
from novaflow.models import (
    ProjectUsage,
    QuotaLimit,
    Reservation,
    Server,
    ServerGroup,
    ServerGroupMember,
)
from novaflow.sqlutil import insert_ignore

RESOURCES = ("instances", "cores", "ram", "ports", "floating_ips")  # counted in ProjectUsage
# Limits on server groups (Nova's server_groups, server_group_members): counted from the
# groups themselves, under a lock (novaflow.server_groups).
GROUP_RESOURCES = ("server_groups", "server_group_members")
LIMITED = RESOURCES + GROUP_RESOURCES
DEFAULT_LIMITS: dict[str, int] = {
    "instances": 10,
    "cores": 20,
    "ram": 51200,
    "ports": 50,
    "floating_ips": 10,
    "server_groups": 10,
    "server_group_members": 10,
}
UNLIMITED = -1
# The largest limit a limit column holds on every database (a 32-bit INTEGER on PostgreSQL);
# Nova's quota API has the same maximum.
MAX_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class QuotaDeltas:
    """What one server needs from its project's quota."""

    instances: int = 1
    cores: int = 0
    ram: int = 0
    ports: int = 0
    floating_ips: int = 0

    def times(self, count: int) -> dict[str, int]:
        return {name: value * count for name, value in asdict(self).items()}


def get_limits(session: Session, project_id: str) -> dict[str, int]:
    limits = dict(DEFAULT_LIMITS)
    rows = session.exec(select(QuotaLimit).where(QuotaLimit.project_id == project_id))
    limits.update({row.resource: row.hard_limit for row in rows})
    return limits


def set_limits(
    session: Session, project_id: str, updates: dict[str, int], force: bool = False
) -> dict[str, int]:
    """Set hard limits. As Nova, a limit below what is already used is refused unless forced
    (forcing it only stops new reservations; nothing running is taken away)."""
    used = get_usage(session, project_id) | group_usage(session, project_id)
    for resource, limit in updates.items():
        if resource not in LIMITED:
            raise Invalid(f"Invalid input for field/attribute quota_set. '{resource}' is unknown")
        if limit < UNLIMITED:
            raise Invalid(
                f"Invalid input for field/attribute {resource}. "
                f"Value: {limit}. {limit} is less than the minimum of -1"
            )
        if limit > MAX_LIMIT:
            raise Invalid(
                f"Invalid input for field/attribute {resource}. "
                f"Value: {limit}. {limit} is greater than the maximum of {MAX_LIMIT}"
            )
        if not force and limit != UNLIMITED and limit < used[resource]:
            raise Invalid(
                f"Quota limit {limit} for {resource} must be greater than or equal to already "
                f"used and reserved {used[resource]}."
            )
        row = session.get(QuotaLimit, (project_id, resource))
        if row is None:
            session.add(QuotaLimit(project_id=project_id, resource=resource, hard_limit=limit))
        else:
            row.hard_limit = limit
    session.flush()
    return get_limits(session, project_id)


def lock_project(session: Session, project_id: str) -> None:
    """Lock the project's usage row until the transaction ends: counts made under it (server
    groups) hold against a racing request, on PostgreSQL as on SQLite."""
    insert_ignore(session, ProjectUsage, {"project_id": project_id})
    session.get(ProjectUsage, project_id, with_for_update=True)


def group_usage(session: Session, project_id: str) -> dict[str, int]:
    """The project's server groups, and the most members any of them has."""
    groups = list(session.exec(select(ServerGroup.id).where(ServerGroup.project_id == project_id)))
    sizes = [
        len(live_group_members(session, group_id)) for group_id in groups
    ]  # (a handful of groups per project)
    return {"server_groups": len(groups), "server_group_members": max(sizes, default=0)}


def live_group_members(session: Session, group_id: str) -> list[str]:
    """The group's members that are not deleted (a deleted server leaves its group)."""
    return list(
        session.exec(
            select(ServerGroupMember.server_id)
            .join(Server, col(Server.id) == col(ServerGroupMember.server_id))
            .where(ServerGroupMember.group_id == group_id)
            .where(col(Server.deleted).is_(False))
        )
    )


def check_group_room(session: Session, group_id: str, server_ids: list[str]) -> None:
    """Will these servers fit in the group (its server_group_members limit)? The group's row
    is locked first, so two creates into one group cannot both take its last place. Servers
    already members (a retried reservation) take no new place."""
    group = session.get(ServerGroup, group_id, with_for_update=True)
    if group is None:
        return  # gone: the create's own checks say so
    members = set(live_group_members(session, group_id))
    joining = [sid for sid in server_ids if sid not in members]
    limit = get_limits(session, group.project_id)["server_group_members"]
    if joining and limit != UNLIMITED and len(members) + len(joining) > limit:
        raise OverQuota("Quota exceeded, too many servers in group")


def check_new_group(session: Session, project_id: str) -> None:
    """May the project create one more server group (its server_groups limit)?"""
    lock_project(session, project_id)
    limit = get_limits(session, project_id)["server_groups"]
    used = group_usage(session, project_id)["server_groups"]
    if limit != UNLIMITED and used + 1 > limit:
        raise OverQuota("Quota exceeded, too many server groups.")


def get_usage(session: Session, project_id: str) -> dict[str, int]:
    row = session.get(ProjectUsage, project_id)
    return {name: getattr(row, name) if row else 0 for name in RESOURCES}


def reserve(
    session: Session,
    project_id: str,
    reservation_ids: list[str],
    deltas: QuotaDeltas,
    min_count: int | None = None,
) -> list[str]:
    """Reserve quota for as many of `reservation_ids` as fit, never fewer than `min_count`
    (default: all). Returns the ids reserved, in order. Raises OverQuota naming the resource.
    A repeated call with the same ids returns what the first call reserved."""
    existing = session.exec(select(Reservation).where(col(Reservation.id).in_(reservation_ids)))
    already = {row.id for row in existing}
    if already:
        return [rid for rid in reservation_ids if rid in already]

    wanted = len(reservation_ids)
    floor = wanted if min_count is None else min_count
    limits = get_limits(session, project_id)
    insert_ignore(session, ProjectUsage, {"project_id": project_id})
    for count in range(wanted, floor - 1, -1):
        if _try_increment(session, project_id, deltas.times(count), limits):
            for rid in reservation_ids[:count]:
                session.add(Reservation(id=rid, project_id=project_id, **deltas.times(1)))
            session.flush()
            return reservation_ids[:count]
    raise OverQuota(_over_quota_message(session, project_id, deltas.times(floor), limits))


def commit(session: Session, reservation_id: str) -> None:
    """reserved -> committed, never over a concurrent release (one conditional UPDATE)."""
    session.execute(
        update(Reservation)
        .where(col(Reservation.id) == reservation_id)
        .where(col(Reservation.state) == "reserved")
        .values(state="committed")
    )


def release(session: Session, reservation_id: str) -> bool:
    """Give back what the reservation holds. True if this call released it."""
    row = session.get(Reservation, reservation_id, with_for_update=True)
    if row is None or row.state == "released":
        return False
    amounts = {name: -getattr(row, name) for name in RESOURCES}
    session.execute(
        update(ProjectUsage)
        .where(col(ProjectUsage.project_id) == row.project_id)
        .values(
            {
                getattr(ProjectUsage, name): getattr(ProjectUsage, name) + delta
                for name, delta in amounts.items()
            }
        )
    )
    row.state = "released"
    session.flush()
    return True


def cancel(session: Session, reservation_id: str) -> None:
    """Give back what the reservation holds and remove it, as if it never was (a request
    that expired; see servers.forget_unrecorded)."""
    release(session, reservation_id)
    row = session.get(Reservation, reservation_id)
    if row is not None:
        session.delete(row)
        session.flush()


def settle_resize(
    session: Session, server_id: str, growth_id: str | None, cores: int, ram: int
) -> None:
    """A confirmed resize: the server's own reservation now holds the new flavor's cores and
    RAM. What its growth reserved is folded into it (not released twice), and a smaller
    flavor gives the difference back. Idempotent: a second call finds nothing to change."""
    own = session.get(Reservation, server_id, with_for_update=True)
    growth = session.get(Reservation, growth_id, with_for_update=True) if growth_id else None
    if own is None or own.state == "released":
        if growth_id is not None:  # nothing to fold it into: give it back
            release(session, growth_id)
        return
    held = {"cores": own.cores, "ram": own.ram}
    if growth is not None and growth.state != "released":
        held["cores"] += growth.cores
        held["ram"] += growth.ram
        growth.state = "released"
    change = {"cores": cores - held["cores"], "ram": ram - held["ram"]}
    if any(change.values()):
        session.execute(
            update(ProjectUsage)
            .where(col(ProjectUsage.project_id) == own.project_id)
            .values(
                {getattr(ProjectUsage, name): getattr(ProjectUsage, name) + delta
                 for name, delta in change.items()}
            )
        )  # fmt: skip
    own.cores, own.ram = cores, ram
    session.flush()


def release_all(session: Session, server_id: str) -> int:
    """Release the server's reservation and any left by a move of it (a delete's clean-up)."""
    ids = session.exec(
        select(Reservation.id)
        .where((col(Reservation.id) == server_id) | col(Reservation.id).startswith(f"{server_id}/"))
        .where(col(Reservation.state) != "released")
    ).all()
    return sum(release(session, rid) for rid in ids)


def _try_increment(
    session: Session, project_id: str, amounts: dict[str, int], limits: dict[str, int]
) -> bool:
    conditions = [col(ProjectUsage.project_id) == project_id]
    for name, amount in amounts.items():
        limit = limits.get(name, UNLIMITED)
        if amount > 0 and limit != UNLIMITED:
            conditions.append(getattr(ProjectUsage, name) + amount <= limit)
    result = session.execute(
        update(ProjectUsage)
        .where(*conditions)
        .values(
            {
                getattr(ProjectUsage, name): getattr(ProjectUsage, name) + amount
                for name, amount in amounts.items()
            }
        )
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def _over_quota_message(
    session: Session, project_id: str, amounts: dict[str, int], limits: dict[str, int]
) -> str:
    used = get_usage(session, project_id)
    overs = [
        name
        for name, amount in amounts.items()
        if amount > 0 and limits[name] != UNLIMITED and used[name] + amount > limits[name]
    ]
    if not overs:  # usage changed between the attempt and this read: name everything asked
        overs = [name for name, amount in amounts.items() if amount > 0]
    names = ", ".join(overs)
    requested = ", ".join(str(amounts[name]) for name in overs)
    already = ", ".join(str(used[name]) for name in overs)
    allowed = ", ".join(str(limits[name]) for name in overs)
    return (
        f"Quota exceeded for {names}: Requested {requested}, "
        f"but already used {already} of {allowed} {names}"
    )
