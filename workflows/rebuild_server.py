"""RebuildServer: Nova's rebuild action. The same server on the same host with the same ports
and IPs; its root disk made anew from the (new) image, its domain defined again.

    gate (in the update that starts the workflow): state (ACTIVE, SHUTOFF or ERROR), lock,
    policy; task rebuilding; the image checked against the flavor (400), the new image, name
    and metadata recorded
    -> read the server as it is now rebuilt (flavor, ports, the image's properties)
    -> on compute@<host>: destroy and undefine the domain, delete its disk
    -> on compute@<host>: a new disk from the image, define, start (unless it was stopped)
    -> the end state written (ACTIVE, or SHUTOFF if it was stopped), the action finished

There is nothing to roll back to once the old disk is gone: a failure leaves the server in
ERROR with a fault on its host, where a new rebuild (or a delete) takes it. A step whose outcome
is unknown parks (parking.py). Only contracts are imported here: no I/O, replay-safe.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from workflows import steps
from workflows.compensation import run_to_completion
from workflows.contracts import (
    HOST,
    EndInput,
    OperationInput,
    OperationResult,
    ServerRef,
    SpawnInput,
    StepContext,
)
from workflows.errors import error_type, fault_message
from workflows.gate import Gated
from workflows.parking import MarkedError, Parkable


@workflow.defn(name="RebuildServer")
class RebuildServer(Gated, Parkable):
    def __init__(self) -> None:
        self._phase = "waiting for the state gate"

    @workflow.run
    async def run(self, inp: OperationInput) -> OperationResult:
        ticket = await self._gate()
        if ticket is None:
            return OperationResult(inp.server_id, "REJECTED")

        def ctx(event: str) -> StepContext:
            return StepContext(inp.server_id, ticket.request_id, event)

        plan = await steps.plan_rebuild(ServerRef(ctx("plan_rebuild")))
        host, pickup = plan.host, timedelta(seconds=inp.host_pickup_seconds)
        workflow.upsert_search_attributes([HOST.value_set(host)])
        spawn = SpawnInput(
            ctx=ctx("spawn_on_host"),
            name=plan.name,
            project_id=plan.project_id,
            flavor_name=plan.flavor_name,
            image_id=plan.image_id,
            resources=plan.resources,
            ports=plan.ports,
            image_properties=plan.image_properties,
            start=plan.start,
            image_content=plan.image_content,
        )
        try:
            self._enter(f"removing the old domain and disk on {host}")
            await self._until_decided(
                "destroy",
                host,
                lambda: steps.destroy_on_host(host, ServerRef(ctx("destroy_on_host")), pickup),
            )
            result = await self._until_decided(
                "rebuild", host, lambda: steps.spawn_on_host(host, spawn, pickup)
            )
        except (ActivityError, MarkedError, asyncio.CancelledError) as error:
            cancelled = is_cancelled_exception(error)
            fault = (
                "Rebuild cancelled (a DELETE, or an operator)"
                if cancelled
                else f"Rebuild failed: {fault_message(error)}"
            )
            self._enter(f"failed: {fault[:100]}")
            await run_to_completion(
                steps.end_operation(
                    EndInput(ctx("end_rebuild"), "rebuild", error=fault, mark_error=True)
                )
            )
            if cancelled:
                raise
            kind = "MarkedError" if isinstance(error, MarkedError) else error_type(error)
            raise ApplicationError(fault, type=kind, non_retryable=True) from None
        self._enter("rebuild: recording the new state")
        await steps.end_operation(
            EndInput(ctx("end_rebuild"), "rebuild", power_state=result.power_state)
        )
        self._enter("rebuilt")
        return OperationResult(inp.server_id, "DONE", result.power_state)
