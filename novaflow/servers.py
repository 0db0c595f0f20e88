"""Server records, their state changes, and the instance-action audit trail."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, not_, update
from sqlmodel import Session, col, select

from novaflow.errors import Conflict, Invalid, NotFound
from novaflow.models import (
    Claim,
    InstanceAction,
    InstanceActionEvent,
    Server,
    ServerGroupMember,
    ServerTag,
    utcnow,
)
from novaflow.sqlutil import aware
from novaflow.states import PowerState, TaskState, VmState, status_condition


@dataclass(frozen=True)
class ServerDraft:
    """One server row to insert for a create request."""

    server_id: str
    name: str
    launch_index: int


def hostname_for(name: str, server_id: str) -> str:
    """The guest's hostname as Nova derives it from the server's name when it is created:
    lower case, spaces and underscores as dashes, nothing but letters, digits, dots and
    dashes, at most 63 characters; `server-<id>` when nothing is left."""
    hostname = re.sub(r"[ _]", "-", name.encode("latin-1", "ignore").decode("latin-1"))
    hostname = re.sub(r"[^\w.-]+", "", hostname).lower().strip(".-")[:63]
    return hostname or f"server-{server_id}"


def insert_servers(
    session: Session,
    template: Server,
    drafts: Sequence[ServerDraft],
    *,
    request_id: str,
    workflow_ids: Sequence[str],
    tags: Sequence[str] = (),
) -> None:
    """Insert one server row per draft (BUILD/scheduling), each a copy of `template` (the
    request's shared fields) with its own id, name and index, and its 'create' action.
    Idempotent by server id."""
    now = utcnow()
    shared = template.model_dump(exclude={"id", "name", "launch_index"})
    for draft, workflow_id in zip(drafts, workflow_ids, strict=True):
        if session.get(Server, draft.server_id) is not None:
            continue
        server = Server.model_validate(
            {
                **shared,
                "id": draft.server_id,
                "name": draft.name,
                "hostname": hostname_for(draft.name, draft.server_id),
                "launch_index": draft.launch_index,
                "created_at": now,
                "updated_at": now,
            }
        )
        session.add(server)
        session.add(
            InstanceAction(
                server_id=draft.server_id,
                request_id=request_id,
                action="create",
                project_id=server.project_id,
                user_id=server.user_id,
                workflow_id=workflow_id,
                start_time=now,
            )
        )
        if server.server_group_id:
            session.add(
                ServerGroupMember(group_id=server.server_group_id, server_id=draft.server_id)
            )
        for tag in dict.fromkeys(tags):
            session.add(ServerTag(server_id=draft.server_id, tag=tag))
    session.flush()


def forget_unrecorded(session: Session, server_ids: Sequence[str], request_id: str) -> list[str]:
    """Remove the servers an expired create request recorded after all: its reservation
    committed just before its worker died, and the retry came after the deadline, when the API
    had answered 503 ("nothing was changed"). Only a server still as the reservation left it
    (its create action this request's, never placed on a host) is removed, with its audit
    trail and group membership; returns their ids (their quota is the caller's to give back)."""
    removed = []
    for server_id in server_ids:
        server = session.get(Server, server_id, with_for_update=True)
        action = session.get(InstanceAction, (server_id, request_id))
        if server is None or action is None or action.action != "create":
            continue
        if server.host is not None or server.vm_state != VmState.BUILDING:
            continue
        for table in (InstanceActionEvent, InstanceAction, ServerGroupMember, ServerTag):
            session.execute(delete(table).where(col(table.server_id) == server_id))
        session.delete(server)
        removed.append(server_id)
    session.flush()
    return removed


def get_server(session: Session, server_id: str) -> Server:
    server = session.get(Server, server_id)
    if server is None or server.deleted:
        raise NotFound(f"Instance {server_id} could not be found.")
    return server


def set_task_state(
    session: Session, server_id: str, task_state: str | None, host: str | None = None
) -> None:
    """Move a building server to its next task. A delete in progress always wins."""
    values: dict[str, object] = {"task_state": task_state, "updated_at": utcnow()}
    if host is not None:
        values["host"] = host
    session.execute(
        update(Server)
        .where(col(Server.id) == server_id)
        .where(col(Server.deleted).is_(False))
        .where(col(Server.task_state).is_distinct_from(TaskState.DELETING))
        .values(**values)
    )


def ensure_still_wanted(session: Session, server_id: str) -> None:
    """A build step must not add to a server that is being deleted (e.g. a multi-create sibling
    deleted in the instant before its own workflow started). Locks the row on PostgreSQL, so
    a delete cannot slip in between this check and the step's commit."""
    server = session.get(Server, server_id, with_for_update=True)
    if server is None or server.deleted or server.task_state == TaskState.DELETING:
        raise Conflict(f"Instance {server_id} is being deleted: its build stops here")


def mark_active(session: Session, server_id: str, host: str | None, power_state: int) -> None:
    now = utcnow()
    values: dict[str, object] = {
        "vm_state": VmState.ACTIVE,
        "task_state": None,
        "power_state": power_state,
        "launched_at": now,
        "updated_at": now,
    }
    if host is not None:
        values["host"] = host
    session.execute(
        update(Server)
        .where(col(Server.id) == server_id)
        .where(col(Server.deleted).is_(False))
        .where(col(Server.task_state).is_distinct_from(TaskState.DELETING))
        .values(**values)
    )


def mark_error(session: Session, server_id: str, message: str, details: str, code: int) -> None:
    """ERROR with a fault. A delete in progress keeps its task_state so it stays in charge."""
    server = session.get(Server, server_id, with_for_update=True)
    if server is None or server.deleted:
        return
    now = utcnow()
    server.vm_state = VmState.ERROR
    server.power_state = PowerState.NOSTATE
    server.host = None
    if server.task_state != TaskState.DELETING:
        server.task_state = None
    server.fault_code, server.fault_message = code, message
    server.fault_details, server.fault_created = details, now
    server.updated_at = now
    session.flush()


def delete_under_way(session: Session, server_id: str) -> str | None:
    """The workflow id of the delete under way on the server, if one is."""
    server = session.get(Server, server_id)
    if server is None or server.task_state != TaskState.DELETING:
        return None
    earlier = running_action(session, server_id, only="delete")
    return earlier.workflow_id if earlier is not None else None


def running_action(
    session: Session, server_id: str, *, exclude: str | None = None, only: str | None = None
) -> InstanceAction | None:
    """The newest unfinished action on the server (optionally of one kind, or not of one)."""
    statement = (
        select(InstanceAction)
        .where(InstanceAction.server_id == server_id)
        .where(col(InstanceAction.finish_time).is_(None))
        .order_by(col(InstanceAction.start_time).desc())
    )
    if exclude is not None:
        statement = statement.where(InstanceAction.action != exclude)
    if only is not None:
        statement = statement.where(InstanceAction.action == only)
    return session.exec(statement).first()


def mark_deleted(session: Session, server_id: str) -> None:
    server = session.get(Server, server_id)
    if server is None or server.deleted:
        return
    now = utcnow()
    server.vm_state = VmState.DELETED
    server.task_state = None
    server.power_state = PowerState.NOSTATE
    server.deleted = True
    server.terminated_at = now
    server.updated_at = now
    session.exec(  # type: ignore[call-overload]
        ServerGroupMember.__table__.delete().where(  # type: ignore[attr-defined]
            ServerGroupMember.__table__.c.server_id == server_id  # type: ignore[attr-defined]
        )
    )
    session.flush()


def record_event(
    session: Session,
    server_id: str,
    request_id: str,
    event: str,
    *,
    start_time,  # type: ignore[no-untyped-def]
    error: str | None = None,
    host: str | None = None,
    finish_time: datetime | None = None,
) -> None:
    """Record one finished step (now, unless `finish_time` says when). A retried step
    overwrites its own row, never duplicates."""
    row = session.get(InstanceActionEvent, (server_id, request_id, event))
    if row is None:
        row = InstanceActionEvent(
            server_id=server_id, request_id=request_id, event=event, start_time=start_time
        )
        session.add(row)
    row.finish_time = finish_time or utcnow()
    row.result = "Error" if error else "Success"
    row.details = error
    row.host = host
    session.flush()


def finish_action(session: Session, server_id: str, request_id: str, error: bool) -> None:
    action = session.get(InstanceAction, (server_id, request_id))
    if action is not None and action.finish_time is None:
        action.finish_time = utcnow()
        action.message = "Error" if error else None
        session.flush()


def active_claim_host(session: Session, server_id: str) -> str | None:
    return session.exec(
        select(Claim.host).where(Claim.server_id == server_id).where(Claim.state == "active")
    ).first()


def get_visible_server(
    session: Session,
    server_id: str,
    project_id: str,
    *,
    is_admin: bool,
    include_deleted: bool = False,
    for_update: bool = False,
) -> Server:
    """The server a caller of `project_id` may see (an admin sees every project's), else
    NotFound. `for_update` locks the row until the transaction ends (PostgreSQL: SELECT ...
    FOR UPDATE; SQLite: a write session already holds the database's write lock) and reads it
    afresh, so a read-modify-write in a write session sees the latest committed row."""
    server = session.get(
        Server,
        server_id,
        with_for_update=True if for_update else None,
        populate_existing=for_update,
    )
    if (
        server is None
        or (server.deleted and not include_deleted)
        or (server.project_id != project_id and not is_admin)
    ):
        raise NotFound(f"Instance {server_id} could not be found.")
    return server


def check_changeable(server: Server, action: str) -> None:
    """A user's change to a server (rename, metadata) is refused while it is being deleted,
    with Nova's message for an instance in the wrong state."""
    if server.task_state == TaskState.DELETING:
        raise Conflict(
            f"Cannot '{action}' instance {server.id} while it is in task_state {server.task_state}"
        )


def describe(session: Session, server: Server, description: str | None) -> None:
    """Set (or, with None, clear) the server's description (Nova 2.19)."""
    server.description = description
    server.updated_at = utcnow()
    session.flush()


def rename(session: Session, server: Server, name: str) -> None:
    """Give the server (locked by the caller) a new name."""
    check_changeable(server, "update")
    server.name = name
    server.updated_at = utcnow()
    session.flush()


@dataclass(frozen=True)
class ServerFilters:
    """GET /servers filters, as Nova names them (the API checks who may use which)."""

    project_id: str | None  # None: every project (an admin's all_tenants)
    name: str | None = None
    status: str | None = None
    host: str | None = None
    reservation_id: str | None = None
    # Nova 2.26's tag filters: all of them, any of them, not all of them, none of them.
    tags: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    not_tags: tuple[str, ...] = ()
    not_tags_any: tuple[str, ...] = ()


def _tagged(*tags: str) -> ColumnElement[bool]:
    """The server has one of `tags`."""
    return (
        select(ServerTag.server_id)
        .where(ServerTag.server_id == Server.id, col(ServerTag.tag).in_(tags))
        .exists()
    )


def _tag_condition(filters: ServerFilters) -> ColumnElement[bool] | None:
    conditions = [_tagged(tag) for tag in filters.tags]
    if filters.tags_any:
        conditions.append(_tagged(*filters.tags_any))
    if filters.not_tags:
        conditions.append(not_(and_(*(_tagged(tag) for tag in filters.not_tags))))
    if filters.not_tags_any:
        conditions.append(not_(_tagged(*filters.not_tags_any)))
    return and_(*conditions) if conditions else None


def list_servers(
    session: Session, filters: ServerFilters, limit: int | None = None, marker: str | None = None
) -> list[Server]:
    """Servers matching `filters`, newest first, a page at a time: after the server `marker`
    (Invalid if it is not in the list), at most `limit`. Filtered and paged in SQL."""
    statement = select(Server).where(col(Server.deleted).is_(False))
    if filters.project_id is not None:
        statement = statement.where(Server.project_id == filters.project_id)
    if filters.name:
        statement = statement.where(col(Server.name).contains(filters.name))
    if filters.host:
        statement = statement.where(Server.host == filters.host)
    if filters.reservation_id:
        statement = statement.where(Server.reservation_id == filters.reservation_id)
    if filters.status:
        vm_states, task_states, excluded = status_condition(filters.status)
        statement = statement.where(col(Server.vm_state).in_(vm_states))
        if task_states is not None:
            statement = statement.where(col(Server.task_state).in_(task_states))
        if excluded:
            statement = statement.where(
                col(Server.task_state).is_(None) | col(Server.task_state).not_in(excluded)
            )
    tagged = _tag_condition(filters)
    if tagged is not None:
        statement = statement.where(tagged)
    if marker is not None:
        after = session.exec(statement.where(Server.id == marker)).first()
        if after is None:
            raise Invalid(f"marker [{marker}] not found")
        statement = statement.where(
            (col(Server.created_at) < after.created_at)
            | ((col(Server.created_at) == after.created_at) & (col(Server.id) > after.id))
        )
    statement = statement.order_by(col(Server.created_at).desc(), col(Server.id))
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.exec(statement))


def actions_of(
    session: Session,
    server_id: str,
    limit: int | None = None,
    marker: str | None = None,
    changes_since: datetime | None = None,
) -> list[InstanceAction]:
    """The server's instance actions, newest first; a page of them after the action `marker`
    (a request id; Invalid if the server has none such), at most `limit`, only those updated
    since `changes_since` (Nova 2.58). `limit=0` is an empty page, whatever the marker (Nova's
    actions_get)."""
    if limit == 0:
        return []
    statement = select(InstanceAction).where(InstanceAction.server_id == server_id)
    if changes_since is not None:
        updated = func.coalesce(col(InstanceAction.finish_time), col(InstanceAction.start_time))
        statement = statement.where(updated >= aware(changes_since))
    if marker is not None:
        after = session.get(InstanceAction, (server_id, marker))
        if after is None:
            raise Invalid(f"Marker {marker} could not be found.")
        statement = statement.where(
            (col(InstanceAction.start_time) < after.start_time)
            | (
                (col(InstanceAction.start_time) == after.start_time)
                & (col(InstanceAction.request_id) < after.request_id)
            )
        )
    statement = statement.order_by(
        col(InstanceAction.start_time).desc(), col(InstanceAction.request_id).desc()
    )
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.exec(statement))


def get_action(session: Session, server_id: str, request_id: str) -> InstanceAction:
    action = session.get(InstanceAction, (server_id, request_id))
    if action is None:
        raise NotFound(f"Action {request_id} for instance {server_id} could not be found.")
    return action
