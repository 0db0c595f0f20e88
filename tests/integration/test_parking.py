"""A host step whose outcome is unknown parks its operation: the host's compute worker took the
step (it heartbeated) and died, and nobody picked the retry up. The operation is then found by
a visibility query (`NeedsAttention = true`), says why in its phase, and resumes on a signal:
retry, rollback or mark-error (sent here with Temporal's Python client, the `temporal` CLI and
the ops CLI, the three ways an operator has)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client

from hypervisor.faults import clear_faults, is_holding, set_fault
from tests.integration.client import NovaClient, wait_until
from tests.integration.leaks import leaks
from tests.integration.test_power_actions import act, hypervisor_state, settled
from workers.devstack import Stack, temporal_binary


@dataclass
class Parked:
    server_id: str
    host: str
    workflow_id: str
    request_id: str
    restart_host: Callable[[], None]


def temporal_address(stack: Stack) -> str:
    return f"127.0.0.1:{stack.temporal_port}"


def needing_attention(stack: Stack, server_id: str) -> list[str]:
    async def run() -> list[str]:
        client = await Client.connect(
            temporal_address(stack), data_converter=stack.data_converter()
        )
        query = f'NeedsAttention = true AND ServerId = "{server_id}"'
        return [w.id async for w in client.list_workflows(query)]

    return asyncio.run(run())


def phase(stack: Stack, workflow_id: str) -> str:
    async def run() -> str:
        client = await Client.connect(
            temporal_address(stack), data_converter=stack.data_converter()
        )
        return str(await client.get_workflow_handle(workflow_id).query("phase"))

    return asyncio.run(run())


@pytest.fixture
def parked(nova: NovaClient, stack: Stack) -> Iterator[Parked]:
    """A stop parked on a host that died inside it; the host is restarted afterwards and the
    server deleted."""
    server_id = nova.create_ok(name="parked")
    host = nova.wait_status(server_id, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    dead = next(h for h in stack.hosts if h.name == host)
    state_dir = stack.host_state_dir(host)
    set_fault(state_dir, "power", "hold")
    restarted = False
    try:
        request_id = act(nova, server_id, {"os-stop": None})
        wait_until(lambda: is_holding(state_dir, "power"), "the stop to reach the host")
        stack.kill(f"compute-{host}")
        clear_faults(state_dir)
        [workflow_id] = wait_until(
            lambda: needing_attention(stack, server_id), "the stop to park", timeout=90
        )
        assert phase(stack, workflow_id).startswith("parked: stop on ")
        assert nova.show(server_id)["OS-EXT-STS:task_state"] == "powering-off"

        def restart_host() -> None:
            nonlocal restarted
            if not restarted:
                stack.start_compute(dead)
                restarted = True

        yield Parked(server_id, host, workflow_id, request_id, restart_host)
    finally:
        clear_faults(state_dir)
        if not restarted:
            stack.start_compute(dead)
    response = nova.admin.delete(f"/v2.1/servers/{server_id}")
    assert response.status_code == 204, response.text
    nova.wait_status(server_id, "GONE")
    assert leaks(stack, [server_id]) == {}


def signal_with_python(stack: Stack, workflow_id: str, name: str) -> None:
    async def run() -> None:
        client = await Client.connect(
            temporal_address(stack), data_converter=stack.data_converter()
        )
        await client.get_workflow_handle(workflow_id).signal(name)

    asyncio.run(run())


def test_retry_runs_the_step_again_once_the_host_is_back(
    nova: NovaClient, stack: Stack, parked: Parked
) -> None:
    parked.restart_host()
    signal_with_python(stack, parked.workflow_id, "retry")
    shown = settled(nova, parked.server_id, "SHUTOFF")
    assert shown["OS-EXT-STS:power_state"] == 4
    assert hypervisor_state(nova, parked.server_id) == "shutdown"
    wait_until(lambda: not needing_attention(stack, parked.server_id), "attention cleared")
    assert nova.action(parked.server_id, parked.request_id)["message"] is None


def test_rollback_gives_the_operation_up(nova: NovaClient, stack: Stack, parked: Parked) -> None:
    result = subprocess.run(
        [
            temporal_binary(),
            "workflow",
            "signal",
            "--address",
            temporal_address(stack),
            "--workflow-id",
            parked.workflow_id,
            "--name",
            "rollback",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    shown = settled(nova, parked.server_id, "ACTIVE")  # the stop did not happen, as recorded
    assert shown["OS-EXT-STS:vm_state"] == "active"
    wait_until(
        lambda: nova.action(parked.server_id, parked.request_id)["message"] == "Error",
        "the stop to end as failed",
    )


def test_mark_error_leaves_the_server_in_error(
    nova: NovaClient, stack: Stack, parked: Parked
) -> None:
    ops = Path(sys.executable).parent / "novaflow"
    result = subprocess.run(
        [str(ops), "ops", "mark-error", parked.server_id],
        capture_output=True,
        text=True,
        timeout=60,
        env={**stack.env, "NOVAFLOW_TEMPORAL_ADDRESS": temporal_address(stack)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert parked.workflow_id in result.stdout
    shown = settled(nova, parked.server_id, "ERROR")
    assert "marked ERROR by an operator" in shown["fault"]["message"]
    assert shown["OS-EXT-SRV-ATTR:host"] == parked.host
