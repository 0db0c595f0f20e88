"""ServerAction: a power or state action on one server (Nova's POST /servers/{id}/action:
os-stop, os-start, reboot, pause, unpause, suspend, resume, lock, unlock, os-resetState).

    gate (in the update that starts the workflow): the server's state, lock and policy; the
    task state swapped (e.g. powering-off); the instance action recorded   -> 409/403 at once
    -> on compute@<host>: the power action, power state read from libvirt
       (undo, registered before it: clear the task, record the failure; the host took the
       step and then stopped answering: park until a person signals retry, rollback or
       mark-error, see parking.py)
    -> the end state (e.g. SHUTOFF) and the power state written, the action finished

lock, unlock and os-resetState are a database change only: the gate makes it and the
workflow ends there. Only contracts are imported here: no I/O, replay-safe.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from workflows import steps
from workflows.compensation import Compensations
from workflows.contracts import (
    HOST,
    EndInput,
    HostPowerInput,
    HostStepRecord,
    OperationInput,
    OperationResult,
    PowerResult,
    StepContext,
)
from workflows.errors import error_type, fault_message
from workflows.gate import Gated
from workflows.parking import MarkedError, Parkable


@workflow.defn(name="ServerAction")
class ServerAction(Gated, Parkable):
    def __init__(self) -> None:
        self._phase = "waiting for the state gate"

    @workflow.run
    async def run(self, inp: OperationInput) -> OperationResult:
        ticket = await self._gate()
        if ticket is None:
            return OperationResult(inp.server_id, "REJECTED")
        assert self._begin is not None
        options = self._begin.options
        if ticket.host_action is None or ticket.host is None:
            self._enter(f"{inp.action}: done")
            return OperationResult(inp.server_id, "DONE")

        def ctx(event: str) -> StepContext:
            return StepContext(inp.server_id, ticket.request_id, event)

        host, action = ticket.host, ticket.host_action
        workflow.upsert_search_attributes([HOST.value_set(host)])
        started = workflow.now().timestamp()

        def host_step(error: str | None = None) -> HostStepRecord:
            return HostStepRecord(
                f"{action}@{host}", host, started, workflow.now().timestamp(), error
            )

        undo = Compensations()
        failure: list[str] = []
        undo.add(
            "end the action as failed",
            lambda: steps.end_operation(
                EndInput(
                    ctx(f"end_{inp.action}"),
                    inp.action,
                    error=failure[0],
                    options=options,
                    host_step=host_step(failure[0]),
                )
            ),
        )
        try:
            result = await self._on_host(inp, host, action, ctx(action))
        except (ActivityError, asyncio.CancelledError) as error:
            cancelled = is_cancelled_exception(error)
            failure.append("cancelled (a DELETE, or an operator)" if cancelled else
                           _host_fault(host, error))  # fmt: skip
            self._enter(f"failed: {failure[0][:100]}")
            await undo.run()  # its one undo retries until it is done
            if cancelled:
                raise
            raise ApplicationError(failure[0], type=error_type(error), non_retryable=True) from None
        except MarkedError as marked:
            self._enter("marking ERROR, as decided")
            await steps.end_operation(
                EndInput(
                    ctx(f"end_{inp.action}"),
                    inp.action,
                    error=str(marked),
                    options=options,
                    mark_error=True,
                    host_step=host_step(str(marked)),
                )
            )
            raise ApplicationError(str(marked), type="MarkedError", non_retryable=True) from None
        self._enter(f"{inp.action}: recording the new state")
        await steps.end_operation(
            EndInput(
                ctx(f"end_{inp.action}"),
                inp.action,
                power_state=result.power_state,
                options=options,
                host_step=host_step(),
            )
        )
        self._enter(f"{inp.action}: done")
        return OperationResult(inp.server_id, "DONE", result.power_state)

    async def _on_host(
        self, inp: OperationInput, host: str, action: str, ctx: StepContext
    ) -> PowerResult:
        """The host step; parked when its outcome is unknown (see parking.py)."""
        return await self._until_decided(
            action,
            host,
            lambda: steps.power_action_on_host(
                host,
                HostPowerInput(ctx, action, inp.shutdown_timeout_seconds),
                timedelta(seconds=inp.host_pickup_seconds),
            ),
        )


def _host_fault(host: str, error: BaseException) -> str:
    if isinstance(error, ActivityError) and steps.not_picked_up(error):
        return "the server's compute host did not take the step in time (down, or too busy)"
    return fault_message(error)
