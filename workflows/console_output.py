"""ServerConsoleOutput: ask the server's host for the end of its console log. Read-only and
short; the API waits for its result (Nova's os-getConsoleOutput server action)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows import catalog
from workflows.contracts import (
    HOST_STEP_HEARTBEAT,
    ConsoleOutput,
    ConsoleOutputInput,
    compute_task_queue,
)


@workflow.defn(name="ServerConsoleOutput")
class ServerConsoleOutput:
    @workflow.run
    async def run(self, inp: ConsoleOutputInput) -> ConsoleOutput:
        return await workflow.execute_activity(
            catalog.READ_CONSOLE.name,
            inp,
            result_type=ConsoleOutput,
            task_queue=compute_task_queue(inp.host),
            schedule_to_close_timeout=timedelta(seconds=10),
            heartbeat_timeout=HOST_STEP_HEARTBEAT,
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary=f"read the console log on {inp.host}",
        )
