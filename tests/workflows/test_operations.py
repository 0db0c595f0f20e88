"""DeleteServer and ServerAction, branch by branch, against stand-in activities: the gate
(refused, joined, taken over), each host outcome, a cancel, and a parked step resumed each of
the three ways."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError

from api import operations
from novaflow.errors import Conflict
from tests.workflows.requests import begin_input, delete_input, operation_input
from tests.workflows.standins import (
    HOSTS,
    StandInActivities,
    default_answer,
    held_until,
    host_failure,
    refuse,
    run_workers,
)
from workflows.contracts import (
    DeleteServerResult,
    HostStatus,
    OperationResult,
    ServerPlacement,
    Ticket,
)
from workflows.parking import Decision


def delete(
    address: str, standins: StandInActivities, hosts: tuple[str, ...] = HOSTS
) -> DeleteServerResult:
    async def scenario(client: Client) -> DeleteServerResult:
        begin = begin_input(str(uuid.uuid4()), "delete")
        await operations.start_delete(client, begin, delete_input(begin), None)
        handle = client.get_workflow_handle(begin.workflow_id, result_type=DeleteServerResult)
        return await handle.result()

    return asyncio.run(run_workers(address, standins, scenario, hosts))


def test_delete_happy_path(temporal_address: str) -> None:
    standins = StandInActivities()
    result = delete(temporal_address, standins)
    assert result.host == "host-a" and not result.rejected
    assert standins.names() == ["begin_operation", "load_placement", "destroy_on_host",
                                "finish_delete"]  # fmt: skip


def test_delete_refused_by_its_gate_writes_nothing_more(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on("begin_operation", refuse("Instance x is locked"))

    async def scenario(client: Client) -> DeleteServerResult:
        begin = begin_input(str(uuid.uuid4()), "delete")
        with pytest.raises(Conflict, match="is locked"):
            await operations.start_delete(client, begin, delete_input(begin), None)
        handle = client.get_workflow_handle(begin.workflow_id, result_type=DeleteServerResult)
        return await handle.result()

    result = asyncio.run(run_workers(temporal_address, standins, scenario))
    assert result.rejected and standins.names() == ["begin_operation"]


def test_delete_cancels_the_running_operation_first(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on(
        "begin_operation",
        lambda a, _: Ticket(a.ctx.request_id, "host-a", running_workflow_id="server-x-create-1"),
    )
    delete(temporal_address, standins)
    assert standins.names()[:2] == ["begin_operation", "cancel_operation"]
    assert standins.called("cancel_operation")[0].arg.workflow_id == "server-x-create-1"


def test_delete_joined_by_another_does_nothing(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on("begin_operation", lambda a, _: Ticket(a.ctx.request_id, joined="server-x-d"))
    assert not delete(temporal_address, standins).rejected
    assert standins.names() == ["begin_operation"]


def test_delete_on_a_down_host_completes_in_the_database(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on("load_placement", lambda *_: ServerPlacement(host="host-a", host_up=False))
    delete(temporal_address, standins)
    assert standins.names() == ["begin_operation", "load_placement", "finish_delete"]


def test_delete_whose_host_dies_before_taking_the_step(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on("check_host", lambda *_: HostStatus(up=False))
    delete(temporal_address, standins, hosts=("host-b",))  # host-a takes nothing
    assert standins.names() == ["begin_operation", "load_placement", "check_host",
                                "finish_delete"]  # fmt: skip


# ------------------------------------------------------------------ ServerAction


def action(
    address: str,
    standins: StandInActivities,
    name: str,
    hosts: tuple[str, ...] = HOSTS,
    during: Any = None,
    **options: str,
) -> OperationResult | BaseException:
    async def scenario(client: Client) -> OperationResult | BaseException:
        begin = begin_input(str(uuid.uuid4()), name, **options)
        await operations.start_action(client, begin, operation_input(begin), "p1")
        handle = client.get_workflow_handle(begin.workflow_id, result_type=OperationResult)
        if during is not None:
            await during(client, handle)
        try:
            return await handle.result()
        except WorkflowFailureError as failure:
            return failure.cause

    return asyncio.run(run_workers(address, standins, scenario, hosts))


def test_an_action_on_its_host(temporal_address: str) -> None:
    standins = StandInActivities()
    result = action(temporal_address, standins, "stop")
    assert isinstance(result, OperationResult) and result.power_state == 4
    assert standins.names() == ["begin_operation", "power_action_on_host", "end_operation"]
    end = standins.called("end_operation")[0].arg
    assert end.error is None and end.power_state == 4
    assert end.host_step.event == "stop@host-a" and end.host_step.error is None


def test_an_action_without_a_host_step_ends_at_the_gate(temporal_address: str) -> None:
    standins = StandInActivities()
    result = action(temporal_address, standins, "lock", locked_reason="audit")
    assert isinstance(result, OperationResult) and result.status == "DONE"
    assert standins.names() == ["begin_operation"]
    assert standins.called("begin_operation")[0].arg.options == {"locked_reason": "audit"}


def test_an_action_refused_by_its_gate(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on(
        "begin_operation", refuse("Cannot 'start' instance x while it is in vm_state active")
    )

    async def scenario(client: Client) -> OperationResult:
        begin = begin_input(str(uuid.uuid4()), "start")
        with pytest.raises(Conflict, match="vm_state active"):
            await operations.start_action(client, begin, operation_input(begin), "p1")
        handle = client.get_workflow_handle(begin.workflow_id, result_type=OperationResult)
        return await handle.result()

    result = asyncio.run(run_workers(temporal_address, standins, scenario))
    assert result.status == "REJECTED" and standins.names() == ["begin_operation"]


def test_a_failed_host_step_ends_the_action_as_failed(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on("power_action_on_host", host_failure("domain crashed"))
    result = action(temporal_address, standins, "stop")
    assert isinstance(result, ApplicationError) and "domain crashed" in result.message
    end = standins.called("end_operation")[0].arg
    assert "domain crashed" in end.error and end.host_step.error == end.error


def test_a_host_that_never_takes_the_step(temporal_address: str) -> None:
    standins = StandInActivities()
    result = action(temporal_address, standins, "stop", hosts=("host-b",))
    assert isinstance(result, ApplicationError) and "did not take the step" in result.message
    assert standins.names() == ["begin_operation", "end_operation"]


def test_a_cancel_during_the_host_step(temporal_address: str) -> None:
    standins = StandInActivities()
    inside, release = asyncio.Event(), asyncio.Event()
    standins.on("power_action_on_host", held_until(release, inside, "power_action_on_host"))

    async def cancel(client: Client, handle: Any) -> None:
        await inside.wait()
        await handle.cancel()

    result = action(temporal_address, standins, "reboot", during=cancel)
    assert isinstance(result, CancelledError)
    assert "cancelled" in standins.called("end_operation")[0].arg.error


@pytest.mark.parametrize("decision", list(Decision))
def test_a_parked_step_resumes_as_decided(temporal_address: str, decision: Decision) -> None:
    """The host takes the step (heartbeats), its worker goes away and nobody picks the retry
    up: the action parks until a signal."""
    standins = StandInActivities()
    inside = asyncio.Event()
    attempts: list[int] = []

    async def dies_after_taking_it(arg: Any, host: str | None) -> Any:
        attempts.append(activity.info().attempt)
        if len(attempts) == 1:
            activity.heartbeat("taken")
            inside.set()
            await asyncio.sleep(3600)  # until its worker is shut down
        return default_answer("power_action_on_host", arg, host)

    standins.on("power_action_on_host", dies_after_taking_it)

    async def scenario(client: Client) -> OperationResult | BaseException:
        begin = begin_input(str(uuid.uuid4()), "stop")
        host_dies = asyncio.Event()

        async def host_a() -> None:
            await run_workers(client_address(client), standins, lambda _: host_dies.wait(),
                              hosts=("host-a",), control=False)  # fmt: skip

        dying = asyncio.create_task(host_a())
        await operations.start_action(client, begin, operation_input(begin), "p1")
        handle = client.get_workflow_handle(begin.workflow_id, result_type=OperationResult)
        await inside.wait()
        host_dies.set()
        await dying
        phase, deadline = "", asyncio.get_running_loop().time() + 30
        while not phase.startswith("parked: stop on host-a"):
            assert asyncio.get_running_loop().time() < deadline, f"never parked: {phase}"
            phase = await handle.query("phase")
            await asyncio.sleep(0.1)
        if decision == Decision.RETRY:  # the host is back first
            back = asyncio.Event()
            returned = asyncio.create_task(
                run_workers(
                    client_address(client),
                    standins,
                    lambda _: back.wait(),
                    hosts=("host-a",),
                    control=False,
                )  # fmt: skip
            )
            await handle.signal(decision.value)
            try:
                result: OperationResult | BaseException = await handle.result()
            finally:
                back.set()
                await returned
        else:
            await handle.signal(decision.value)
            try:
                result = await handle.result()
            except WorkflowFailureError as failure:
                result = failure.cause
        return result

    result = asyncio.run(run_workers(temporal_address, standins, scenario, hosts=()))
    end = standins.called("end_operation")[0].arg
    if decision == Decision.RETRY:
        assert isinstance(result, OperationResult) and result.power_state == 4
        assert end.error is None and len(attempts) == 2
    elif decision == Decision.ROLLBACK:
        assert isinstance(result, ApplicationError) and not end.mark_error
        assert end.error and len(attempts) == 1
    else:
        assert isinstance(result, ApplicationError) and result.type == "MarkedError"
        assert end.mark_error and "marked ERROR by an operator" in end.error


def client_address(client: Client) -> str:
    return str(client.service_client.config.target_host)
