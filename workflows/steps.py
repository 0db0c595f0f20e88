"""Typed calls of the activities, each with its queue, timeout, retry policy and a summary a
person can read in the Temporal UI. Workflows call these instead of naming activities."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType
from temporalio.workflow import ActivityCancellationType

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
    ClaimRef,
    FailInput,
    FinishInput,
    HostCheck,
    HostStatus,
    NetworkInput,
    NetworkResult,
    PowerResult,
    ReserveInput,
    ReserveResult,
    ScheduleInput,
    ScheduleResult,
    ServerPlacement,
    ServerRef,
    SpawnInput,
    compute_task_queue,
)

T = TypeVar("T")


async def _control(
    name: str, arg: Any, result_type: type[T] | None, summary: str, retry: RetryPolicy = DB_RETRY
) -> T:
    return await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        task_queue=CONTROL_TASK_QUEUE,
        start_to_close_timeout=DB_STEP_TIMEOUT,
        retry_policy=retry,
        # A cancelled workflow waits for the step to really stop before it compensates:
        # otherwise a step could finish after its undo ran.
        cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary=summary,
    )


async def _local(name: str, arg: Any, result_type: type[T] | None, summary: str) -> T:
    """A short database step of the forward path, run as a local activity: by the control
    worker that runs the workflow, without a round trip through the Temporal server's task
    queue (about a third of a create's latency). Same idempotent activity, same retries; in
    the history it is a local-activity marker with its summary. A worker that dies inside it
    loses the workflow task, and the step runs again on the next worker."""
    return await workflow.execute_local_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=DB_STEP_TIMEOUT,
        retry_policy=DB_RETRY,
        cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary=summary,
    )


async def _on_host(
    host: str,
    name: str,
    arg: Any,
    result_type: type[T] | None,
    summary: str,
    retry: RetryPolicy = HOST_RETRY,
    deadline: timedelta | None = None,
    pickup: timedelta | None = None,
) -> T:
    return await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        task_queue=compute_task_queue(host),
        schedule_to_close_timeout=deadline,
        # Not picked up in time: the host's worker is gone (this timeout is never retried).
        schedule_to_start_timeout=pickup,
        start_to_close_timeout=HOST_STEP_TIMEOUT,
        heartbeat_timeout=HOST_STEP_HEARTBEAT,
        retry_policy=retry,
        cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary=summary,
    )


# ----------------------------------------------------------- control plane


async def reserve_quota(inp: ReserveInput) -> ReserveResult:
    r = inp.request
    return await _local(
        "reserve_quota",
        inp,
        ReserveResult,
        f"record {len(inp.servers)} server(s), reserve {r.vcpus} vCPU / {r.memory_mb} MiB each",
    )


async def schedule(inp: ScheduleInput) -> ScheduleResult:
    note = f" (not {', '.join(inp.exclude_hosts)})" if inp.exclude_hosts else ""
    return await _local(
        "schedule",
        inp,
        ScheduleResult,
        f"attempt {inp.attempt}: pick a host and claim {inp.vcpus} vCPU/{inp.memory_mb} MiB/"
        f"{inp.disk_gb} GiB{note}",
    )


async def release_claim(inp: ClaimRef) -> None:
    await _control("release_claim", inp, None, f"release claim {inp.claim_id}", UNDO_RETRY)


async def allocate_network(inp: NetworkInput) -> NetworkResult:
    floating = sum(p.floating_ip for p in inp.ports)
    return await _local(
        "allocate_network",
        inp,
        NetworkResult,
        f"allocate {len(inp.ports)} port(s) with fixed IPs, {floating} floating IP(s)",
    )


async def release_network(inp: ServerRef) -> None:
    await _control(
        "release_network", inp, None, "release ports, fixed and floating IPs", UNDO_RETRY
    )


async def release_quota(inp: ServerRef) -> None:
    await _control("release_quota", inp, None, "give the reserved quota back", UNDO_RETRY)


async def finish_create(inp: FinishInput) -> None:
    await _local("finish_create", inp, None, f"mark ACTIVE on {inp.host}, commit quota")


async def fail_create(inp: FailInput) -> None:
    await _control("fail_create", inp, None, f"mark ERROR: {inp.message[:80]}", UNDO_RETRY)


async def load_placement(inp: ServerRef) -> ServerPlacement:
    return await _control("load_placement", inp, ServerPlacement, "find the server's host")


async def finish_delete(inp: ServerRef) -> None:
    await _control(
        "finish_delete", inp, None, "release ports, IPs, claims and quota; mark DELETED", UNDO_RETRY
    )


async def check_host(inp: HostCheck) -> HostStatus:
    return await _control("check_host", inp, HostStatus, f"is {inp.host} up (heartbeating)?")


async def cancel_operation(inp: AwaitWorkflowInput) -> None:
    await workflow.execute_activity(
        "cancel_operation",
        inp,
        task_queue=CONTROL_TASK_QUEUE,
        start_to_close_timeout=timedelta(minutes=10),
        heartbeat_timeout=timedelta(seconds=10),
        retry_policy=UNDO_RETRY,
        summary=f"cancel {inp.workflow_id} and wait until it has compensated",
    )


# ----------------------------------------------------------- on a host


async def spawn_on_host(host: str, inp: SpawnInput, pickup: timedelta) -> PowerResult:
    return await _on_host(
        host,
        "spawn_on_host",
        inp,
        PowerResult,
        f"build on {host}: {inp.disk_gb} GiB disk, define {inp.vcpus} vCPU/{inp.memory_mb} MiB "
        "domain, start, wait until running",
        deadline=HOST_BUILD_DEADLINE,
        pickup=pickup,
    )


async def destroy_on_host(host: str, inp: ServerRef, pickup: timedelta | None = None) -> None:
    await _on_host(
        host,
        "destroy_on_host",
        inp,
        None,
        f"destroy and undefine the domain on {host}, delete its disk",
        UNDO_RETRY,
        pickup=pickup,
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
