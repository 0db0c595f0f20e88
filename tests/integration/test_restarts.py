"""Beyond the workers: the API killed between accepting a request and answering it, the
Temporal server restarted mid-operation (its database file kept), the database refusing
writes for a while. Each converges with nothing leaked; every process is running again
afterwards (a `finally`), whatever the test's outcome."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from hypervisor.faults import AFTER, BEFORE, around, clear_faults, is_holding, set_fault
from tests.integration.client import NovaClient, wait_until
from tests.integration.leaks import leaks
from tests.integration.test_moves import act, settled, where_defined
from tests.integration.test_parking import needing_attention
from workers.devstack import Stack


@contextmanager
def held(stack: Stack, directories: list[Path], step: str, name: str) -> Iterator[None]:
    """`step` held for the server named `name` in the workers of `directories`; afterwards
    the hold is gone and every process of the stack runs again."""
    for directory in directories:
        set_fault(directory, step, "hold", scope=name)
    try:
        yield
    finally:
        for directory in directories:
            clear_faults(directory, step, scope=name)
        stack.ensure_running()


def holding(directories: list[Path], step: str, name: str) -> bool:
    return any(is_holding(d, step, scope=name) for d in directories)


def in_background(request: Callable[[], httpx.Response]) -> list[httpx.Response | Exception]:
    """Send `request` in a thread; its answer, or the error of a connection the API dropped,
    lands in the list returned."""
    answers: list[httpx.Response | Exception] = []

    def send() -> None:
        try:
            answers.append(request())
        except httpx.HTTPError as error:  # the API died under it
            answers.append(error)

    threading.Thread(target=send, daemon=True).start()
    return answers


def built_once(nova: NovaClient, stack: Stack, name: str) -> str:
    """The one server named `name` ends ACTIVE on one host; then it is deleted, and nothing
    of it is left."""
    [listed] = wait_until(lambda: [s for s in nova.servers() if s["name"] == name], name)
    server = nova.wait_status(listed["id"], "ACTIVE", timeout=90)
    assert where_defined(stack, listed["id"]) == {server["OS-EXT-SRV-ATTR:host"]}
    assert nova.usage()["instances"] == 1 and nova.usage()["ports"] == 1
    assert needing_attention(stack, listed["id"]) == []
    nova.delete_and_wait(listed["id"])
    assert leaks(stack, [listed["id"]]) == {}
    assert nova.usage()["instances"] == 0
    return str(listed["id"])


def test_api_killed_between_accepting_a_create_and_answering_it(
    nova: NovaClient, stack: Stack
) -> None:
    """The create was recorded (its first step committed) when the API died: the client gets
    no answer, the server is built all the same, listed, and deleted like any other."""
    name, control = "api-killed", [stack.control_state_dir]
    step = around("reserve_quota", AFTER)
    with held(stack, control, step, name):
        answers = in_background(lambda: nova.create(name=name))
        wait_until(lambda: holding(control, step, name), "the create recorded")
        stack.kill("api")
        wait_until(lambda: answers, "the client to lose its request")
        assert isinstance(answers[0], httpx.HTTPError)
    built_once(nova, stack, name)


def test_temporal_restarted_while_a_create_is_on_a_host(nova: NovaClient, stack: Stack) -> None:
    """Temporal stops while the build is inside its host step and comes back on the same
    database file: the workers reconnect and the create ends ACTIVE, built once."""
    name = "temporal-restarted"
    hosts = [stack.host_state_dir(h.name) for h in stack.hosts]
    step = around("spawn_on_host", BEFORE)
    with held(stack, hosts, step, name):
        nova.create_ok(name=name)
        wait_until(lambda: holding(hosts, step, name), "the build on a host")
        stack.kill("temporal")
    built_once(nova, stack, name)


def test_api_killed_while_an_action_passes_its_gate(nova: NovaClient, stack: Stack) -> None:
    """A stop was admitted (its state gate committed) when the API died: the client gets no
    answer, the stop happens all the same, recorded once."""
    name, control = "api-killed-stop", [stack.control_state_dir]
    server_id = nova.create_ok(name=name)
    settled(nova, server_id, "ACTIVE")
    step = around("begin_operation", AFTER)
    with held(stack, control, step, name):
        answers = in_background(lambda: nova.server_action(server_id, {"os-stop": None}))
        wait_until(lambda: holding(control, step, name), "the stop admitted")
        stack.kill("api")
        wait_until(lambda: answers, "the client to lose its request")
        assert isinstance(answers[0], httpx.HTTPError)
    settled(nova, server_id, "SHUTOFF")
    assert [a["action"] for a in nova.actions(server_id)] == ["stop", "create"]
    nova.delete_and_wait(server_id)
    assert leaks(stack, [server_id]) == {}


def test_temporal_restarted_during_a_resize_copy(nova: NovaClient, stack: Stack) -> None:
    """Temporal stops while a resize copies the disk to its destination: the resize goes on
    to VERIFY_RESIZE once it is back, and its confirm leaves the server on the destination
    only."""
    name = "temporal-resize"
    hosts = [stack.host_state_dir(h.name) for h in stack.hosts]
    server_id = nova.create_ok(name=name)
    source = settled(nova, server_id, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    step = around("receive_disk_on_host", BEFORE)
    with held(stack, hosts, step, name):
        act(nova, server_id, {"resize": {"flavorRef": "2"}})
        wait_until(lambda: holding(hosts, step, name), "the disk copy")
        stack.kill("temporal")
    dest = settled(nova, server_id, "VERIFY_RESIZE", timeout=90)["OS-EXT-SRV-ATTR:host"]
    act(nova, server_id, {"confirmResize": None})
    settled(nova, server_id, "ACTIVE")
    assert dest != source and where_defined(stack, server_id) == {dest}
    assert needing_attention(stack, server_id) == []
    nova.delete_and_wait(server_id)
    assert leaks(stack, [server_id]) == {}


def test_database_locked_while_a_create_finishes(nova: NovaClient, stack: Stack) -> None:
    """SQLite locked by another writer as the create records its end: the step waits, gives
    up after its lock timeout and is retried; once the lock is gone the create ends ACTIVE,
    built once."""
    name, control = "db-locked", [stack.control_state_dir]
    step = around("finish_create", BEFORE)
    with held(stack, control, step, name):
        nova.create_ok(name=name)
        wait_until(lambda: holding(control, step, name), "the create about to finish")
        offset = stack.log_size("control")
        database = str(stack.database_url).removeprefix("sqlite:///")
        lock = sqlite3.connect(database, timeout=30, isolation_level=None)
        try:
            lock.execute("BEGIN IMMEDIATE")  # every other writer waits, then gives up
            clear_faults(stack.control_state_dir, step, scope=name)
            wait_until(
                lambda: "database is locked" in stack.log_path("control").read_text()[offset:],
                "the step refused by the locked database",
            )
        finally:
            lock.execute("ROLLBACK")
            lock.close()
    [server] = [s for s in nova.servers() if s["name"] == name]
    nova.wait_status(server["id"], "ACTIVE")
    [create] = nova.actions(server["id"])
    events = [e["event"] for e in nova.action(server["id"], create["request_id"])["events"]]
    assert events.count("finish_create") == 1, events  # refused, retried, recorded once
    built_once(nova, stack, name)
