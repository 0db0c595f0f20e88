"""Which operation may run on a server in which state, and what it leaves behind: one table
(Nova's `@check_instance_state` on each method of compute/api.py), the gate that every
operation but create passes first, and the state it ends in.

The gate runs inside the operation's own workflow, in the update that starts it, as one
transaction: it locks the server row, checks visibility, policy, lock and states, swaps
task_state (compare-and-swap: two operations at once cannot both pass) and records the instance
action. It is idempotent by request id, so a retry after a crash finds its own work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col

from novaflow import hosts, moves, rebuilds, servers
from novaflow.errors import Conflict, Forbidden, Invalid, RequestExpired
from novaflow.models import InstanceAction, Server, utcnow
from novaflow.states import PowerState, TaskState, VmState

ANY = None  # a rule's vm_states: the action is allowed whatever the vm_state


@dataclass(frozen=True)
class Rule:
    """One operation: where it may start, what runs meanwhile, where it ends."""

    action: str  # the instance action's name, as Nova records it
    vm_states: frozenset[VmState] | None  # allowed vm_states (ANY: all)
    task_state: TaskState | None  # set while it runs (None: it runs in the gate alone)
    host_action: str | None = None  # the step on the server's host, if any
    done: VmState | None = None  # the vm_state after success (None: unchanged)
    admin_only: bool = False
    checks_lock: bool = True  # a locked server refuses it to non-admins
    needs_host_up: bool = True  # refused (409) while the server's host is down
    # The end state follows the power state the host reports: ACTIVE if running, else STOPPED.
    done_from_power: bool = False


def _states(*states: VmState) -> frozenset[VmState]:
    return frozenset(states)


_HARD_REBOOTABLE = _states(
    VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED, VmState.ERROR
)

RULES: dict[str, Rule] = {
    rule.action: rule
    for rule in (
        Rule("stop", _states(VmState.ACTIVE, VmState.ERROR), TaskState.POWERING_OFF,
             "stop", VmState.STOPPED),
        Rule("start", _states(VmState.STOPPED), TaskState.POWERING_ON, "start", VmState.ACTIVE),
        Rule("reboot", _states(VmState.ACTIVE), TaskState.REBOOTING, "reboot-soft",
             VmState.ACTIVE),
        Rule("pause", _states(VmState.ACTIVE), TaskState.PAUSING, "pause", VmState.PAUSED),
        Rule("unpause", _states(VmState.PAUSED), TaskState.UNPAUSING, "unpause",
             VmState.ACTIVE),
        Rule("suspend", _states(VmState.ACTIVE), TaskState.SUSPENDING, "suspend",
             VmState.SUSPENDED),
        Rule("resume", _states(VmState.SUSPENDED), TaskState.RESUMING, "resume",
             VmState.ACTIVE),
        # An NMI to the guest (Nova 2.17): no task state of its own (as Nova), but only from
        # none; the vm_state stays.
        Rule("trigger_crash_dump", _states(VmState.ACTIVE, VmState.PAUSED, VmState.RESIZED,
             VmState.ERROR), None, "trigger-crash-dump"),
        Rule("lock", ANY, None, checks_lock=False),
        Rule("unlock", ANY, None, checks_lock=False),
        Rule("resetState", ANY, None, admin_only=True, checks_lock=False),
        Rule("delete", ANY, TaskState.DELETING),
        # Moves (novaflow/moves.py): the gate also records the migration, and a resize
        # reserves the quota its new flavor adds.
        Rule("resize", _states(VmState.ACTIVE, VmState.STOPPED), TaskState.RESIZE_PREP,
             "resize"),
        Rule("migrate", _states(VmState.ACTIVE, VmState.STOPPED), TaskState.RESIZE_PREP,
             "migrate", admin_only=True),
        # They reach the move's running workflow (an update); its host may be down (the
        # clean-up of a host that is down is left to its reaper).
        Rule("confirmResize", _states(VmState.RESIZED), TaskState.RESIZE_CONFIRMING,
             "confirm", needs_host_up=False),
        Rule("revertResize", _states(VmState.RESIZED), TaskState.RESIZE_REVERTING,
             "revert", needs_host_up=False),
        # A new disk from an image, on the same host with the same ports (novaflow/rebuilds.py);
        # it runs afterwards unless it was stopped.
        Rule("rebuild", _states(VmState.ACTIVE, VmState.STOPPED, VmState.ERROR),
             TaskState.REBUILDING, "rebuild", done_from_power=True),
    )
}  # fmt: skip
# A hard reboot (Nova's ALLOW_HARD_REBOOT) also brings back a stopped, paused, suspended or
# failed server: it recreates the domain from its definition.
HARD_REBOOT = Rule(
    "reboot", _HARD_REBOOTABLE, TaskState.REBOOTING_HARD, "reboot-hard", VmState.ACTIVE
)
RESET_STATES = {"active": VmState.ACTIVE, "error": VmState.ERROR}


def rule_for(action: str, options: dict[str, str]) -> Rule:
    if action == "reboot" and options.get("type", "SOFT").upper() == "HARD":
        return HARD_REBOOT
    try:
        return RULES[action]
    except KeyError:
        raise Invalid(f"Unknown action {action!r}") from None


@dataclass(frozen=True)
class Begun:
    request_id: str  # the action the operation's steps are recorded under
    host: str | None
    host_action: str | None
    running_workflow_id: str | None = None  # what a delete cancels first
    joined: str | None = None  # the delete workflow already doing it (this one has nothing to do)


@dataclass(frozen=True)
class Caller:
    project_id: str
    user_id: str
    is_admin: bool


def begin(
    session: Session,
    server_id: str,
    action: str,
    options: dict[str, str],
    caller: Caller,
    *,
    request_id: str,
    workflow_id: str,
    down_after: timedelta,
    accept_until: float = 0.0,
    now: datetime | None = None,
) -> Begun:
    """Pass the gate of `action` on the server, or raise the error the API answers with.
    After `accept_until` (epoch seconds; 0: never) a request not yet recorded is refused."""
    rule = rule_for(action, options)
    server = servers.get_visible_server(
        session, server_id, caller.project_id, is_admin=caller.is_admin, for_update=True
    )
    if session.get(InstanceAction, (server_id, request_id)) is not None:
        return _begun_again(session, server, rule, request_id)
    if accept_until and (now or utcnow()).timestamp() > accept_until:
        raise RequestExpired("The request expired before it could be recorded.")
    if rule.admin_only and not caller.is_admin:
        raise Forbidden(f"Policy doesn't allow os_compute_api:os-admin-actions:{action}.")
    if rule.checks_lock and server.locked and not caller.is_admin:
        raise Conflict(f"Instance {server_id} is locked")
    if action == "delete":
        return _begin_delete(session, server, caller, request_id, workflow_id)
    if rule.vm_states is not ANY and server.vm_state not in rule.vm_states:
        raise Conflict(
            f"Cannot '{action}' instance {server_id} while it is in vm_state {server.vm_state}"
        )
    if server.task_state is not None and (
        rule.task_state is not None or rule.host_action is not None
    ):
        raise Conflict(
            f"Cannot '{action}' instance {server_id} while it is in task_state {server.task_state}"
        )
    if rule.host_action is not None:
        _check_host(session, server, action, down_after, now, rule.needs_host_up)
        _swap_task_state(session, server, rule)
        _gate_extras(session, server, rule, options, caller, request_id, workflow_id)
    else:
        _apply_at_once(server, action, options, caller)
    _record_action(
        session, server, action, caller, request_id, workflow_id, done=rule.host_action is None
    )
    return Begun(request_id, server.host, rule.host_action)


def _begun_again(session: Session, server: Server, rule: Rule, request_id: str) -> Begun:
    """The gate already passed for this request (a retry after a crash): the same answer."""
    delete = rule.action == "delete"
    return Begun(
        request_id,
        server.host,
        rule.host_action,
        _running_workflow(session, server.id) if delete else None,
    )


def _running_workflow(session: Session, server_id: str) -> str | None:
    """The workflow of the operation a delete cancels first: an unfinished action's, or that
    of a move waiting for its confirm or revert (its action finished at VERIFY_RESIZE)."""
    running = servers.running_action(session, server_id, exclude="delete")
    if running is not None:
        return running.workflow_id
    move = moves.under_way(session, server_id)
    return move.workflow_id if move is not None else None


def _begin_delete(
    session: Session, server: Server, caller: Caller, request_id: str, workflow_id: str
) -> Begun:
    """Delete is accepted from every state. A delete already under way hands back its own
    action, so a new run of a delete workflow that failed takes over where it stopped."""
    running_id = _running_workflow(session, server.id)
    if server.task_state == TaskState.DELETING:
        earlier = servers.running_action(session, server.id, only="delete")
        if earlier is not None and earlier.workflow_id == workflow_id:
            # A new run of a delete workflow that failed: it takes over its action.
            return Begun(earlier.request_id, server.host, None, running_id)
        if earlier is not None:
            # Another DELETE started its own workflow in the same instant: that one does it.
            return Begun(earlier.request_id, server.host, None, joined=earlier.workflow_id)
    server.task_state = TaskState.DELETING
    server.updated_at = utcnow()
    _record_action(session, server, "delete", caller, request_id, workflow_id, done=False)
    return Begun(request_id, server.host, None, running_id)


def _gate_extras(
    session: Session,
    server: Server,
    rule: Rule,
    options: dict[str, str],
    caller: Caller,
    request_id: str,
    workflow_id: str,
) -> None:
    """What some gates do beyond the state check, in the same transaction: a resize or
    migrate records its migration, a confirm or revert moves it on, a rebuild checks its
    image and records its changes."""
    if rule.action == "rebuild":
        rebuilds.accept(session, server, options, caller.user_id)
    elif rule.action in moves.MIGRATION_TYPES:
        moves.record(
            session,
            server,
            rule.action,
            options,
            user_id=caller.user_id,
            request_id=request_id,
            workflow_id=workflow_id,
        )
    elif rule.action in ("confirmResize", "revertResize"):
        move = moves.awaiting_decision(session, server, rule.action)
        move.status = "confirming" if rule.action == "confirmResize" else "reverting"
        move.updated_at = utcnow()


def _check_host(
    session: Session,
    server: Server,
    action: str,
    down_after: timedelta,
    now: datetime | None,
    needs_up: bool = True,
) -> None:
    if not server.host:
        raise Conflict(
            f"Cannot '{action}' instance {server.id}: it has no host (vm_state {server.vm_state})"
        )
    if needs_up and not hosts.is_up(session, server.host, now or utcnow(), down_after):
        raise Conflict(f"Cannot '{action}' instance {server.id}: its compute host is down")


def _swap_task_state(session: Session, server: Server, rule: Rule) -> None:
    """Compare-and-swap: only from no task. The row is locked already (FOR UPDATE on
    PostgreSQL, the write lock on SQLite); the condition keeps the rule visible in the SQL."""
    result = session.execute(
        update(Server)
        .where(col(Server.id) == server.id)
        .where(col(Server.task_state).is_(None))
        .values(task_state=rule.task_state, updated_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"Cannot '{rule.action}' instance {server.id}: another task started")
    session.refresh(server)


def _apply_at_once(server: Server, action: str, options: dict[str, str], caller: Caller) -> None:
    """The actions that are a database change only: lock, unlock, resetState."""
    if action == "lock":
        server.locked = True
        server.locked_by = "owner" if caller.project_id == server.project_id else "admin"
        server.locked_reason = options.get("locked_reason")
    elif action == "unlock":
        if server.locked_by == "admin" and not caller.is_admin:
            raise Forbidden(
                f"Instance {server.id} was locked by an admin: only an admin can unlock it "
                "(os_compute_api:os-lock-server:unlock:unlock_override)"
            )
        server.locked, server.locked_by, server.locked_reason = False, None, None
    elif action == "resetState":
        wanted = options.get("state", "")
        if wanted not in RESET_STATES:
            raise Invalid(
                "Invalid input for field/attribute os-resetState.state. Value must be one of "
                f"{sorted(RESET_STATES)}"
            )
        server.vm_state = RESET_STATES[wanted]
        if server.task_state != TaskState.DELETING:
            server.task_state = None
    server.updated_at = utcnow()


def _record_action(
    session: Session,
    server: Server,
    action: str,
    caller: Caller,
    request_id: str,
    workflow_id: str,
    *,
    done: bool,
) -> None:
    now = utcnow()
    session.add(
        InstanceAction(
            server_id=server.id,
            request_id=request_id,
            action=action,
            project_id=server.project_id,
            user_id=caller.user_id,
            workflow_id=workflow_id,
            start_time=now,
            finish_time=now if done else None,
        )
    )
    session.flush()


def end(
    session: Session,
    server_id: str,
    request_id: str,
    action: str,
    options: dict[str, str],
    *,
    power_state: int | None,
    error: str | None,
    mark_error: bool = False,
) -> None:
    """The operation's last write: its end state (or, on failure, the state it left), task
    cleared, the action finished. Idempotent; a delete that took over keeps its task.
    `mark_error`: an operator decided the server is left in ERROR, `error` its fault."""
    rule = rule_for(action, options)
    own = session.get(InstanceAction, (server_id, request_id))
    if own is not None and own.finish_time is not None:
        return  # a retry after this step committed: a later operation may own the task now
    server = session.get(Server, server_id, with_for_update=True, populate_existing=True)
    if server is not None and not server.deleted:
        if server.task_state == rule.task_state:
            server.task_state = None
            if error is None and rule.done is not None:
                server.vm_state = rule.done
            elif error is None and rule.done_from_power and power_state is not None:
                running = power_state == PowerState.RUNNING
                server.vm_state = VmState.ACTIVE if running else VmState.STOPPED
        if power_state is not None:
            server.power_state = power_state
        server.updated_at = utcnow()
        if mark_error:  # the server stays on its host, in ERROR with the fault
            server.vm_state = VmState.ERROR
            server.fault_code, server.fault_message = 500, error or "marked ERROR"
            server.fault_details, server.fault_created = "", server.updated_at
    servers.finish_action(session, server_id, request_id, error=error is not None)
    session.flush()
