"""ResizeServer and RebuildServer, branch by branch, against stand-in activities: the steps in
order, each undo in reverse after a failure, the same-host path, the confirm window, a decision
only while it waits, a delete before and after VERIFY_RESIZE; a rebuild and its failure."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError

from api import operations
from tests.workflows.requests import begin_input, move_input
from tests.workflows.standins import (
    StandInActivities,
    default_answer,
    held_until,
    host_failure,
    run_workers,
)
from workflows.contracts import (
    DELETE_COMING,
    MoveResult,
    OperationInput,
    ResizeDecision,
    ScheduleResult,
)

FORWARD = [
    "begin_operation",
    "plan_move",
    "claim_destination",
    "advance_move",
    "power_action_on_host",  # stop on the source
    "receive_disk_on_host",
    "advance_move",
    "spawn_on_host",  # define and start on the destination
    "finish_move",
]


def moving(
    address: str,
    standins: StandInActivities,
    then: Callable[[Client, WorkflowHandle[Any, MoveResult]], Awaitable[Any]],
    action: str = "resize",
    **settings: float | bool,
) -> Any:
    """Start a move the API's way, then run `then` with its handle."""

    async def scenario(client: Client) -> Any:
        begin = begin_input(str(uuid.uuid4()), action, flavor_id="2")
        await operations.start_move(client, begin, move_input(begin, **settings), "p1")
        handle = client.get_workflow_handle(begin.workflow_id, result_type=MoveResult)
        return await then(client, handle)

    return asyncio.run(run_workers(address, standins, scenario))


async def verify_resize(handle: WorkflowHandle[Any, MoveResult]) -> None:
    """Wait until the move waits for a decision (its phase says so)."""
    for _ in range(200):
        if (await handle.query("phase")).startswith("VERIFY_RESIZE"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the move never reached VERIFY_RESIZE")


def test_resize_then_confirm_in_order(temporal_address: str) -> None:
    standins = StandInActivities()

    async def confirm(client: Client, handle: WorkflowHandle[Any, MoveResult]) -> MoveResult:
        await verify_resize(handle)
        await handle.execute_update("confirm", ResizeDecision(user_id="alice", project_id="p1"))
        return await handle.result()

    result = moving(temporal_address, standins, confirm)
    assert result.status == "CONFIRMED" and result.host == "host-b"
    assert standins.names() == [*FORWARD, "begin_operation", "destroy_on_host", "confirm_move"]
    stop, spawn = standins.called("power_action_on_host")[0], standins.called("spawn_on_host")[0]
    assert (stop.host, stop.arg.action) == ("host-a", "stop")
    assert spawn.host == "host-b" and spawn.arg.resources.memory_mb == 2048 and spawn.arg.start
    assert standins.called("destroy_on_host")[0].host == "host-a"  # the source, once confirmed
    assert standins.called("claim_destination")[0].arg.exclude_hosts == ["host-a"]


def test_revert_cleans_the_destination_and_starts_the_source(temporal_address: str) -> None:
    standins = StandInActivities()

    async def revert(client: Client, handle: WorkflowHandle[Any, MoveResult]) -> MoveResult:
        await verify_resize(handle)
        await handle.execute_update("revert", ResizeDecision())
        return await handle.result()

    result = moving(temporal_address, standins, revert)
    assert result.status == "REVERTED" and result.host == "host-a"
    tail = standins.calls[len(FORWARD) :]
    assert [(c.name, c.host) for c in tail] == [
        ("begin_operation", None),
        ("destroy_on_host", "host-b"),
        ("power_action_on_host", "host-a"),
        ("revert_move", None),
    ]
    assert tail[2].arg.action == "start"


def test_a_failure_on_the_destination_undoes_every_step_in_reverse(
    temporal_address: str,
) -> None:
    standins = StandInActivities()
    standins.on("spawn_on_host", host_failure())

    async def fails(client: Client, handle: WorkflowHandle[Any, MoveResult]) -> str:
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        return str(failure.value.cause)

    message = moving(temporal_address, standins, fails)
    assert "resize failed and was rolled back" in message and "define failed" in message
    undo = [(c.name, c.host) for c in standins.calls[FORWARD.index("spawn_on_host") + 1 :]]
    assert undo == [
        ("destroy_on_host", "host-b"),  # what was put on the destination
        ("power_action_on_host", "host-a"),  # the guest started again on the source
        ("release_claim", None),  # the destination's claim
        ("fail_move", None),  # the growth's quota, the migration in error
    ]


def same_host_move(
    address: str, decision: str, standins: StandInActivities | None = None
) -> tuple[MoveResult, StandInActivities]:
    """A resize the scheduler keeps on its host, to VERIFY_RESIZE, then `decision`."""
    standins = standins or StandInActivities()
    standins.on("claim_destination", lambda arg, _: ScheduleResult("host-a", arg.claim_id))

    async def decide(client: Client, handle: WorkflowHandle[Any, MoveResult]) -> MoveResult:
        await verify_resize(handle)
        await handle.execute_update(decision, ResizeDecision())
        return await handle.result()

    return moving(address, standins, decide, allow_same_host=True), standins


def test_resize_to_the_same_host_redefines_it_there(temporal_address: str) -> None:
    result, standins = same_host_move(temporal_address, "revert")
    assert result.status == "REVERTED"
    assert standins.called("claim_destination")[0].arg.exclude_hosts == []
    assert "receive_disk_on_host" not in standins.names()  # the disk stays where it is
    assert "destroy_on_host" not in standins.names()
    spawns = standins.called("spawn_on_host")
    assert [s.host for s in spawns] == ["host-a", "host-a"]
    assert [s.arg.resources.memory_mb for s in spawns] == [2048, 512]  # new, then old again
    # The disk as it was is kept before it is grown, and put back by the revert.
    assert [s.arg.original_disk for s in spawns] == ["keep", "restore"]
    assert "drop_original_disk_on_host" not in standins.names()


def test_a_same_host_confirm_deletes_the_disk_kept_for_a_revert(temporal_address: str) -> None:
    result, standins = same_host_move(temporal_address, "confirm")
    assert result.status == "CONFIRMED" and result.host == "host-a"
    tail = [(c.name, c.host) for c in standins.calls[len(FORWARD) - 1 :]]
    assert tail == [
        ("begin_operation", None),
        ("drop_original_disk_on_host", "host-a"),
        ("confirm_move", None),
    ]
    assert "destroy_on_host" not in standins.names()  # the guest stays: it is the same host


def test_a_same_host_confirm_goes_on_when_its_host_cannot_drop_the_kept_disk(
    temporal_address: str,
) -> None:
    failing = StandInActivities()
    failing.on("drop_original_disk_on_host", host_failure())
    result, standins = same_host_move(temporal_address, "confirm", failing)
    assert result.status == "CONFIRMED"
    assert standins.names()[-1] == "confirm_move"


def test_the_confirm_window_confirms_by_itself(temporal_address: str) -> None:
    standins = StandInActivities()

    async def wait(client: Client, handle: WorkflowHandle[Any, MoveResult]) -> MoveResult:
        return await handle.result()

    result = moving(temporal_address, standins, wait, confirm_window_seconds=0.5)
    assert result.status == "CONFIRMED"
    [_, decision] = standins.called("begin_operation")
    assert decision.arg.action == "confirmResize"
    assert decision.arg.user_id == "resize_confirm_window"


def test_a_decision_is_refused_until_it_waits_for_one(temporal_address: str) -> None:
    standins = StandInActivities()
    release, inside = asyncio.Event(), asyncio.Event()
    standins.on("receive_disk_on_host", held_until(release, inside, "receive_disk_on_host"))

    async def early(client: Client, handle: WorkflowHandle[Any, MoveResult]) -> str:
        await inside.wait()
        try:
            await handle.execute_update("confirm", ResizeDecision())
        except WorkflowUpdateFailedError as error:
            refused = str(error.cause)
        else:
            refused = "accepted"
        release.set()
        await verify_resize(handle)
        await handle.execute_update("confirm", ResizeDecision())
        # Only one decision: a revert after the confirm is refused too.
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update("revert", ResizeDecision())
        await handle.result()
        return refused

    assert "not waiting for a confirm or a revert" in moving(temporal_address, standins, early)
    assert [c.arg.action for c in standins.called("begin_operation")] == [
        "resize",
        "confirmResize",
    ]


def test_a_delete_while_it_waits_cleans_the_source_first(temporal_address: str) -> None:
    standins = StandInActivities()

    async def delete(client: Client, handle: WorkflowHandle[Any, MoveResult]) -> MoveResult:
        await verify_resize(handle)
        await handle.signal(DELETE_COMING)
        await handle.cancel()
        return await handle.result()

    result = moving(temporal_address, standins, delete)
    assert result.status == "CONFIRMED_FOR_DELETE"
    assert standins.names()[len(FORWARD) :] == ["destroy_on_host", "confirm_move"]
    assert standins.called("destroy_on_host")[0].host == "host-a"


def test_a_delete_during_the_copy_rolls_back_even_if_the_copy_ends(
    temporal_address: str,
) -> None:
    """The delete's cancel can be absorbed by a step that completes anyway; its signal is not."""
    standins = StandInActivities()
    release, inside = asyncio.Event(), asyncio.Event()
    standins.on("receive_disk_on_host", held_until(release, inside, "receive_disk_on_host"))

    async def delete(client: Client, handle: WorkflowHandle[Any, MoveResult]) -> str:
        await inside.wait()
        await handle.signal(DELETE_COMING)
        release.set()  # the copy completes before it hears of any cancel
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        return type(failure.value.cause).__name__

    assert moving(temporal_address, standins, delete) == "CancelledError"
    names = standins.names()
    assert "spawn_on_host" not in names and "finish_move" not in names
    assert names[-4:] == ["destroy_on_host", "power_action_on_host", "release_claim", "fail_move"]


# ------------------------------------------------------------ rebuild


def rebuilding(address: str, standins: StandInActivities) -> Any:
    async def scenario(client: Client) -> Any:
        begin = begin_input(str(uuid.uuid4()), "rebuild", image_id="img")
        inp = OperationInput(begin.ctx.server_id, "rebuild", host_pickup_seconds=1.0)
        await operations.start_action(client, begin, inp, "p1", workflow="RebuildServer")
        handle = client.get_workflow_handle(begin.workflow_id)
        try:
            return await handle.result()
        except WorkflowFailureError as failure:
            return failure.cause

    return asyncio.run(run_workers(address, standins, scenario))


def test_rebuild_recreates_the_disk_and_the_domain_where_it_is(temporal_address: str) -> None:
    standins = StandInActivities()
    rebuilding(temporal_address, standins)
    assert standins.names() == [
        "begin_operation",
        "plan_rebuild",
        "destroy_on_host",
        "spawn_on_host",
        "end_operation",
    ]
    assert {c.host for c in standins.calls if c.host} == {"host-a"}
    end = standins.called("end_operation")[0].arg
    assert end.action == "rebuild" and end.error is None and end.power_state == 1


def test_a_failed_rebuild_marks_the_server_error(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on("spawn_on_host", host_failure())
    failure = rebuilding(temporal_address, standins)
    assert "Rebuild failed" in str(failure)
    end = standins.called("end_operation")[0].arg
    assert end.mark_error and "define failed" in end.error


def test_a_refused_decision_leaves_the_confirm_window_running(temporal_address: str) -> None:
    """A user's confirm refused by its gate (locked, ...) does not stop the window; an
    auto-confirm refused in turn (a reset state) leaves the move waiting for a person."""
    standins = StandInActivities()
    gates: list[str] = []

    def gate(arg: Any, host: str | None) -> Any:
        gates.append(arg.action)
        if arg.action == "confirmResize" and arg.user_id == "alice":
            raise ApplicationError("Instance x is locked", type="Conflict", non_retryable=True)
        return default_answer("begin_operation", arg, host)

    standins.on("begin_operation", gate)

    async def refused_then_auto(client: Client, handle: WorkflowHandle[Any, MoveResult]) -> Any:
        await verify_resize(handle)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update("confirm", ResizeDecision(user_id="alice", is_admin=False))
        return await handle.result()

    result = moving(temporal_address, standins, refused_then_auto, confirm_window_seconds=1.0)
    assert result.status == "CONFIRMED"
    assert gates == ["resize", "confirmResize", "confirmResize"]  # alice's, then the window's
