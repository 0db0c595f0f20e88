"""DeleteServer: accepted from any state, including a server whose create is still running.

    gate (in the update that starts the workflow): the lock; task_state -> deleting; the
    instance action recorded (a repeated DELETE joins the running delete, or takes over a
    failed one)
    -> cancel the running operation and wait until it has compensated
    -> on the server's host: destroy and undefine the domain, delete its disk
       (host down, or gone meanwhile: skipped; its compute worker reaps the domain when back)
    -> in one transaction: release ports and IPs, the host claims, the quota; mark DELETED

Each step is idempotent and keyed by the server, so the delete also finishes whatever a
crashed or cancelled create left half-done.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows import steps
from workflows.contracts import (
    HOST,
    AwaitWorkflowInput,
    DeleteServerInput,
    DeleteServerResult,
    ServerRef,
    StepContext,
)
from workflows.gate import Gated

# Patch ids (workflow.patched): where this workflow's commands changed while some may run.
GATE_IN_WORKFLOW = "delete-gate-in-workflow"  # the gate moved from the API into the workflow


@workflow.defn(name="DeleteServer")
class DeleteServer(Gated):
    def __init__(self) -> None:
        self._phase = "starting"

    @workflow.run
    async def run(self, inp: DeleteServerInput) -> DeleteServerResult:
        request_id, running = inp.request_id, inp.running_workflow_id
        # A delete started by an older API already passed its gate there: the flag says which
        # (a new worker may run its first task), the patch keeps older histories replaying.
        if workflow.patched(GATE_IN_WORKFLOW) and inp.gated:
            ticket = await self._gate()
            if ticket is None:
                return DeleteServerResult(inp.server_id, rejected=True)
            if ticket.joined:
                self._enter(f"joined {ticket.joined}, which deletes the server")
                return DeleteServerResult(inp.server_id)
            request_id, running = ticket.request_id, ticket.running_workflow_id

        def ref(event: str) -> ServerRef:
            return ServerRef(StepContext(inp.server_id, request_id, event))

        if running:
            self._enter(f"cancelling {running}")
            await steps.cancel_operation(AwaitWorkflowInput(running))

        placement = await steps.load_placement(ref("load_placement"))
        host = placement.host
        if host is not None:
            workflow.upsert_search_attributes([HOST.value_set(host)])
        pickup = timedelta(seconds=inp.host_pickup_seconds)
        if host is not None and placement.host_up:
            self._enter(f"removing the domain from {host}")
            if not await steps.remove_domain(host, ref("destroy_on_host"), pickup):
                self._enter(f"{host} went down: deleting in the database only")
        elif host is not None:
            # Nova's "local delete": the host is down, so the delete completes in the database;
            # the host's compute worker reaps the domain of a deleted server when it is back.
            self._enter(f"{host} is down: deleting in the database only")

        self._enter("releasing ports, IPs, claims and quota")
        await steps.finish_delete(ref("finish_delete"))
        self._enter("deleted")
        return DeleteServerResult(inp.server_id, host)
