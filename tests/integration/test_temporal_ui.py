"""What an operator sees in the Temporal UI: readable ids, typed search attributes, a memo
with the request, summaries, activity names that say what they do, failures with their cause.
Also replays every finished history against the current workflow code (determinism)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer

import codec
from hypervisor.faults import set_fault
from tests.integration.client import NovaClient, wait_until
from workers.devstack import Stack
from workflows.registry import ALL_WORKFLOWS

HISTORY_DIR = Path(__file__).parent.parent / "replay" / "histories"


def visible(stack: Stack, query: str) -> list[str]:
    async def run() -> list[str]:
        client = await Client.connect(f"127.0.0.1:{stack.temporal_port}")
        return [w.id async for w in client.list_workflows(query)]

    return asyncio.run(run())


def test_operations_are_findable_and_readable(nova: NovaClient, stack: Stack) -> None:
    server_id = nova.create_ok(name="findme")
    host = nova.wait_status(server_id, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    nova.delete_and_wait(server_id)
    for host_state in stack.hosts:
        set_fault(stack.host_state_dir(host_state.name), "define", "fail", "injected: disk full")
    failed_id = nova.create_ok(name="doomed")
    nova.wait_status(failed_id, "ERROR")

    create_ids = wait_until(
        lambda: visible(stack, f'ServerId = "{server_id}" AND Operation = "create"'), "visibility"
    )
    assert create_ids[0].startswith(f"server-{server_id}-create-")
    by_project_and_host = visible(
        stack, f'ProjectId = "{nova.project}" AND Host = "{host}" AND ExecutionStatus = "Completed"'
    )
    assert create_ids[0] in by_project_and_host
    failed = wait_until(
        lambda: visible(
            stack,
            f'ProjectId = "{nova.project}" AND ExecutionStatus = "Failed" AND '
            f'StartTime > "2020-01-01T00:00:00Z"',
        ),
        "the failed create",
    )
    assert [w for w in failed if w.startswith(f"server-{failed_id}-create-")]

    async def inspect() -> None:
        client = await Client.connect(
            f"127.0.0.1:{stack.temporal_port}", data_converter=stack.data_converter()
        )
        handle = client.get_workflow_handle(create_ids[0])
        description = await handle.describe()
        assert description.workflow_type == "CreateServer"
        memo = await description.memo()
        assert memo["request"]["project_id"] == nova.project
        assert memo["request"]["flavor_name"] == "m1.tiny"
        assert await handle.query("phase") == f"ACTIVE on {host}"
        summary = await description.static_summary()
        assert summary is not None and "findme" in summary and "m1.tiny" in summary
        history = await decoded(client, await handle.fetch_history())
        assert steps_of(history) == [
            "reserve_quota",
            "schedule",
            "allocate_network",
            "spawn_on_host",
            "finish_create",
        ]
        summaries = [e.user_metadata.summary.data for e in history.events]
        expected = f"build on {host}: 1 vCPU/512 MiB/1 GiB (disk, define, start".encode()
        assert any(expected in s for s in summaries)
        assert any(b"pick a host and claim 1 vCPU/512 MiB/1 GiB" in s for s in summaries)

        [failed_wf] = [w for w in failed if w.startswith(f"server-{failed_id}")]
        failure = await client.get_workflow_handle(failed_wf).fetch_history()
        closing = failure.events[-1]
        assert closing.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
        message = closing.workflow_execution_failed_event_attributes.failure.message
        assert "injected: disk full" in message

    asyncio.run(inspect())
    nova.delete_and_wait(failed_id)


async def decoded(client: Client, history: WorkflowHistory) -> WorkflowHistory:
    """The history with its payloads decrypted (the server keeps them encrypted: codec/)."""
    assert client.data_converter.payload_codec is not None
    for event in history.events:
        await codec.decode_message(event, client.data_converter.payload_codec)
    return history


def steps_of(history: WorkflowHistory) -> list[str]:
    """The activity types in the order the workflow ran them: regular activities (scheduled
    events) and local activities (their markers)."""
    names = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            details = event.marker_recorded_event_attributes.details
            if "data" in details:
                data = json.loads(details["data"].payloads[0].data)
                names.append(data["activity_type"])
    return names


def test_every_history_replays_against_the_current_code(stack: Stack) -> None:
    """Runs last in this module: replays all closed workflows of the session so far."""

    async def replay() -> int:
        client = await Client.connect(
            f"127.0.0.1:{stack.temporal_port}", data_converter=stack.data_converter()
        )
        handles = [
            client.get_workflow_handle(execution.id, run_id=execution.run_id)
            async for execution in client.list_workflows('ExecutionStatus != "Running"')
            if execution.status != WorkflowExecutionStatus.TERMINATED
        ]
        fetching = asyncio.Semaphore(16)  # many at once: one by one, the round trips add up

        async def fetch(handle: WorkflowHandle[Any, Any]) -> WorkflowHistory:
            async with fetching:
                return await handle.fetch_history()

        histories = await asyncio.gather(*(fetch(handle) for handle in handles))

        async def each() -> AsyncIterator[WorkflowHistory]:
            for history in histories:
                yield history

        # One replay worker for all of them (a worker per history costs ~10x as much).
        replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=client.data_converter)
        await replayer.replay_workflows(each())
        if os.environ.get("NOVAFLOW_RECORD_HISTORIES") == "1":
            # Recorded decrypted (the stack's key dies with it; tests/unit/test_replay.py
            # replays them without a codec), and none holding user data: no secret in a file.
            plain = [await decoded(client, history) for history in histories]
            record([history for history in plain if not holds_user_data(history)])
        return len(histories)

    assert asyncio.run(replay()) >= 3


def record(histories: list[WorkflowHistory]) -> None:
    """Keep one history per workflow type, outcome and path (rescheduled, host down, ...) as a
    replay fixture for future changes. A file already there is kept: histories recorded by
    older code are the ones that catch a change running workflows could not replay."""
    HISTORY_DIR.mkdir(parents=True, exist_ok=True)
    for history in histories:
        last = history.events[-1].event_type
        kind = f"{history.events[0].workflow_execution_started_event_attributes.workflow_type.name}"
        outcome = EventType.Name(last).removeprefix("EVENT_TYPE_WORKFLOW_EXECUTION_").lower()
        signals = [
            e.workflow_execution_signaled_event_attributes.signal_name
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ]
        path = HISTORY_DIR / f"{kind}-{outcome}-{path_taken(steps_of(history), signals)}.json"
        if not path.exists():
            path.write_text(history.to_json())
            add_to_manifest(path)


_USER_DATA = re.compile(rb'"user_data": ?(?!null)')


def holds_user_data(history: WorkflowHistory) -> bool:
    """A decrypted history with a create's user data in it (in any payload)."""
    return any(_USER_DATA.search(event.SerializeToString()) for event in history.events)


def add_to_manifest(path: Path) -> None:
    """A new history's hash joins the manifest (tests/unit/test_replay.py: it only grows)."""
    manifest_path = HISTORY_DIR.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def path_taken(steps: list[str], signals: list[str] | None = None) -> str:
    """The branches of the workflow code a history went through, as a short name."""
    branches = []
    if "begin_operation" in steps:
        branches.append("gated")
        if steps == ["begin_operation"]:
            branches.append("gate-only")
    if steps.count("schedule") > 1:
        branches.append("rescheduled")
    if "check_host" in steps:
        branches.append("host-down")
    if "cancel_operation" in steps:
        branches.append("cancels-create")
    if "load_placement" in steps and "destroy_on_host" not in steps:
        branches.append("local-delete")
    if "finish_move" in steps and "receive_disk_on_host" not in steps:
        branches.append("same-host")
    for step, outcome in (
        ("confirm_move", "confirmed"),
        ("revert_move", "reverted"),
        ("fail_move", "rolled-back"),
    ):
        if step in steps:
            branches.append(outcome)
    parking = {"retry", "rollback", "mark-error"}
    branches += [f"parked-{s}" if s in parking else s for s in signals or []]
    return "-".join(branches) or "plain"
