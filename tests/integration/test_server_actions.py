"""POST /servers/{id}/action: the dispatch on the body's one key, and os-getConsoleOutput on
the real stack (its hosts run libvirt's test driver: no guest, so no console log, and their
answer is an empty output)."""

from __future__ import annotations

from typing import Any

from hypervisor.faults import set_fault
from tests.integration.client import NovaClient, refused, wait_until
from workers.devstack import Stack


def test_console_output_of_a_test_driver_server_is_empty(nova: NovaClient, server: str) -> None:
    for args in ({}, {"length": None}, {"length": -1}, {"length": 0}, {"length": 5}):
        response = nova.server_action(server, {"os-getConsoleOutput": args})
        assert response.status_code == 200, (args, response.text)
        assert response.json() == {"output": ""}
    # As in Nova, a string of digits is a length too; an admin may ask as well.
    response = nova.server_action(server, {"os-getConsoleOutput": {"length": "10"}}, admin=True)
    assert response.status_code == 200 and response.json() == {"output": ""}, response.text


BAD_BODIES: list[tuple[Any, str]] = [
    ({"os-bogusAction": None}, "Unknown action 'os-bogusAction'"),
    ({}, "body"),
    ({"os-getConsoleOutput": {}, "os-stop": None}, "body"),
    (["os-getConsoleOutput"], "body"),
    ("os-getConsoleOutput", "body"),
    (None, "body"),
    ({"os-getConsoleOutput": None}, "os-getConsoleOutput"),
    ({"os-getConsoleOutput": [1]}, "os-getConsoleOutput"),
    ({"os-getConsoleOutput": {"length": "abc"}}, "os-getConsoleOutput.length"),
    ({"os-getConsoleOutput": {"length": -2}}, "os-getConsoleOutput.length"),
    ({"os-getConsoleOutput": {"length": 1.5}}, "os-getConsoleOutput.length"),
    ({"os-getConsoleOutput": {"length": True}}, "os-getConsoleOutput.length"),
    ({"os-getConsoleOutput": {"length": "-5"}}, "os-getConsoleOutput.length"),
    ({"os-getConsoleOutput": {"lines": 5}}, "os-getConsoleOutput.lines"),
]


def test_every_bad_body_is_a_400_naming_the_field(nova: NovaClient, server: str) -> None:
    for body, named in BAD_BODIES:
        message = refused(nova.server_action(server, body), 400, named)
        assert message.startswith("Invalid input for field/attribute"), (body, message)


def test_a_server_without_a_host_is_a_409(nova: NovaClient, stack: Stack) -> None:
    for host in stack.hosts:
        set_fault(stack.host_state_dir(host.name), "start", "fail", f"injected: {host.name}")
    server_id = nova.create_ok()
    assert nova.wait_status(server_id, "ERROR")["OS-EXT-SRV-ATTR:host"] is None

    response = nova.server_action(server_id, {"os-getConsoleOutput": {"length": 10}})
    refused(response, 409, server_id, "no host")
    nova.delete_and_wait(server_id)


def test_another_projects_deleted_or_unknown_server_is_a_404(
    nova: NovaClient, stack: Stack, server: str
) -> None:
    stranger = NovaClient(stack.api_url, user="mallory", project=nova.project + "-other")
    try:
        response = stranger.server_action(server, {"os-getConsoleOutput": {}})
        refused(response, 404, server)
    finally:
        stranger.close()
    refused(nova.server_action("no-such-server", {"os-getConsoleOutput": {}}), 404)

    nova.delete_and_wait(server)
    refused(nova.server_action(server, {"os-getConsoleOutput": {}}), 404, server)


def test_a_server_whose_host_is_down_is_a_409_naming_the_host(
    nova: NovaClient, stack: Stack, server: str
) -> None:
    host = nova.show(server)["OS-EXT-SRV-ATTR:host"]
    stack.kill(f"compute-{host}")
    try:
        wait_until(lambda: nova.hypervisors()[host]["state"] == "down", f"{host} down")
        response = nova.server_action(server, {"os-getConsoleOutput": {}})
        refused(response, 409, host, server)
        diagnostics = nova.admin.get(f"/v2.1/servers/{server}/diagnostics")
        refused(diagnostics, 409, host, server)  # at once, not a 503 after a timeout
    finally:
        stack.start_compute(next(h for h in stack.hosts if h.name == host))
    wait_until(lambda: nova.hypervisors()[host]["state"] == "up", f"{host} up")
    assert nova.console_output(server) == ""
