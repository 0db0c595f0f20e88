"""The baseline for the create/delete benchmark: a workflow of 8 trivial sequential activities.

It measures what Temporal itself costs on this machine (server + worker + client), so that
novaflow's create can be compared with the floor. The module has no side effects: the
workflow sandbox re-imports it, so the entry point stays under `if __name__ == "__main__":`.

    .venv/bin/python bench/bare_workflow.py [--address 127.0.0.1:7233] [--n 20]
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

BARE_TASK_QUEUE = "bench-bare"
BARE_STEPS = 8


@activity.defn(name="bare_step")
async def bare_step(index: int) -> int:
    """Does nothing: only the round trip through Temporal is measured."""
    return index + 1


@workflow.defn(name="BareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, steps: int) -> int:
        value = 0
        for _ in range(steps):
            value = await workflow.execute_activity(
                bare_step, value, start_to_close_timeout=timedelta(seconds=10)
            )
        return value


def _main() -> None:
    import argparse
    import asyncio
    import statistics
    import time
    import uuid

    from temporalio.client import Client
    from temporalio.worker import Worker

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", default="127.0.0.1:7233")
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()

    async def run() -> None:
        client = await Client.connect(args.address)
        async with Worker(
            client, task_queue=BARE_TASK_QUEUE, workflows=[BareWorkflow], activities=[bare_step]
        ):
            times = []
            for _ in range(args.n):
                started = time.perf_counter()
                await client.execute_workflow(
                    BareWorkflow.run,
                    BARE_STEPS,
                    id=f"bare-{uuid.uuid4()}",
                    task_queue=BARE_TASK_QUEUE,
                )
                times.append((time.perf_counter() - started) * 1000)
            print(
                f"{args.n} bare workflows of {BARE_STEPS} activities, one at a time: "
                f"p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms",
                flush=True,
            )

    asyncio.run(run())


if __name__ == "__main__":
    import os
    import sys

    _main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # temporalio/sdk-python#300: the SDK may crash at interpreter exit
