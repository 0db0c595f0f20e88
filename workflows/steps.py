"""Typed calls of the activities, each with its queue, timeout, retry policy and a summary a
person can read in the Temporal UI. Workflows call these instead of naming activities."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType
from temporalio.workflow import ActivityCancellationType

from workflows import catalog
from workflows.catalog import ActivityType
from workflows.contracts import (
    CONTROL_TASK_QUEUE,
    DB_RETRY,
    DB_STEP_TIMEOUT,
    HOST_BUILD_DEADLINE,
    HOST_RETRY,
    HOST_STEP_HEARTBEAT,
    HOST_STEP_TIMEOUT,
    UNDO_RETRY,
    AwaitWorkflowInput,
    BeginInput,
    ClaimRef,
    DestinationInput,
    DiskTransferInput,
    EndInput,
    FailInput,
    FinishInput,
    HostCheck,
    HostPowerInput,
    HostStatus,
    MovePlan,
    MoveProgress,
    MoveStepInput,
    NetworkInput,
    NetworkResult,
    PowerResult,
    RebuildPlan,
    ReserveInput,
    ReserveResult,
    ScheduleInput,
    ScheduleResult,
    ServerPlacement,
    ServerRef,
    SpawnInput,
    Ticket,
    compute_task_queue,
)

In = TypeVar("In")
Out = TypeVar("Out")


async def _control(
    kind: ActivityType[In, Out], arg: In, summary: str, retry: RetryPolicy = DB_RETRY
) -> Out:
    return await workflow.execute_activity(
        kind.name,
        arg,
        result_type=kind.result,
        task_queue=CONTROL_TASK_QUEUE,
        start_to_close_timeout=DB_STEP_TIMEOUT,
        retry_policy=retry,
        # A cancelled workflow waits for the step to really stop before it compensates:
        # otherwise a step could finish after its undo ran.
        cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary=summary,
    )


async def _local(kind: ActivityType[In, Out], arg: In, summary: str) -> Out:
    """A short database step of the forward path, run as a local activity: by the control
    worker that runs the workflow, without a round trip through the Temporal server's task
    queue (about a third of a create's latency). Same idempotent activity, same retries; in
    the history it is a local-activity marker with its summary. A worker that dies inside it
    loses the workflow task, and the step runs again on the next worker."""
    return await workflow.execute_local_activity(
        kind.name,
        arg,
        result_type=kind.result,
        start_to_close_timeout=DB_STEP_TIMEOUT,
        retry_policy=DB_RETRY,
        cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary=summary,
    )


async def _on_host(
    host: str,
    kind: ActivityType[In, Out],
    arg: In,
    summary: str,
    retry: RetryPolicy = HOST_RETRY,
    deadline: timedelta | None = None,
    pickup: timedelta | None = None,
    timeout: timedelta = HOST_STEP_TIMEOUT,
) -> Out:
    return await workflow.execute_activity(
        kind.name,
        arg,
        result_type=kind.result,
        task_queue=compute_task_queue(host),
        schedule_to_close_timeout=deadline,
        # Not picked up in time: the host's worker is gone (this timeout is never retried).
        schedule_to_start_timeout=pickup,
        start_to_close_timeout=timeout,
        heartbeat_timeout=HOST_STEP_HEARTBEAT,
        retry_policy=retry,
        cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary=summary,
    )


# ----------------------------------------------------------- control plane


async def reserve_quota(inp: ReserveInput) -> ReserveResult:
    r = inp.request
    return await _local(
        catalog.RESERVE_QUOTA,
        inp,
        f"record {len(inp.servers)} server(s), reserve {r.resources} each",
    )


async def schedule(inp: ScheduleInput) -> ScheduleResult:
    note = f" (not {', '.join(inp.exclude_hosts)})" if inp.exclude_hosts else ""
    return await _local(
        catalog.SCHEDULE,
        inp,
        f"attempt {inp.attempt}: pick a host and claim {inp.resources}{note}",
    )


async def release_claim(inp: ClaimRef) -> None:
    await _control(catalog.RELEASE_CLAIM, inp, f"release claim {inp.claim_id}", UNDO_RETRY)


async def allocate_network(inp: NetworkInput) -> NetworkResult:
    floating = sum(p.floating_ip for p in inp.ports)
    return await _local(
        catalog.ALLOCATE_NETWORK,
        inp,
        f"allocate {len(inp.ports)} port(s) with fixed IPs, {floating} floating IP(s)",
    )


async def release_network(inp: ServerRef) -> None:
    await _control(
        catalog.RELEASE_NETWORK, inp, "release ports, fixed and floating IPs", UNDO_RETRY
    )


async def release_quota(inp: ServerRef) -> None:
    await _control(catalog.RELEASE_QUOTA, inp, "give the reserved quota back", UNDO_RETRY)


async def finish_create(inp: FinishInput) -> None:
    await _local(catalog.FINISH_CREATE, inp, f"mark ACTIVE on {inp.host}, commit quota")


async def fail_create(inp: FailInput) -> None:
    await _control(catalog.FAIL_CREATE, inp, f"mark ERROR: {inp.message[:80]}", UNDO_RETRY)


async def load_placement(inp: ServerRef) -> ServerPlacement:
    return await _control(catalog.LOAD_PLACEMENT, inp, "find the server's host")


async def finish_delete(inp: ServerRef) -> None:
    await _control(
        catalog.FINISH_DELETE, inp, "release ports, IPs, claims and quota; mark DELETED", UNDO_RETRY
    )


async def check_host(inp: HostCheck) -> HostStatus:
    return await _control(catalog.CHECK_HOST, inp, f"is {inp.host} up (heartbeating)?")


async def cancel_operation(inp: AwaitWorkflowInput) -> None:
    await workflow.execute_activity(
        catalog.CANCEL_OPERATION.name,
        inp,
        task_queue=CONTROL_TASK_QUEUE,
        start_to_close_timeout=timedelta(minutes=10),
        heartbeat_timeout=timedelta(seconds=10),
        retry_policy=UNDO_RETRY,
        summary=f"cancel {inp.workflow_id} and wait until it has compensated",
    )


async def begin_operation(inp: BeginInput) -> Ticket:
    return await _local(
        catalog.BEGIN_OPERATION,
        inp,
        f"{inp.action}: check the server's state and lock, record the action",
    )


async def end_operation(inp: EndInput) -> None:
    outcome = f"failed: {inp.error[:60]}" if inp.error else "done"
    await _control(
        catalog.END_OPERATION, inp, f"{inp.action} {outcome}: record the state", UNDO_RETRY
    )


async def plan_rebuild(inp: ServerRef) -> RebuildPlan:
    return await _local(catalog.PLAN_REBUILD, inp, "read the server, its image and its ports")


# ----------------------------------------------------------- moves (resize, cold migrate)


async def plan_move(inp: ServerRef) -> MovePlan:
    return await _local(catalog.PLAN_MOVE, inp, "read the migration, the server and its ports")


async def claim_destination(inp: DestinationInput) -> ScheduleResult:
    where = f" among {inp.only_host}" if inp.only_host else ""
    note = f" (not {', '.join(inp.exclude_hosts)})" if inp.exclude_hosts else ""
    return await _local(
        catalog.CLAIM_DESTINATION,
        inp,
        f"pick a destination{where}{note} and claim {inp.resources} there",
    )


async def advance_move(inp: MoveProgress) -> None:
    await _local(catalog.ADVANCE_MOVE, inp, f"migration {inp.status}, task {inp.task_state}")


async def finish_move(inp: MoveStepInput) -> None:
    await _local(catalog.FINISH_MOVE, inp, "VERIFY_RESIZE: the server runs on its destination")


async def confirm_move(inp: MoveStepInput) -> None:
    await _control(
        catalog.CONFIRM_MOVE, inp, "confirmed: release the source's claim and old quota",
        UNDO_RETRY,
    )  # fmt: skip


async def revert_move(inp: MoveStepInput) -> None:
    await _control(
        catalog.REVERT_MOVE, inp, "reverted: release the destination's claim, the old flavor",
        UNDO_RETRY,
    )  # fmt: skip


async def fail_move(inp: MoveStepInput) -> None:
    error = (inp.error or "")[:60]
    await _control(catalog.FAIL_MOVE, inp, f"rolled back ({error}): record it", UNDO_RETRY)


# ----------------------------------------------------------- on a host


# A power action's host step may take a clean shutdown's timeout, then a start.
POWER_STEP_MARGIN = timedelta(minutes=1)


async def power_action_on_host(host: str, inp: HostPowerInput, pickup: timedelta) -> PowerResult:
    return await _on_host(
        host,
        catalog.POWER_ACTION_ON_HOST,
        inp,
        f"{inp.action} the domain on {host}",
        pickup=pickup,
        timeout=timedelta(seconds=inp.shutdown_timeout_seconds) + POWER_STEP_MARGIN,
    )


async def spawn_on_host(host: str, inp: SpawnInput, pickup: timedelta) -> PowerResult:
    return await _on_host(
        host,
        catalog.SPAWN_ON_HOST,
        inp,
        f"build on {host}: {inp.resources} (disk, define, start, wait until running)",
        deadline=HOST_BUILD_DEADLINE,
        pickup=pickup,
    )


async def destroy_on_host(host: str, inp: ServerRef, pickup: timedelta | None = None) -> None:
    await _on_host(
        host,
        catalog.DESTROY_ON_HOST,
        inp,
        f"destroy and undefine the domain on {host}, delete its disk",
        UNDO_RETRY,
        pickup=pickup,
    )


async def drop_original_disk_on_host(host: str, inp: ServerRef, pickup: timedelta) -> None:
    await _on_host(
        host,
        catalog.DROP_ORIGINAL_DISK_ON_HOST,
        inp,
        f"delete the disk kept on {host} for a revert",
        UNDO_RETRY,
        pickup=pickup,
    )


# A disk copy's own limit: minutes for a real disk over the hosts' network.
DISK_COPY_TIMEOUT = timedelta(minutes=30)


async def receive_disk_on_host(host: str, inp: DiskTransferInput, pickup: timedelta) -> None:
    await _on_host(
        host,
        catalog.RECEIVE_DISK_ON_HOST,
        inp,
        f"copy the disk ({inp.size_gb} GiB) from {inp.source_host} to {host}",
        pickup=pickup,
        timeout=DISK_COPY_TIMEOUT,
    )


def not_picked_up(error: ActivityError) -> bool:
    """The step timed out waiting in the host's queue: no worker of that host is polling."""
    cause = error.cause
    return isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START


# How many times an undo or a delete waits `pickup` for a host that heartbeats but takes no
# work (its worker lost Temporal, or every slot hangs in libvirt) before leaving the domain to
# the host's reaper: the reaper runs in that worker, apart from its Temporal connection.
REMOVE_DOMAIN_ROUNDS = 10


async def remove_domain(host: str, inp: ServerRef, pickup: timedelta) -> bool:
    """Destroy the server's domain on its host, waiting while the host is up (a bounded number
    of rounds). Returns False when the host is down, or took no work for all those rounds: the
    domain is then left to the host's own reaper, which removes it because its server holds
    no claim there any more, so an undo or a delete never waits on a dead host."""
    for _ in range(REMOVE_DOMAIN_ROUNDS):
        try:
            await destroy_on_host(host, inp, pickup)
            return True
        except ActivityError as error:
            if not not_picked_up(error):
                raise
        if not (await check_host(HostCheck(inp.ctx, host))).up:
            return False
    workflow.logger.warning(
        "%s took no work for %d rounds: left to its reaper", host, REMOVE_DOMAIN_ROUNDS
    )
    return False
