"""Control-plane worker: every workflow, and the activities that touch only the database
(quota, scheduling and claims, IPAM, server records) or Temporal itself.

    python -m workers.control
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from activities.instances import InstanceActivities
from activities.moves import MoveActivities
from activities.network import NetworkActivities
from activities.operations import OperationActivities
from activities.registry import registered
from activities.scheduling import SchedulingActivities
from hypervisor.faults import FaultInjector
from novaflow.config import get_settings
from novaflow.db import Database
from novaflow.scheduler import FilterScheduler
from workers.common import connect, setup_logging, stop_event_on_signals
from workers.step_faults import StepFaults, names_in
from workflows.catalog import RunsOn
from workflows.contracts import CONTROL_TASK_QUEUE
from workflows.registry import ALL_WORKFLOWS

# The workflow sandbox re-imports a workflow's modules for every run. The deterministic modules
# that every workflow shares (contracts, typed steps, compensations) are passed through
# instead: imported once, which takes most of the CPU of starting a workflow off the path.
SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "workflows.contracts",
        "workflows.catalog",
        "workflows.steps",
        "workflows.compensation",
        "workflows.phase",
        "workflows.gate",
        "workflows.parking",
        "workflows.errors",
    )
)


def cache_workflow_bytecode() -> None:
    """Write the bytecode of the workflow modules, even where writing it is turned off
    (PYTHONDONTWRITEBYTECODE, as on the CI machines): the sandbox re-imports a workflow's module
    for every run, and without cached bytecode each run compiles its source again, about a
    tenth of the control worker's CPU per operation. A tree that cannot be written is left
    as it is (slower, still correct)."""
    package_dir = os.path.dirname(os.path.abspath(workflows.__file__))
    with contextlib.suppress(OSError):
        compileall.compile_dir(package_dir, quiet=2)


async def main() -> None:
    log = setup_logging("control")
    cache_workflow_bytecode()
    settings = get_settings()
    db = Database(settings.database_url)
    scheduler = FilterScheduler.from_config(settings.scheduler_filters, settings.scheduler_weighers)
    client = await connect(settings)
    # Tests and drills only (NOVAFLOW_FAULT_INJECTION): off by default.
    faults = FaultInjector(settings.state_dir / "control") if settings.fault_injection else None
    down_after = settings.service_down
    instances = InstanceActivities(db, down_after)
    scheduling = SchedulingActivities(db, scheduler, down_after)
    network = NetworkActivities(db)
    operations = OperationActivities(client)
    moving = MoveActivities(db)
    stop = stop_event_on_signals()
    with ThreadPoolExecutor(max_workers=32) as executor:
        worker = Worker(
            client,
            task_queue=CONTROL_TASK_QUEUE,
            workflows=ALL_WORKFLOWS,
            activities=registered(
                [instances, scheduling, network, operations, moving], RunsOn.CONTROL
            ),
            activity_executor=executor,
            workflow_runner=SANDBOX,
            max_concurrent_activities=32,
            interceptors=[StepFaults(faults, names_in(db))] if faults is not None else [],
        )
        async with worker:
            log.info("control worker ready on %s (pid %d)", CONTROL_TASK_QUEUE, os.getpid())
            await stop.wait()
    db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
