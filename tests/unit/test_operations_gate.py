"""The gate every operation but create passes (novaflow/operations.py), and its last write, on
SQLite and PostgreSQL: states, the compare-and-swap, the lock, and idempotency by request id
(a retry after a crash finds its own work and never touches a later operation)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from novaflow import hosts, operations, servers
from novaflow.db import Database
from novaflow.errors import Conflict, Forbidden, NotFound, RequestExpired
from novaflow.models import InstanceAction, Server
from novaflow.states import TaskState, VmState
from tests.dbs import add_server

OWNER = operations.Caller("p", "u", is_admin=False)
STRANGER = operations.Caller("other", "x", is_admin=False)
ADMIN = operations.Caller("ops", "admin", is_admin=True)
UP = timedelta(seconds=60)


def active_on_host(db: Database) -> str:
    server_id = add_server(db)
    with db.write() as s:
        hosts.register_host(
            s, "h1", vcpus=8, memory_mb=8192, disk_gb=100, arch="x86_64",
            libvirt_uri="test:///default", hypervisor_type="test",
        )  # fmt: skip
        server = s.get(Server, server_id)
        assert server is not None
        server.vm_state, server.task_state, server.host = VmState.ACTIVE, None, "h1"
    return server_id


def begin(
    db: Database,
    server_id: str,
    action: str,
    request_id: str,
    caller: operations.Caller = OWNER,
    **options: str,
) -> operations.Begun:
    with db.write() as s:
        return operations.begin(
            s, server_id, action, options, caller,
            request_id=request_id, workflow_id=f"wf-{request_id}", down_after=UP,
        )  # fmt: skip


def state(db: Database, server_id: str) -> tuple[str, str | None, bool]:
    with db.read() as s:
        server = s.get(Server, server_id)
        assert server is not None
        return server.vm_state, server.task_state, server.locked


def end(db: Database, server_id: str, action: str, request_id: str, **kw: object) -> None:
    with db.write() as s:
        operations.end(s, server_id, request_id, action, {}, power_state=kw.get("power"),  # type: ignore[arg-type]
                       error=kw.get("error"))  # type: ignore[arg-type]  # fmt: skip


def test_a_stop_passes_once_and_its_retry_gets_the_same_answer(db: Database) -> None:
    server_id = active_on_host(db)
    first = begin(db, server_id, "stop", "req-1")
    assert (first.host, first.host_action) == ("h1", "stop")
    assert state(db, server_id)[1] == TaskState.POWERING_OFF
    assert begin(db, server_id, "stop", "req-1") == first  # a retry after a crash
    with pytest.raises(Conflict, match="task_state powering-off"):
        begin(db, server_id, "reboot", "req-2", type="HARD")
    end(db, server_id, "stop", "req-1", power=4)
    assert state(db, server_id)[:2] == (VmState.STOPPED, None)


def test_a_retried_end_never_touches_a_later_operation(db: Database) -> None:
    server_id = active_on_host(db)
    begin(db, server_id, "reboot", "req-1")
    end(db, server_id, "reboot", "req-1", power=1)
    begin(db, server_id, "reboot", "req-2")  # the next reboot is under way
    end(db, server_id, "reboot", "req-1", power=1)  # the first one's end, retried
    assert state(db, server_id)[1] == TaskState.REBOOTING


def test_wrong_states_and_strangers_are_refused_and_nothing_is_recorded(db: Database) -> None:
    server_id = active_on_host(db)
    with pytest.raises(Conflict, match="vm_state active"):
        begin(db, server_id, "start", "req-1")
    with pytest.raises(NotFound):
        begin(db, server_id, "stop", "req-2", caller=STRANGER)
    with pytest.raises(Forbidden):
        begin(db, server_id, "resetState", "req-3", state="error")
    with db.read() as s:
        assert s.get(InstanceAction, (server_id, "req-1")) is None
    assert state(db, server_id) == (VmState.ACTIVE, None, False)


def test_a_lock_refuses_the_owner_but_not_an_admin(db: Database) -> None:
    server_id = active_on_host(db)
    begin(db, server_id, "lock", "req-1", locked_reason="audit")
    assert state(db, server_id)[2] is True
    for action in ("stop", "delete"):
        with pytest.raises(Conflict, match="is locked"):
            begin(db, server_id, action, f"req-{action}")
    assert begin(db, server_id, "stop", "req-admin", caller=ADMIN).host_action == "stop"


def test_an_expired_request_is_refused_unless_it_was_recorded(db: Database) -> None:
    server_id = active_on_host(db)
    with db.write() as s, pytest.raises(RequestExpired):
        operations.begin(s, server_id, "stop", {}, OWNER, request_id="req-1",
                         workflow_id="wf", down_after=UP, accept_until=1.0)  # fmt: skip
    begin(db, server_id, "stop", "req-2")
    with db.write() as s:  # its retry, after the deadline, finds its own work
        again = operations.begin(s, server_id, "stop", {}, OWNER, request_id="req-2",
                                 workflow_id="wf", down_after=UP, accept_until=1.0)  # fmt: skip
    assert again.host_action == "stop"


def test_a_second_delete_takes_over_or_joins(db: Database) -> None:
    server_id = active_on_host(db)
    first = begin(db, server_id, "delete", "req-1")
    assert first.request_id == "req-1" and first.joined is None
    with db.write() as s:  # the same workflow run again (it failed): it takes over
        again = operations.begin(s, server_id, "delete", {}, OWNER, request_id="req-2",
                                 workflow_id="wf-req-1", down_after=UP)  # fmt: skip
    assert again.request_id == "req-1" and again.joined is None
    other = begin(db, server_id, "delete", "req-3")  # another workflow in the same instant
    assert other.joined == "wf-req-1"


def test_two_deletes_at_once_the_second_waits_for_the_first_and_joins_it(db: Database) -> None:
    """Two DELETEs in the same instant, each with its own workflow: the second's gate waits
    on the server row the first one locked until that commits, then sees it and joins it.
    Never two deletes of their own (PostgreSQL at READ COMMITTED: without the lock both
    would read the server before either committed, and both would pass)."""
    server_id = active_on_host(db)
    with ThreadPoolExecutor(1) as pool, db.write() as s:
        first = operations.begin(s, server_id, "delete", {}, OWNER, request_id="req-1",
                                 workflow_id="wf-req-1", down_after=UP)  # fmt: skip
        second = pool.submit(begin, db, server_id, "delete", "req-2")
        with pytest.raises(TimeoutError):  # held while the first one's transaction is open
            second.result(timeout=0.5)
    assert first.request_id == "req-1" and first.joined is None
    assert second.result().joined == "wf-req-1"
    with db.read() as s:
        deletes = [a.request_id for a in servers.actions_of(s, server_id) if a.action == "delete"]
    assert deletes == ["req-1"]
