"""Activities that talk to Temporal itself (control-plane worker): a delete first stops the
operation that was running on the server and waits until it has finished compensating."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from activities.registry import implements
from workflows import catalog
from workflows.contracts import DELETE_COMING, AwaitWorkflowInput


class OperationActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @implements(catalog.CANCEL_OPERATION)
    async def cancel_operation(self, inp: AwaitWorkflowInput) -> None:
        """Tell the workflow a delete is coming (a signal: see DELETE_COMING), request its
        cancellation and wait until it is closed. Idempotent: a workflow that is already
        closed (or never started) is simply waited for."""
        handle = self.client.get_workflow_handle(inp.workflow_id)
        try:
            await handle.signal(DELETE_COMING)
            await handle.cancel()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        waiter = asyncio.ensure_future(self._closed(inp.workflow_id))
        while True:
            done, _ = await asyncio.wait({waiter}, timeout=2.0)
            if done:
                return waiter.result()
            activity.heartbeat()

    async def _closed(self, workflow_id: str) -> None:
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            await handle.result(follow_runs=True)
        except WorkflowFailureError:
            pass  # cancelled or failed: closed either way
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
