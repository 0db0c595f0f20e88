"""CreateServer, branch by branch, against stand-in activities: the happy path, each
reschedule, each compensation path, and a cancel during each step."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError

from api import operations
from novaflow.errors import OverQuota
from tests.workflows.requests import PICKUP, reserve_input
from tests.workflows.standins import (
    HOSTS,
    StandInActivities,
    default_answer,
    held_until,
    host_failure,
    refuse,
    run_workers,
)
from workflows.contracts import CreateServerResult, HostStatus, ReserveInput, operation_workflow_id


async def start(
    client: Client, reserve: ReserveInput, attempts: int = 3
) -> WorkflowHandle[Any, Any]:
    await operations.start_create(client, reserve, attempts, PICKUP)
    first = reserve.servers[0].server_id
    return client.get_workflow_handle(
        operation_workflow_id(first, "create", reserve.request.request_id),
        result_type=CreateServerResult,
    )


def create(
    address: str, standins: StandInActivities, hosts: tuple[str, ...] = HOSTS, attempts: int = 3
) -> tuple[CreateServerResult | BaseException, list[str]]:
    async def scenario(client: Client) -> CreateServerResult | BaseException:
        handle = await start(client, reserve_input(), attempts)
        try:
            return await handle.result()
        except WorkflowFailureError as failure:
            return failure.cause

    return asyncio.run(run_workers(address, standins, scenario, hosts)), standins.names()


def test_the_happy_path(temporal_address: str) -> None:
    standins = StandInActivities()
    result, names = create(temporal_address, standins)
    assert isinstance(result, CreateServerResult) and result.status == "ACTIVE"
    assert result.host == "host-a"
    assert names == ["reserve_quota", "schedule", "allocate_network", "spawn_on_host",
                     "finish_create"]  # fmt: skip
    assert standins.called("spawn_on_host")[0].host == "host-a"


def test_a_host_failure_reschedules_on_the_next_host(temporal_address: str) -> None:
    standins = StandInActivities()
    fail = host_failure()
    standins.on(
        "spawn_on_host",
        lambda a, h: fail(a, h) if h == "host-a" else default_answer("spawn_on_host", a, h),
    )
    result, names = create(temporal_address, standins)
    assert isinstance(result, CreateServerResult) and result.host == "host-b"
    # host-a's part is given back (domain, then claim) before host-b is tried.
    assert names == ["reserve_quota", "schedule", "allocate_network", "spawn_on_host",
                     "destroy_on_host", "release_claim", "schedule", "spawn_on_host",
                     "finish_create"]  # fmt: skip
    second = standins.called("schedule")[1].arg
    assert second.exclude_hosts == ["host-a"] and second.attempt == 2
    assert standins.called("destroy_on_host")[0].host == "host-a"


def test_every_host_failing_compensates_everything(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on("spawn_on_host", host_failure())
    result, names = create(temporal_address, standins)
    assert isinstance(result, ApplicationError) and result.type == "MaxRetriesExceeded"
    assert "host-a" in result.message and "host-c" in result.message
    assert names[-3:] == ["release_network", "release_quota", "fail_create"]
    assert names.count("destroy_on_host") == 3 and names.count("release_claim") == 3
    assert "finish_create" not in names
    assert "Exceeded maximum number of retries" in standins.called("fail_create")[0].arg.message


def test_a_build_aborted_is_not_rescheduled(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on("spawn_on_host", refuse("bad XML", "BuildAborted"))
    result, names = create(temporal_address, standins)
    assert isinstance(result, ApplicationError) and result.type == "BuildAborted"
    assert names == ["reserve_quota", "schedule", "allocate_network", "spawn_on_host",
                     "destroy_on_host", "release_claim", "release_network", "release_quota",
                     "fail_create"]  # fmt: skip


def test_no_valid_host_compensates_what_was_taken(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on("schedule", refuse("No valid host was found.", "NoValidHost"))
    result, names = create(temporal_address, standins)
    assert isinstance(result, ApplicationError) and result.type == "NoValidHost"
    assert names == ["reserve_quota", "schedule", "release_claim", "release_quota",
                     "fail_create"]  # fmt: skip


def test_over_quota_is_refused_by_the_update_and_nothing_runs(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on("reserve_quota", refuse("Quota exceeded for cores", "OverQuota"))

    async def scenario(client: Client) -> None:
        reserve = reserve_input()
        with pytest.raises(OverQuota, match="Quota exceeded for cores"):
            await start(client, reserve)
        handle = client.get_workflow_handle(
            operation_workflow_id(
                reserve.servers[0].server_id, "create", reserve.request.request_id
            ),
            result_type=CreateServerResult,
        )
        assert (await handle.result()).status == "REJECTED"

    asyncio.run(run_workers(temporal_address, standins, scenario))
    assert standins.names() == ["reserve_quota"]


def test_a_host_that_takes_no_step_and_is_down_is_left_for_the_next(
    temporal_address: str,
) -> None:
    standins = StandInActivities()
    standins.on("check_host", lambda _, __: HostStatus(up=False))
    result, names = create(temporal_address, standins, hosts=("host-b", "host-c"))
    assert isinstance(result, CreateServerResult) and result.host == "host-b"
    # Asked once for the build that host-a never took, once for its undo, which host-a never
    # takes either: the undo is not waited for (host-a's reaper removes what is there).
    assert [c.arg.host for c in standins.called("check_host")] == ["host-a", "host-a"]
    assert names.index("release_claim") < names.index("spawn_on_host")


@pytest.mark.parametrize("step", ["schedule", "allocate_network", "spawn_on_host"])
def test_a_cancel_during_each_step_compensates_in_reverse(temporal_address: str, step: str) -> None:
    standins = StandInActivities()
    inside, release = asyncio.Event(), asyncio.Event()
    standins.on(step, held_until(release, inside, step))

    async def scenario(client: Client) -> BaseException | None:
        handle = await start(client, reserve_input())
        await inside.wait()
        await handle.cancel()  # what a DELETE does first
        try:
            await handle.result()
        except WorkflowFailureError as failure:
            return failure.cause
        return None

    cause = asyncio.run(run_workers(temporal_address, standins, scenario))
    assert isinstance(cause, CancelledError)
    names = standins.names()
    after = names[names.index(step) + 1 :]
    assert after[-2:] == ["release_quota", "fail_create"], names
    assert "finish_create" not in names
    if step in ("allocate_network", "spawn_on_host"):
        assert "release_network" in after and "release_claim" in after
    if step == "spawn_on_host":
        assert after.index("destroy_on_host") < after.index("release_claim")
    assert "being deleted" in standins.called("fail_create")[0].arg.message
