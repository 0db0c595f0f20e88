"""Crash safety beyond the matrix (test_crash_matrix.py kills every step of every operation
before and after its side effect): a create's first write and the request's deadline, a host
that stays down, a kill while a failed build compensates.

A step is held with a fault-injection 'hold' (the worker is really inside that activity), the
worker is killed, the hold released, the worker restarted. Temporal times the lost activity out
and runs it again; every step is idempotent, so the retry completes what the dead one began.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from hypervisor.faults import AFTER, BEFORE, around, clear_faults, is_holding, set_fault
from novaflow.config import Settings
from tests.integration.client import NovaClient, wait_until
from tests.integration.leaks import disks_on_hosts, domains_on_hosts, leaks
from workers.devstack import Stack

# The stack's (the default): longer than a killed worker's create takes to resume elsewhere
# (Temporal's workflow task timeout, 10 s), so that it can be back in time.
ACCEPT_WITHIN = Settings().accept_within_seconds


def event_started(nova: NovaClient, server_id: str, prefix: str) -> bool:
    """True once the server's create has reached the step (its earlier steps are recorded)."""
    actions = nova.actions(server_id)
    if not actions:
        return False
    events = [e["event"] for e in nova.action(server_id, actions[-1]["request_id"])["events"]]
    return any(e.startswith(prefix) for e in events)


@pytest.mark.parametrize("back", ["in time", "too late"])
def test_control_worker_killed_right_after_the_create_was_recorded(
    nova: NovaClient, stack: Stack, back: str
) -> None:
    """The create's first write (the server's row and its quota) committed, then its worker
    died before Temporal heard of it. A worker back in time finds that write and builds the
    server once; a worker back after the request's deadline, when the API has answered 503
    ("nothing was changed"), removes it: no server, no quota."""
    step = around("reserve_quota", AFTER)
    answer: list[httpx.Response] = []
    set_fault(stack.control_state_dir, step, "hold")
    try:
        posted = time.monotonic()
        thread = threading.Thread(target=lambda: answer.append(nova.create()), daemon=True)
        thread.start()
        wait_until(lambda: is_holding(stack.control_state_dir, step), f"a worker inside {step}")
        [recorded] = nova.servers()  # committed: listed, and its quota counted
        assert nova.usage()["instances"] == 1
        stack.kill("control")
    finally:
        clear_faults(stack.control_state_dir)
    if back == "too late":  # the request's own deadline: what the test waits for
        wait_until(
            lambda: time.monotonic() > posted + ACCEPT_WITHIN + 1,
            "the request's deadline",
            timeout=ACCEPT_WITHIN + 5,
        )
    stack.start_control()
    thread.join(timeout=60)
    [response] = answer

    if back == "in time":
        assert response.status_code == 202, response.text
        assert response.json()["server"]["id"] == recorded["id"]
        server = nova.wait_status(recorded["id"], "ACTIVE", timeout=90)
        assert nova.usage()["instances"] == 1 and len(server["addresses"]["private"]) == 1
        nova.delete_and_wait(recorded["id"])
    else:
        assert response.status_code == 503, response.text
        assert "expired" in response.json()["serviceUnavailable"]["message"]
        assert nova.servers() == []
    assert nova.usage() == {"instances": 0, "cores": 0, "ram": 0, "ports": 0, "floating_ips": 0}
    assert leaks(stack, [recorded["id"]]) == {}


def test_a_host_that_dies_during_a_build_and_stays_down(nova: NovaClient, stack: Stack) -> None:
    """The build moves on to another host instead of waiting for the dead one; the dead
    host's half-built domain is removed by its own worker once it is back."""
    for host in stack.hosts:
        set_fault(stack.host_state_dir(host.name), "start", "hold")
    server_id = nova.create_ok()
    wait_until(lambda: event_started(nova, server_id, "define_domain@"), "the domain defined")
    dead = nova.show(server_id)["OS-EXT-SRV-ATTR:host"]
    stack.kill(f"compute-{dead}")
    for h in stack.hosts:
        clear_faults(stack.host_state_dir(h.name))
    assert server_id in domains_on_hosts(stack)[dead]

    server = nova.wait_status(server_id, "ACTIVE", timeout=90)
    assert server["OS-EXT-SRV-ATTR:host"] != dead
    events = [
        e["event"]
        for e in nova.action(server_id, nova.actions(server_id)[-1]["request_id"])["events"]
    ]
    assert f"host_down@{dead}" in events  # the audit trail says why it was left there
    assert nova.hypervisors()[dead]["vcpus_used"] == 0  # the dead host's claim was given back
    assert nova.usage()["instances"] == 1 and nova.usage()["ports"] == 1

    stack.start_compute(next(h for h in stack.hosts if h.name == dead))
    wait_until(
        lambda: (
            server_id not in domains_on_hosts(stack)[dead]
            and server_id not in disks_on_hosts(stack)[dead]
        ),
        "the restarted host to reap the half-built domain and its disk",
    )
    assert server_id in domains_on_hosts(stack)[server["OS-EXT-SRV-ATTR:host"]]
    assert nova.status(server_id) == "ACTIVE"
    nova.delete_and_wait(server_id)
    assert leaks(stack, [server_id]) == {}


def test_control_worker_killed_while_a_failed_build_compensates(
    nova: NovaClient, stack: Stack
) -> None:
    for host in stack.hosts:
        set_fault(stack.host_state_dir(host.name), "start", "fail")
    set_fault(stack.control_state_dir, around("release_network", BEFORE), "hold")
    try:
        server_id = nova.create_ok()
        wait_until(
            lambda: (
                event_started(nova, server_id, f"undefine_domain@{stack.hosts[-1].name}")
                or _all_hosts_undone(nova, server_id, stack)
            ),
            "the hosts to be undone",
        )
        stack.kill("control")
    finally:
        clear_faults(stack.control_state_dir)
    stack.start_control()

    server = nova.wait_status(server_id, "ERROR", timeout=90)
    assert "Exceeded maximum number of retries" in server["fault"]["message"]
    wait_until(lambda: leaks(stack, [server_id]) == {}, "every resource to be given back")
    assert nova.usage()["instances"] == 0 and nova.usage()["ports"] == 0
    nova.delete_and_wait(server_id)


def _all_hosts_undone(nova: NovaClient, server_id: str, stack: Stack) -> bool:
    return all(event_started(nova, server_id, f"undefine_domain@{h.name}") for h in stack.hosts)
