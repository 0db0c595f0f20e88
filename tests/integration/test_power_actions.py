"""Server actions on the real stack (Temporal, worker processes, libvirt's test driver, the API
over HTTP): os-stop, os-start, reboot, pause, unpause, suspend, resume, lock, unlock and
os-resetState, each through its ServerAction workflow with the state gate as its first step."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from hypervisor.faults import clear_faults, is_holding, set_fault
from tests.integration.client import NovaClient, refused, wait_until
from tests.integration.leaks import domains_on_hosts, leaks
from tests.integration.test_temporal_ui import visible
from workers.devstack import Stack


def act(nova: NovaClient, server_id: str, body: dict[str, Any], admin: bool = False) -> str:
    """Send the action, expect 202 with no body; returns its request id."""
    response = nova.server_action(server_id, body, admin=admin)
    assert response.status_code == 202, (body, response.text)
    assert response.content == b""
    return response.headers["x-openstack-request-id"]


def settled(nova: NovaClient, server_id: str, status: str) -> dict[str, Any]:
    """The server once its action is over: `status` and no task running."""

    def done() -> dict[str, Any] | None:
        shown = nova.show(server_id)
        over = shown["status"] == status and shown["OS-EXT-STS:task_state"] is None
        return shown if over else None

    return wait_until(done, f"{server_id} to settle in {status}", timeout=60)


def hypervisor_state(nova: NovaClient, server_id: str) -> str:
    """What libvirt on the server's host says (diagnostics are asked on the host; their
    `state` is Nova's standard format's, 2.48)."""
    response = nova.admin.get(
        f"/v2.1/servers/{server_id}/diagnostics",
        headers={"OpenStack-API-Version": "compute 2.48"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["state"])


def hold_power_steps(stack: Stack) -> None:
    for host in stack.hosts:
        set_fault(stack.host_state_dir(host.name), "power", "hold")


def release_power_steps(stack: Stack) -> None:
    for host in stack.hosts:
        clear_faults(stack.host_state_dir(host.name), "power")


def holding(stack: Stack) -> bool:
    return any(is_holding(stack.host_state_dir(h.name), "power") for h in stack.hosts)


# Each action, the status and power state it leaves, and what libvirt reports then.
CYCLE = [
    ({"os-stop": None}, "SHUTOFF", 4, "shutdown", "stop"),
    ({"os-start": None}, "ACTIVE", 1, "running", "start"),
    ({"reboot": {"type": "Soft"}}, "ACTIVE", 1, "running", "reboot"),
    ({"reboot": {"type": "HARD"}}, "ACTIVE", 1, "running", "reboot"),
    ({"pause": None}, "PAUSED", 3, "paused", "pause"),
    ({"unpause": {}}, "ACTIVE", 1, "running", "unpause"),
    ({"suspend": None}, "SUSPENDED", 4, "shutdown", "suspend"),
    ({"resume": None}, "ACTIVE", 1, "running", "resume"),
    ({"os-stop": None}, "SHUTOFF", 4, "shutdown", "stop"),
    ({"reboot": {"type": "hard"}}, "ACTIVE", 1, "running", "reboot"),  # a hard reboot starts it
]


def test_every_power_action_in_turn(nova: NovaClient, server: str) -> None:
    for body, status, power, libvirt_state, action in CYCLE:
        request_id = act(nova, server, body)
        shown = settled(nova, server, status)
        assert shown["OS-EXT-STS:power_state"] == power, (body, shown)
        assert hypervisor_state(nova, server) == libvirt_state, body
        recorded = nova.action(server, request_id)
        assert recorded["action"] == action and recorded["message"] is None, recorded
        events = {e["event"]: e["result"] for e in recorded["events"]}
        assert events[f"begin_{action}"] == "Success", events
        assert events[f"end_{action}"] == "Success", events
        host_steps = [e for e in events if "@" in e]
        assert host_steps and all(events[e] == "Success" for e in host_steps), events


def test_the_status_shows_the_running_task(nova: NovaClient, server: str, stack: Stack) -> None:
    hold_power_steps(stack)
    try:
        act(nova, server, {"reboot": {"type": "HARD"}})
        wait_until(lambda: holding(stack), "the reboot to reach the host")
        shown = nova.show(server)
        assert shown["status"] == "HARD_REBOOT"
        assert shown["OS-EXT-STS:task_state"] == "rebooting_hard"
    finally:
        release_power_steps(stack)
    settled(nova, server, "ACTIVE")


WRONG_STATE = [
    ({"os-start": None}, "vm_state active"),
    ({"unpause": None}, "vm_state active"),
    ({"resume": None}, "vm_state active"),
]


def test_an_action_from_a_state_nova_refuses_is_a_409(
    nova: NovaClient, server: str, stack: Stack
) -> None:
    before = nova.show(server)
    for body, named in WRONG_STATE:
        message = refused(nova.server_action(server, body), 409, named, server)
        assert message.startswith(f"Cannot '{next(iter(body)).removeprefix('os-')}'"), message
    act(nova, server, {"os-stop": None})
    settled(nova, server, "SHUTOFF")
    for body in ({"os-stop": None}, {"reboot": {"type": "SOFT"}}, {"pause": None}):
        refused(nova.server_action(server, body), 409, "vm_state stopped")
    after = nova.show(server)
    assert after["OS-EXT-STS:vm_state"] == "stopped" and before["id"] == after["id"]
    # Refused requests record nothing: the actions are create and stop only; and their
    # workflows, refused at their gate, have ended (none is left running).
    assert [a["action"] for a in nova.actions(server)] == ["stop", "create"]
    running = f'ServerId = "{server}" AND ExecutionStatus = "Running"'
    wait_until(lambda: visible(stack, running) == [], "the refused workflows to end")


def test_an_action_while_another_runs_is_a_409_naming_the_task(
    nova: NovaClient, server: str, stack: Stack
) -> None:
    hold_power_steps(stack)
    try:
        act(nova, server, {"os-stop": None})
        for body in ({"reboot": {"type": "SOFT"}}, {"reboot": {"type": "HARD"}}, {"pause": None}):
            refused(nova.server_action(server, body), 409, "task_state powering-off")
    finally:
        release_power_steps(stack)
    settled(nova, server, "SHUTOFF")


def test_conflicting_actions_at_once_one_wins(nova: NovaClient, server: str, stack: Stack) -> None:
    hold_power_steps(stack)  # the winner stays in its task while the others try
    bodies = [{"os-stop": None}, {"reboot": {"type": "SOFT"}}] * 4
    try:
        with ThreadPoolExecutor(len(bodies)) as pool:
            answers = list(pool.map(lambda b: nova.server_action(server, b), bodies))
    finally:
        release_power_steps(stack)
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] + [409] * (len(bodies) - 1), [a.text for a in answers]
    winner = next(b for b, a in zip(bodies, answers, strict=True) if a.status_code == 202)
    settled(nova, server, "SHUTOFF" if "os-stop" in winner else "ACTIVE")
    assert len(nova.actions(server)) == 2  # create and the winner


def test_a_locked_server_refuses_its_owner_but_not_an_admin(nova: NovaClient, server: str) -> None:
    act(nova, server, {"lock": {"locked_reason": "maintenance window"}})
    shown = nova.show(server, admin=False)
    assert shown["locked"] is True and shown["locked_reason"] == "maintenance window"
    refused(nova.server_action(server, {"os-stop": None}), 409, f"Instance {server} is locked")
    refused(nova.http.delete(f"/v2.1/servers/{server}"), 409, "locked")
    metadata = f"/v2.1/servers/{server}/metadata"
    refused(nova.http.post(metadata, json={"metadata": {"a": "1"}}), 409, "locked")
    refused(nova.http.delete(f"{metadata}/a"), 409, "locked")
    assert nova.admin.post(metadata, json={"metadata": {"a": "1"}}).status_code == 200
    act(nova, server, {"os-stop": None}, admin=True)  # an admin acts on a locked server
    settled(nova, server, "SHUTOFF")
    act(nova, server, {"unlock": None})  # the owner's project locked it: it may unlock
    assert nova.show(server)["locked"] is False
    act(nova, server, {"os-start": None})
    settled(nova, server, "ACTIVE")


def test_a_lock_by_an_admin_is_lifted_only_by_an_admin(
    nova: NovaClient, server: str, stack: Stack
) -> None:
    outsider = httpx.Client(base_url=stack.api_url, headers={"X-Auth-Token": "admin:ops"})
    try:
        response = outsider.post(f"/v2.1/servers/{server}/action", json={"lock": None})
        assert response.status_code == 202, response.text
    finally:
        outsider.close()
    refused(nova.server_action(server, {"unlock": None}), 403, "admin")
    assert nova.show(server)["locked"] is True
    act(nova, server, {"unlock": None}, admin=True)
    assert nova.show(server)["locked"] is False


def test_reset_state_is_for_admins(nova: NovaClient, server: str) -> None:
    refused(nova.server_action(server, {"os-resetState": {"state": "error"}}), 403)
    assert nova.status(server) == "ACTIVE"
    act(nova, server, {"os-resetState": {"state": "error"}}, admin=True)
    assert nova.status(server) == "ERROR"
    act(nova, server, {"os-resetState": {"state": "active"}}, admin=True)
    assert nova.status(server) == "ACTIVE"


BAD_ARGUMENTS = [
    ({"reboot": None}, "reboot"),
    ({"reboot": {}}, "reboot.type"),
    ({"reboot": {"type": "WARM"}}, "reboot.type"),
    ({"os-stop": {"force": True}}, "os-stop.force"),
    ({"lock": {"locked_reason": 5}}, "lock.locked_reason"),
    ({"lock": {"locked_reason": "x" * 256}}, "lock.locked_reason"),
    ({"os-resetState": {"state": "paused"}}, "os-resetState.state"),
    ({"os-resetState": None}, "os-resetState"),
]


def test_bad_arguments_are_a_400_naming_the_field(nova: NovaClient, server: str) -> None:
    for body, named in BAD_ARGUMENTS:
        refused(nova.server_action(server, body, admin=True), 400, named)
    assert [a["action"] for a in nova.actions(server)] == ["create"]


def test_another_projects_server_is_not_found(nova: NovaClient, server: str, stack: Stack) -> None:
    stranger = NovaClient(stack.api_url, user="mallory", project="elsewhere")
    try:
        for body in ({"os-stop": None}, {"lock": None}):
            refused(stranger.server_action(server, body), 404, server)
        refused(stranger.http.delete(f"/v2.1/servers/{server}"), 404, server)
    finally:
        stranger.close()
    assert nova.status(server) == "ACTIVE"


@pytest.mark.parametrize(
    "bodies,status",
    [
        ([{"os-stop": None}], "SHUTOFF"),
        ([{"pause": None}], "PAUSED"),
        ([{"suspend": None}], "SUSPENDED"),
        ([{"lock": None}], "ACTIVE"),
    ],
)
def test_delete_works_from_every_state(
    nova: NovaClient, stack: Stack, bodies: list[dict[str, Any]], status: str
) -> None:
    server_id = nova.create_ok(name="doomed")
    nova.wait_status(server_id, "ACTIVE")
    for body in bodies:
        act(nova, server_id, body)
    settled(nova, server_id, status)
    response = nova.admin.delete(f"/v2.1/servers/{server_id}")  # an admin passes a lock
    assert response.status_code == 204, response.text
    nova.wait_status(server_id, "GONE")
    assert leaks(stack, [server_id]) == {}
    assert not any(server_id in d for d in domains_on_hosts(stack).values())


def test_delete_during_an_action_cancels_it(nova: NovaClient, stack: Stack) -> None:
    server_id = nova.create_ok(name="doomed-mid-action")
    nova.wait_status(server_id, "ACTIVE")
    hold_power_steps(stack)
    try:
        stop_id = act(nova, server_id, {"os-stop": None})
        wait_until(lambda: holding(stack), "the stop to reach the host")
        nova.delete(server_id)
        # The delete cancels the stop, held on its host, which then ends as failed.
        wait_until(
            lambda: nova.action(server_id, stop_id)["message"] == "Error", "the stop cancelled"
        )
    finally:
        release_power_steps(stack)
    nova.wait_status(server_id, "GONE")
    assert leaks(stack, [server_id]) == {}


@pytest.mark.parametrize(
    "body,status,power,libvirt_state",
    [
        ({"os-stop": None}, "SHUTOFF", 4, "shutdown"),
        ({"reboot": {"type": "HARD"}}, "ACTIVE", 1, "running"),
        ({"suspend": None}, "SUSPENDED", 4, "shutdown"),
        ({"pause": None}, "PAUSED", 3, "paused"),
    ],
    ids=["stop", "hard-reboot", "suspend", "pause"],
)
def test_compute_worker_killed_inside_an_action(
    nova: NovaClient,
    stack: Stack,
    body: dict[str, Any],
    status: str,
    power: int,
    libvirt_state: str,
) -> None:
    """Killed while the host step runs and restarted: the step runs again on the same host
    (each is idempotent) and the action completes."""
    server_id = nova.create_ok(name="power-crash")
    nova.wait_status(server_id, "ACTIVE")
    host = nova.show(server_id)["OS-EXT-SRV-ATTR:host"]
    hold_power_steps(stack)
    restarted = next(h for h in stack.hosts if h.name == host)
    try:
        request_id = act(nova, server_id, body)
        wait_until(lambda: holding(stack), "the action to reach the host")
        stack.kill(f"compute-{host}")
    finally:
        release_power_steps(stack)
        stack.start_compute(restarted)
    shown = settled(nova, server_id, status)
    assert shown["OS-EXT-STS:power_state"] == power
    assert shown["OS-EXT-SRV-ATTR:host"] == host
    assert hypervisor_state(nova, server_id) == libvirt_state
    assert nova.action(server_id, request_id)["message"] is None
    nova.delete_and_wait(server_id)
    assert leaks(stack, [server_id]) == {}


def test_an_action_on_a_server_whose_host_is_down_is_a_409(nova: NovaClient, stack: Stack) -> None:
    server_id = nova.create_ok(name="host-down")
    nova.wait_status(server_id, "ACTIVE")
    host = nova.show(server_id)["OS-EXT-SRV-ATTR:host"]
    restarted = next(h for h in stack.hosts if h.name == host)
    stack.kill(f"compute-{host}")
    try:
        wait_until(lambda: nova.hypervisors()[host]["state"] == "down", f"{host} to be down", 30)
        refused(nova.server_action(server_id, {"os-stop": None}), 409, "is down")
        assert nova.status(server_id) == "ACTIVE"
    finally:
        stack.start_compute(restarted)
    nova.delete_and_wait(server_id)
