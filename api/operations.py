"""Starting workflows from the API: readable ids, typed search attributes, a memo with the
request, and a summary for the Temporal UI."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from novaflow.config import get_settings
from novaflow.errors import ERROR_TYPES, Conflict, NotFound, NovaflowError, ServiceUnavailable
from workflows.contracts import (
    CONTROL_TASK_QUEUE,
    DB_STEP_TIMEOUT,
    OPERATION,
    PROJECT_ID,
    SERVER_ID,
    USER_ID,
    BeginInput,
    ConsoleOutput,
    ConsoleOutputInput,
    CreateRequest,
    CreateServerInput,
    DeleteServerInput,
    DiagnosticsInput,
    DomainDiagnostics,
    MoveInput,
    OperationInput,
    ReserveInput,
    ReserveResult,
    ResizeDecision,
    Ticket,
    operation_workflow_id,
)

log = logging.getLogger("novaflow.api")


def accept_within() -> timedelta:
    """How long a request waits for a control-plane worker to record it (the setting)."""
    return timedelta(seconds=get_settings().accept_within_seconds)


def update_rpc_timeout() -> timedelta:
    """An update's RPC outlasts the deadline plus one database step: by the time it gives up,
    the first write either happened (and we got the answer) or can no longer happen."""
    return accept_within() + DB_STEP_TIMEOUT + timedelta(seconds=5)


R = TypeVar("R")


def _attributes(
    server_id: str, project_id: str, operation: str, user_id: str
) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(SERVER_ID, server_id),
            SearchAttributePair(PROJECT_ID, project_id),
            SearchAttributePair(OPERATION, operation),
            SearchAttributePair(USER_ID, user_id),
        ]
    )


async def _update_with_start(
    client: Client,
    start: WithStartWorkflowOperation[Any, Any],
    update: str,
    arg: Any,
    result_type: type[R],
) -> R:
    """Start an operation's workflow together with the update that makes its first write (the
    reservation or the state gate): the caller learns at once whether it was accepted, and a
    refusal (403, 404, 409) is the update's error, with nothing written."""
    try:
        return await client.execute_update_with_start_workflow(
            update,
            arg,
            start_workflow_operation=start,
            result_type=result_type,
            rpc_timeout=update_rpc_timeout(),
        )
    except WorkflowUpdateFailedError as failure:
        raise _domain_error(failure.cause) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        # No control-plane worker took the request in time; the deadline in the update makes
        # sure a worker that comes back later refuses it instead of carrying it out.
        raise ServiceUnavailable(
            "No control-plane worker accepted the request in time; nothing was changed. Try again."
        ) from None
    except WorkflowAlreadyStartedError:
        # Only a delete joins a workflow by id: the one it joins has just completed, so the
        # server is gone.
        raise NotFound("The server could not be found: it has just been deleted.") from None
    except RPCError as error:
        raise ServiceUnavailable(f"The workflow service is unavailable: {error.message}") from None


def _deadline() -> float:
    return time.time() + accept_within().total_seconds()


async def start_create(
    client: Client, reserve: ReserveInput, max_build_attempts: int, host_pickup_seconds: float
) -> ReserveResult:
    """Start CreateServer for the first server with the quota reservation as its first step
    (update-with-start): the caller learns at once whether the quota allowed it."""
    request, first = reserve.request, reserve.servers[0]
    start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        "CreateServer",
        CreateServerInput(
            request=request,
            server=first,
            max_build_attempts=max_build_attempts,
            host_pickup_seconds=host_pickup_seconds,
        ),
        id=operation_workflow_id(first.server_id, "create", request.request_id),
        task_queue=CONTROL_TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=_attributes(
            first.server_id, request.project_id, "create", request.user_id
        ),
        memo={"request": _public(request), "servers": [asdict(s) for s in reserve.servers]},
        static_summary=f"create server {first.name} ({request.flavor_name}) for "
        f"{request.user_id}@{request.project_id}",
        static_details=(
            f"server `{first.server_id}`, flavor {request.flavor_name} ({request.resources}), "
            f"image `{request.image_id}`, "
            f"{len(reserve.servers)} server(s), request `{request.request_id}`\n\n"
            f"```json\n{json.dumps(_public(request), indent=1)[:3000]}\n```"
        ),
    )
    reserve.accept_until = _deadline()
    return await _update_with_start(client, start, "reserve", reserve, ReserveResult)


async def start_delete(
    client: Client, begin: BeginInput, inp: DeleteServerInput, under_way: str | None
) -> Ticket:
    """Start DeleteServer with its gate. `under_way`: the workflow of a delete already under
    way, which a repeated DELETE joins if it runs and starts again if it failed."""
    workflow_id = under_way or operation_workflow_id(inp.server_id, "delete", inp.request_id)
    begin.workflow_id = workflow_id
    begin.accept_until = _deadline()
    start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        "DeleteServer",
        inp,
        id=workflow_id,
        task_queue=CONTROL_TASK_QUEUE,
        search_attributes=_attributes(inp.server_id, inp.project_id, "delete", inp.user_id),
        memo={"request": asdict(inp)},
        static_summary=f"delete server {inp.server_id} for {inp.user_id}@{inp.project_id}",
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    )
    return await _update_with_start(client, start, "begin", begin, Ticket)


async def start_action(
    client: Client,
    begin: BeginInput,
    inp: OperationInput,
    project_id: str,
    workflow: str = "ServerAction",
) -> Ticket:
    """Start a ServerAction (stop, start, reboot, lock, ...), or another operation of the same
    input (`workflow`: RebuildServer), with its state gate."""
    server_id, request_id = begin.ctx.server_id, begin.ctx.request_id
    workflow_id = operation_workflow_id(server_id, inp.action.lower(), request_id)
    begin.workflow_id = workflow_id
    begin.accept_until = _deadline()
    options = f" {begin.options}" if begin.options else ""
    start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        workflow,
        inp,
        id=workflow_id,
        task_queue=CONTROL_TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=_attributes(server_id, project_id, inp.action, begin.user_id),
        memo={"request": asdict(begin)},
        static_summary=f"{inp.action}{options} server {server_id} for "
        f"{begin.user_id}@{begin.project_id}",
    )
    return await _update_with_start(client, start, "begin", begin, Ticket)


async def start_move(client: Client, begin: BeginInput, inp: MoveInput, project_id: str) -> Ticket:
    """Start a ResizeServer (resize or cold migrate) with its state gate."""
    server_id, request_id = begin.ctx.server_id, begin.ctx.request_id
    workflow_id = operation_workflow_id(server_id, inp.action, request_id)
    begin.workflow_id = workflow_id
    begin.accept_until = _deadline()
    options = f" {begin.options}" if begin.options else ""
    start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        "ResizeServer",
        inp,
        id=workflow_id,
        task_queue=CONTROL_TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=_attributes(server_id, project_id, inp.action, begin.user_id),
        memo={"request": asdict(begin)},
        static_summary=f"{inp.action}{options} server {server_id} for "
        f"{begin.user_id}@{begin.project_id}",
        static_details=(
            "Waits in VERIFY_RESIZE for a decision: send the update `confirm` or `revert` "
            "(argument `{}`) from here (More Actions -> Send an Update), "
            f"`novaflow server confirm {server_id}`, or the API's confirmResize/revertResize."
        ),
    )
    return await _update_with_start(client, start, "begin", begin, Ticket)


async def decide_move(
    client: Client, workflow_id: str, action: str, decision: ResizeDecision
) -> Ticket:
    """Send confirmResize or revertResize to the move's running workflow (an update): the
    answer comes once its gate recorded the decision; the clean-up goes on after it."""
    handle = client.get_workflow_handle(workflow_id)
    update = "confirm" if action == "confirmResize" else "revert"
    try:
        return await handle.execute_update(
            update,
            decision,
            result_type=Ticket,
            rpc_timeout=update_rpc_timeout(),
        )
    except WorkflowUpdateFailedError as failure:
        raise _domain_error(failure.cause) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise ServiceUnavailable(
            "No control-plane worker took the decision in time; nothing was changed. Try again."
        ) from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise Conflict(
                f"Cannot '{action}': the move's workflow {workflow_id} has ended."
            ) from None
        raise ServiceUnavailable(f"The workflow service is unavailable: {error.message}") from None


def _public(request: CreateRequest) -> dict[str, object]:
    """The request as shown in the Temporal UI: user data may hold secrets, so only its size."""
    shown = asdict(request)
    if request.user_data is not None:
        shown["user_data"] = f"<{len(request.user_data)} bytes>"
    return shown


def _domain_error(cause: BaseException | None) -> NovaflowError:
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__
    if isinstance(cause, ApplicationError) and cause.type in ERROR_TYPES:
        return ERROR_TYPES[cause.type](cause.message)
    message = cause.message if isinstance(cause, ApplicationError) else "the request failed"
    return NovaflowError(message)


async def _ask_host(
    client: Client,
    workflow: str,
    arg: Any,
    result_type: type[R],
    server_id: str,
    host: str,
    what: str,
) -> R:
    """Run a short read-only workflow that asks the server's host, and wait for its answer (a
    few seconds at most); a host that does not answer is a 503."""
    try:
        return await client.execute_workflow(
            workflow,
            arg,
            id=f"server-{server_id}-{what}-{uuid.uuid4().hex[:8]}",
            task_queue=CONTROL_TASK_QUEUE,
            execution_timeout=timedelta(seconds=15),
            result_type=result_type,
            static_summary=f"{what} of server {server_id} on {host}",
        )
    except (WorkflowFailureError, RPCError) as error:
        # (The host's name is not for every caller: it is in the log.)
        log.warning("host %s did not answer: %s", host, error)
        raise ServiceUnavailable("The server's compute host did not answer.") from None


async def diagnostics(client: Client, server_id: str, host: str) -> DomainDiagnostics:
    """What libvirt on the host says about the server's domain (ServerDiagnostics)."""
    inp = DiagnosticsInput(server_id=server_id, host=host)
    return await _ask_host(
        client, "ServerDiagnostics", inp, DomainDiagnostics, server_id, host, "diagnostics"
    )


async def console_output(client: Client, server_id: str, host: str, length: int | None) -> str:
    """The last `length` lines of the server's console log, read on its host
    (ServerConsoleOutput; None: all the host reads of it)."""
    inp = ConsoleOutputInput(server_id=server_id, host=host, length=length)
    result = await _ask_host(
        client, "ServerConsoleOutput", inp, ConsoleOutput, server_id, host, "console"
    )
    return result.output
