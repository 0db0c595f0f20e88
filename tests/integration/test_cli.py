"""The ops CLI through its real entry point (the `novaflow` console script) against the real
stack: server actions followed to their end, operations found and read from Temporal, and
errors as one line with exit status 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.client import NovaClient
from workers.devstack import Stack

NOVAFLOW = Path(sys.executable).parent / "novaflow"


def novaflow(
    stack: Stack, *args: str, token: str = "admin:cli"
) -> subprocess.CompletedProcess[str]:
    env = {
        **stack.env,
        "NOVAFLOW_API_URL": stack.api_url,
        "NOVAFLOW_TOKEN": token,
        "COLUMNS": "250",  # rich tables: whole ids on one line
    }
    return subprocess.run(
        [str(NOVAFLOW), *args], capture_output=True, text=True, timeout=120, env=env
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_server_actions_through_the_cli(nova: NovaClient, stack: Stack) -> None:
    token = f"{nova.user}:{nova.project}"
    server_id = nova.create_ok(name="cli-1")
    nova.wait_status(server_id, "ACTIVE")

    assert f"{server_id}: SHUTOFF" in ok(novaflow(stack, "server", "stop", server_id, token=token))
    assert f"{server_id}: ACTIVE" in ok(novaflow(stack, "server", "start", server_id, token=token))
    out = ok(novaflow(stack, "server", "reboot", "--hard", server_id, token=token))
    assert "reboot accepted (request req-" in out and f"{server_id}: ACTIVE" in out
    ok(novaflow(stack, "server", "lock", "--reason", "audit", server_id, token=token))
    shown = nova.show(server_id)
    assert shown["locked"] is True and shown["locked_reason"] == "audit"
    listed = ok(novaflow(stack, "server", "list", token=token))
    assert server_id in listed and "locked" in listed
    ok(novaflow(stack, "server", "unlock", server_id, token=token))
    assert (
        "False"
        in ok(novaflow(stack, "server", "show", server_id, token=token))
        .split("locked ")[1]
        .split("\n")[0]
    )

    # The operations, from Temporal: the stop is found by server and operation, and shown.
    found = ok(novaflow(stack, "ops", "list", "--server", server_id, "--operation", "stop"))
    assert f"server-{server_id}-stop-" in found and "completed" in found
    shown_op = ok(novaflow(stack, "ops", "show", server_id))  # its newest operation
    assert "steps" in shown_op and "begin_operation" in shown_op
    # Its phase, a query answer the worker encrypted: the CLI decodes it with the stack's key.
    assert "phase: " in shown_op
    nova.delete_and_wait(server_id)


def test_errors_are_one_line_and_exit_1(nova: NovaClient, stack: Stack) -> None:
    server_id = nova.create_ok(name="cli-2")
    nova.wait_status(server_id, "ACTIVE")
    token = f"{nova.user}:{nova.project}"
    cases = [
        (("server", "start", server_id), "409: Cannot 'start' instance"),
        (("server", "show", "no-such-server"), "404: Instance no-such-server could not be found"),
        (("ops", "retry", server_id), f"no parked operation found for {server_id}"),
        (("ops", "list", "--status", "sleeping"), "status: must be one of"),
        (("ops", "show", "server-nonexistent"), "no operation server-nonexistent"),
    ]
    for args, message in cases:
        result = novaflow(stack, *args, token=token)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    nova.delete_and_wait(server_id)


def test_resize_migrate_confirm_and_revert_through_the_cli(nova: NovaClient, stack: Stack) -> None:
    token = f"{nova.user}:{nova.project}"
    admin = f"admin:{nova.project}"
    server_id = nova.create_ok(name="cli-move")
    nova.wait_status(server_id, "ACTIVE")
    source = nova.show(server_id)["OS-EXT-SRV-ATTR:host"]

    out = ok(novaflow(stack, "server", "resize", server_id, "2", token=token))
    assert "resize accepted (request req-" in out and f"{server_id}: VERIFY_RESIZE" in out
    assert f"{server_id}: ACTIVE" in ok(
        novaflow(stack, "server", "confirm", server_id, token=token)
    )
    resized = nova.show(server_id)
    assert resized["flavor"]["id"] == "2" and resized["OS-EXT-SRV-ATTR:host"] != source

    moved_from = resized["OS-EXT-SRV-ATTR:host"]
    out = ok(novaflow(stack, "server", "migrate", server_id, "--host", source, token=admin))
    assert f"{server_id}: VERIFY_RESIZE" in out
    assert nova.show(server_id)["OS-EXT-SRV-ATTR:host"] == source
    assert f"{server_id}: ACTIVE" in ok(novaflow(stack, "server", "revert", server_id, token=token))
    assert nova.show(server_id)["OS-EXT-SRV-ATTR:host"] == moved_from
    # A second decision finds nothing waiting: one line, exit 1.
    refused = novaflow(stack, "server", "confirm", server_id, token=token)
    assert refused.returncode == 1 and "409" in refused.stderr
    nova.delete_and_wait(server_id)
