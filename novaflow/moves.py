"""Moves of a server between hosts: resize and cold migration (Nova's migration records).

A move is one Migration row from the gate that accepts it to its end:

    pre-migrating   the gate: flavor checked, quota for the growth reserved, the record made
    migrating       a destination claimed (its own claim: the source keeps its claim)
    post-migrating  the disk is on the destination
    finished        defined (and started) there: the server is VERIFY_RESIZE
    confirming -> confirmed   the source cleaned, its claim and the old flavor's quota released
    reverting  -> reverted    the destination cleaned, the guest back on the source as it was
    error           it failed before VERIFY_RESIZE and was rolled back

Each function here is one transaction's worth of rules, called by an activity; each is
idempotent (a retried step finds the state it left).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from novaflow import placement, quota, servers
from novaflow.errors import Conflict, Invalid, NotFound
from novaflow.models import Claim, Flavor, Host, Image, Migration, Server, utcnow
from novaflow.resources import Resources
from novaflow.sqlutil import aware
from novaflow.states import PowerState, TaskState, VmState

MIGRATION_TYPES = {"resize": "resize", "migrate": "migration"}
# A move in one of these has a workflow that still owns it (a delete cancels that first).
UNDER_WAY = ("pre-migrating", "migrating", "post-migrating", "finished", "confirming", "reverting")


def dest_claim_id(server_id: str, action: str, request_id: str) -> str:
    """The destination's claim: one per operation, apart from the source's, so both hosts
    hold one while the server is moving."""
    return f"{server_id}/{action}/{request_id}"


def growth_reservation_id(server_id: str, request_id: str) -> str:
    return f"{server_id}/resize/{request_id}"


# ------------------------------------------------------------ the gate


def record(
    session: Session,
    server: Server,
    action: str,
    options: dict[str, str],
    *,
    user_id: str,
    request_id: str,
    workflow_id: str,
) -> Migration:
    """The gate's part of a resize or a cold migration, in its transaction: the new flavor
    checked (400 naming flavorRef), the quota for what grows reserved (403), the record made.
    A cold migration keeps the flavor; its `host`, if named, must be another known host."""
    existing = session.exec(
        select(Migration)
        .where(Migration.server_id == server.id)
        .where(Migration.request_id == request_id)
    ).first()
    if existing is not None:
        return existing
    old = Resources(server.vcpus, server.memory_mb, server.disk_gb)
    new_flavor_id, new, reservation_id = server.flavor_id, old, None
    requested_host = options.get("host")
    if action == "resize":
        flavor = _new_flavor(session, server, options.get("flavor_id", ""))
        new_flavor_id, new = flavor.id, flavor.resources
        growth = quota.QuotaDeltas(
            instances=0,
            cores=max(0, new.vcpus - old.vcpus),
            ram=max(0, new.memory_mb - old.memory_mb),
        )
        if growth.cores or growth.ram:
            reservation_id = growth_reservation_id(server.id, request_id)
            quota.reserve(session, server.project_id, [reservation_id], growth)
    elif requested_host is not None:
        _check_requested_host(session, server, requested_host)
    migration = Migration(
        server_id=server.id,
        project_id=server.project_id,
        user_id=user_id,
        request_id=request_id,
        workflow_id=workflow_id,
        migration_type=MIGRATION_TYPES[action],
        source_compute=server.host or "",
        requested_host=requested_host,
        old_flavor_id=server.flavor_id,
        new_flavor_id=new_flavor_id,
        old_vcpus=old.vcpus,
        old_memory_mb=old.memory_mb,
        old_disk_gb=old.disk_gb,
        new_vcpus=new.vcpus,
        new_memory_mb=new.memory_mb,
        new_disk_gb=new.disk_gb,
        source_claim_id=_claim_on(session, server.id, server.host),
        dest_claim_id=dest_claim_id(server.id, action, request_id),
        quota_reservation_id=reservation_id,
        was_running=server.vm_state == VmState.ACTIVE,
    )
    session.add(migration)
    session.flush()
    return migration


def _new_flavor(session: Session, server: Server, flavor_id: str) -> Flavor:
    flavor = session.get(Flavor, flavor_id) if flavor_id else None
    if flavor is None:
        raise Invalid(
            f"Invalid input for field/attribute resize.flavorRef. Flavor {flavor_id} could "
            "not be found."
        )
    if flavor.id == server.flavor_id:
        raise Invalid(
            "Invalid input for field/attribute resize.flavorRef. When resizing, instances "
            "must change flavor!"
        )
    if flavor.disk < server.disk_gb:
        raise Invalid(
            f"Invalid input for field/attribute resize.flavorRef. Resizing to a smaller disk "
            f"(flavor {flavor.id}: {flavor.disk} GiB, server: {server.disk_gb} GiB) is not "
            "allowed."
        )
    return flavor


def _check_requested_host(session: Session, server: Server, host: str) -> None:
    if session.get(Host, host) is None:
        raise Invalid(
            f"Invalid input for field/attribute migrate.host. Compute host {host} could not "
            "be found."
        )
    if host == server.host:
        raise Invalid(
            "Invalid input for field/attribute migrate.host. The target host can't be the same one."
        )


def _claim_on(session: Session, server_id: str, host: str | None) -> str | None:
    if host is None:
        return None
    return session.exec(
        select(Claim.id)
        .where(Claim.server_id == server_id)
        .where(Claim.host == host)
        .where(Claim.state == "active")
        .order_by(col(Claim.created_at).desc())
    ).first()


def for_request(session: Session, server_id: str, request_id: str) -> Migration:
    found = session.exec(
        select(Migration)
        .where(Migration.server_id == server_id)
        .where(Migration.request_id == request_id)
    ).first()
    if found is None:
        raise NotFound(f"Migration for request {request_id} of server {server_id} not found.")
    return found


def under_way(session: Session, server_id: str) -> Migration | None:
    """The server's move that a workflow still owns (at most one: the gate allows one)."""
    return session.exec(
        select(Migration)
        .where(Migration.server_id == server_id)
        .where(col(Migration.status).in_(UNDER_WAY))
        .order_by(col(Migration.created_at).desc())
    ).first()


def awaiting_decision(session: Session, server: Server, action: str) -> Migration:
    """The move a confirmResize or revertResize is about: 409 if none waits for one."""
    move = under_way(session, server.id)
    if move is None or move.status != "finished":
        raise Conflict(
            f"Cannot '{action}' instance {server.id}: no resize or migration of it waits "
            "for a confirm or a revert."
        )
    return move


# ------------------------------------------------------------ the steps


@dataclass(frozen=True)
class Plan:
    """What the workflow needs to move the server, read once after the gate."""

    migration: Migration
    server: Server
    old_flavor_name: str
    new_flavor_name: str
    image_properties: dict[str, str]
    group_policy_id: str | None


def plan(session: Session, server_id: str, request_id: str) -> Plan:
    migration = for_request(session, server_id, request_id)
    server = servers.get_server(session, server_id)
    old_flavor = session.get(Flavor, migration.old_flavor_id)
    new_flavor = session.get(Flavor, migration.new_flavor_id)
    image = session.get(Image, server.image_id)
    return Plan(
        migration=migration,
        server=server,
        old_flavor_name=old_flavor.name if old_flavor else migration.old_flavor_id,
        new_flavor_name=new_flavor.name if new_flavor else migration.new_flavor_id,
        image_properties=dict(image.properties) if image else {},
        group_policy_id=server.server_group_id,
    )


def advance(
    session: Session,
    migration_id: int,
    status: str,
    task_state: TaskState,
    dest: str | None = None,
) -> None:
    """The move went one step further: its status, the server's task, the destination."""
    migration = _locked(session, migration_id)
    if migration.status not in UNDER_WAY:
        return  # a retry after the move ended
    _not_being_deleted(session, migration.server_id)
    migration.status = status
    if dest is not None:
        migration.dest_compute = dest
    migration.updated_at = utcnow()
    server = session.get(Server, migration.server_id, with_for_update=True)
    if server is not None and not server.deleted and server.task_state is not None:
        server.task_state = task_state
        server.updated_at = migration.updated_at
    session.flush()


def finish(session: Session, migration_id: int, power_state: int) -> None:
    """Defined (and started) on the destination: the server runs there with the new flavor,
    VERIFY_RESIZE, both claims held until a confirm or a revert."""
    migration = _locked(session, migration_id)
    if migration.status != "post-migrating":
        return
    _not_being_deleted(session, migration.server_id)
    server = servers.get_server(session, migration.server_id)
    _wear(server, migration.new_flavor_id, migration.new_resources)
    server.host = migration.dest_compute
    server.vm_state, server.task_state = VmState.RESIZED, None
    server.power_state = power_state
    server.updated_at = migration.updated_at = utcnow()
    migration.status = "finished"
    servers.finish_action(session, server.id, migration.request_id, error=False)
    session.flush()


def confirm(session: Session, migration_id: int, request_id: str) -> None:
    """The source was cleaned: release its claim and the old flavor's quota. Also run when a
    delete came during VERIFY_RESIZE (Nova confirms first): the server keeps its task."""
    migration = _locked(session, migration_id)
    # "reverting": a delete came just as a revert was accepted; the delete wins, and cleans
    # the destination itself.
    if migration.status not in ("finished", "confirming", "reverting"):
        return
    overtaken = migration.status == "reverting"
    if migration.source_claim_id is not None:
        placement.release(session, migration.source_claim_id)
    new = migration.new_resources
    quota.settle_resize(
        session, migration.server_id, migration.quota_reservation_id, new.vcpus, new.memory_mb
    )
    server = servers.get_server(session, migration.server_id)
    if server.task_state != TaskState.DELETING:
        server.vm_state = VmState.ACTIVE if migration.was_running else VmState.STOPPED
        server.task_state = None
    server.updated_at = migration.updated_at = utcnow()
    migration.status = "confirmed"
    servers.finish_action(session, server.id, request_id, error=False)
    _finish_decisions(session, server.id, error=overtaken)  # a revert a delete overtook
    session.flush()


def revert(
    session: Session,
    migration_id: int,
    request_id: str,
    power_state: int,
    error: str | None = None,
) -> None:
    """The destination was cleaned and the guest is back on the source: release the
    destination's claim and the growth's quota; the old flavor again. `error`: the guest
    could not be started there again, so the server is left in ERROR with it as its fault."""
    migration = _locked(session, migration_id)
    if migration.status != "reverting":
        return
    placement.release(session, migration.dest_claim_id)
    if migration.quota_reservation_id is not None:
        quota.release(session, migration.quota_reservation_id)
    server = servers.get_server(session, migration.server_id)
    _wear(server, migration.old_flavor_id, migration.old_resources)
    server.host = migration.source_compute
    server.power_state = power_state
    if server.task_state != TaskState.DELETING:  # a delete under way keeps its task
        server.vm_state = VmState.ACTIVE if migration.was_running else VmState.STOPPED
        server.task_state = None
    server.updated_at = migration.updated_at = utcnow()
    if error is not None:
        server.vm_state = VmState.ERROR
        server.fault_code, server.fault_message = 500, error
        server.fault_details, server.fault_created = "", server.updated_at
    migration.status = "reverted"
    servers.finish_action(session, server.id, request_id, error=error is not None)
    session.flush()


def fail(
    session: Session,
    migration_id: int,
    error: str,
    power_state: int | None,
    mark_error: bool = False,
) -> None:
    """It failed before VERIFY_RESIZE and was rolled back (the destination's claim and
    domain already given back): the growth's quota released, the server where it was, the
    action failed. `mark_error`: an operator left the server in ERROR instead."""
    migration = _locked(session, migration_id)
    if migration.status in ("error", "confirmed", "reverted"):
        return
    if migration.quota_reservation_id is not None:
        quota.release(session, migration.quota_reservation_id)
    finished = migration.status == "finished"  # rolled back although finish_move committed
    migration.status = "error"
    migration.updated_at = utcnow()
    server = session.get(Server, migration.server_id, with_for_update=True)
    if server is not None and not server.deleted and finished:
        _wear(server, migration.old_flavor_id, migration.old_resources)
        server.host = migration.source_compute
    if server is not None and not server.deleted:
        if server.task_state != TaskState.DELETING:
            server.task_state = None
        if power_state is not None:
            server.power_state = power_state
        if mark_error:
            server.vm_state = VmState.ERROR
            server.fault_code, server.fault_message = 500, error
            server.fault_details, server.fault_created = "", migration.updated_at
        elif server.vm_state != VmState.ERROR:
            # Rolled back: the guest runs again on the source if it ran before the move.
            running = (
                power_state == PowerState.RUNNING
                if power_state is not None
                else migration.was_running
            )
            server.vm_state = VmState.ACTIVE if running else VmState.STOPPED
        server.updated_at = migration.updated_at
    servers.finish_action(session, migration.server_id, migration.request_id, error=True)
    session.flush()


def _finish_decisions(session: Session, server_id: str, error: bool) -> None:
    """A confirm or revert still open when the move ended (a delete overtook it)."""
    for action in ("confirmResize", "revertResize"):
        running = servers.running_action(session, server_id, only=action)
        if running is not None:
            servers.finish_action(session, server_id, running.request_id, error=error)


def _not_being_deleted(session: Session, server_id: str) -> None:
    """A move does not go on once a delete has begun: it rolls back instead (the delete
    cancels it; this holds even when that cancel came too late for the step it hit)."""
    server = session.get(Server, server_id, with_for_update=True)
    if server is None or server.deleted or server.task_state == TaskState.DELETING:
        raise Conflict(f"Instance {server_id} is being deleted: its move stops here")


def _wear(server: Server, flavor_id: str, amount: Resources) -> None:
    server.flavor_id = flavor_id
    server.vcpus, server.memory_mb, server.disk_gb = (
        amount.vcpus,
        amount.memory_mb,
        amount.disk_gb,
    )


def _locked(session: Session, migration_id: int) -> Migration:
    migration = session.get(Migration, migration_id, with_for_update=True, populate_existing=True)
    if migration is None:
        raise NotFound(f"Migration {migration_id} could not be found.")
    return migration


# ------------------------------------------------------------ os-migrations


@dataclass(frozen=True)
class MigrationFilters:
    host: str | None = None  # source or destination
    status: str | None = None
    migration_type: str | None = None
    instance_uuid: str | None = None
    changes_since: datetime | None = None


def list_migrations(
    session: Session,
    filters: MigrationFilters,
    limit: int | None = None,
    marker: str | None = None,
) -> list[Migration]:
    """Newest first, as Nova lists them; a page after the migration whose uuid is `marker`
    (Invalid if there is none such), at most `limit`."""
    statement = select(Migration)
    if marker is not None:
        after = session.exec(select(Migration).where(Migration.uuid == marker)).first()
        if after is None:
            raise Invalid(f"Marker {marker} could not be found.")
        statement = statement.where(
            (col(Migration.created_at) < after.created_at)
            | ((col(Migration.created_at) == after.created_at) & (col(Migration.id) < after.id))
        )
    if filters.host is not None:
        statement = statement.where(
            (col(Migration.source_compute) == filters.host)
            | (col(Migration.dest_compute) == filters.host)
        )
    if filters.status is not None:
        statement = statement.where(Migration.status == filters.status)
    if filters.migration_type is not None:
        statement = statement.where(Migration.migration_type == filters.migration_type)
    if filters.instance_uuid is not None:
        statement = statement.where(Migration.server_id == filters.instance_uuid)
    if filters.changes_since is not None:
        statement = statement.where(col(Migration.updated_at) >= aware(filters.changes_since))
    statement = statement.order_by(col(Migration.created_at).desc(), col(Migration.id).desc())
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.exec(statement))
