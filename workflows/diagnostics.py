"""ServerDiagnostics: ask the server's host what libvirt says about its domain. Read-only and
short; the API waits for its result (Nova's GET /servers/{id}/diagnostics)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows import catalog
from workflows.contracts import (
    HOST_STEP_HEARTBEAT,
    DiagnosticsInput,
    DomainDiagnostics,
    compute_task_queue,
)


@workflow.defn(name="ServerDiagnostics")
class ServerDiagnostics:
    @workflow.run
    async def run(self, inp: DiagnosticsInput) -> DomainDiagnostics:
        return await workflow.execute_activity(
            catalog.DESCRIBE_DOMAIN.name,
            inp,
            result_type=DomainDiagnostics,
            task_queue=compute_task_queue(inp.host),
            schedule_to_close_timeout=timedelta(seconds=10),
            heartbeat_timeout=HOST_STEP_HEARTBEAT,
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary=f"read the domain's state on {inp.host}",
        )
