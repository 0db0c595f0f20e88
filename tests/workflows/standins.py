"""Recording stand-ins for every declared activity (workflows/catalog.py), for fast tests of
the workflows' branches: a stand-in answers as its test scripts it and records each call. The
real-stack tests (tests/integration) remain the proof that the real activities work; these
give every branch of every workflow in seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from novaflow.operations import rule_for
from novaflow.resources import Resources
from workers.control import SANDBOX
from workflows.catalog import ActivityType, RunsOn, declared
from workflows.contracts import (
    CONTROL_TASK_QUEUE,
    BeginInput,
    DestinationInput,
    HostStatus,
    MovePlan,
    NetworkResult,
    PowerResult,
    RebuildPlan,
    ReserveInput,
    ReserveResult,
    ScheduleInput,
    ScheduleResult,
    ServerPlacement,
    Ticket,
    compute_task_queue,
)
from workflows.registry import ALL_WORKFLOWS

HOSTS = ("host-a", "host-b", "host-c")
POWER_AFTER = {"stop": 4, "suspend": 4, "pause": 3}

# A stand-in's behaviour: (input, host or None) -> result, or raise.
Behaviour = Callable[[Any, str | None], Any]


@dataclass
class Call:
    name: str
    arg: Any
    host: str | None


def default_answer(name: str, arg: Any, host: str | None) -> Any:
    if name == "reserve_quota":
        assert isinstance(arg, ReserveInput)
        return ReserveResult([s.server_id for s in arg.servers])
    if name == "schedule":
        assert isinstance(arg, ScheduleInput)
        free = [h for h in HOSTS if h not in arg.exclude_hosts]
        if not free:
            raise ApplicationError("no host left", type="NoValidHost", non_retryable=True)
        return ScheduleResult(free[0], f"{arg.ctx.server_id}/build/{arg.attempt}", free[1:])
    if name == "allocate_network":
        return NetworkResult(ports=[])
    if name == "spawn_on_host":
        return PowerResult(power_state=1)
    if name == "begin_operation":
        assert isinstance(arg, BeginInput)
        return Ticket(
            request_id=arg.ctx.request_id,
            host="host-a",
            host_action=rule_for(arg.action, arg.options).host_action,  # the domain's table
        )
    if name == "power_action_on_host":
        return PowerResult(power_state=POWER_AFTER.get(arg.action, 1))
    if name == "plan_move":
        return MovePlan(
            migration_id=1,
            source="host-a",
            source_uri="test:///host-a",
            dest_claim_id=f"{arg.ctx.server_id}/resize/{arg.ctx.request_id}",
            was_running=True,
            name="vm",
            project_id="p1",
            image_id="img",
            old_flavor_name="m1.tiny",
            new_flavor_name="m1.small",
            old_resources=Resources(1, 512, 1),
            new_resources=Resources(1, 2048, 20),
        )
    if name == "plan_rebuild":
        return RebuildPlan(
            host="host-a",
            name="vm",
            project_id="p1",
            flavor_name="m1.tiny",
            image_id="img",
            resources=Resources(1, 512, 1),
        )
    if name == "claim_destination":
        assert isinstance(arg, DestinationInput)
        free = [h for h in HOSTS if h not in arg.exclude_hosts]
        free = [h for h in free if arg.only_host in (None, h)]
        if not free:
            raise ApplicationError("no host left", type="NoValidHost", non_retryable=True)
        return ScheduleResult(free[0], arg.claim_id, free[1:])
    if name == "load_placement":
        return ServerPlacement(host="host-a")
    if name == "check_host":
        return HostStatus(up=True)
    return None


class StandInActivities:
    """Every declared activity, as a recording stand-in (not the real thing: a test double at
    the boundary between a workflow and its activities)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.behaviour: dict[str, Behaviour] = {}
        self.changed = asyncio.Event()

    def on(self, name: str, behaviour: Behaviour) -> None:
        """Script the stand-in `name` (must be a declared activity)."""
        assert name in declared(RunsOn.CONTROL) | declared(RunsOn.HOST), name
        self.behaviour[name] = behaviour

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def called(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    def functions(self, runs_on: RunsOn) -> list[Callable[..., Awaitable[Any]]]:
        return [self._stand_in(kind) for kind in declared(runs_on).values()]

    def _stand_in(self, kind: ActivityType[Any, Any]) -> Callable[..., Awaitable[Any]]:
        async def stand_in(arg: Any) -> Any:
            queue = activity.info().task_queue
            host = queue.removeprefix("compute@") if queue.startswith("compute@") else None
            self.calls.append(Call(kind.name, arg, host))
            behaviour = self.behaviour.get(kind.name)
            result = behaviour(arg, host) if behaviour else default_answer(kind.name, arg, host)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        stand_in.__annotations__ = {"arg": kind.arg, "return": kind.result}
        stand_in.__name__ = stand_in.__qualname__ = f"stand_in_{kind.name}"
        return activity.defn(name=kind.name)(stand_in)


def held_until(release: asyncio.Event, inside: asyncio.Event, name: str) -> Behaviour:
    """A step that runs until `release` (heartbeating, as the real host steps do, so that a
    cancel reaches it), then answers as usual; `inside` is set once it runs."""

    async def hold(arg: Any, host: str | None) -> Any:
        inside.set()
        while not release.is_set():
            if not activity.info().is_local:
                activity.heartbeat()
            await asyncio.sleep(0.05)
        return default_answer(name, arg, host)

    return hold


def refuse(message: str, kind: str = "Conflict") -> Behaviour:
    """A step that fails for good with the domain error `kind` (as the real ones translate
    them: OverQuota, NoValidHost, Conflict, ...)."""

    def refused(_: Any, __: str | None) -> Any:
        raise ApplicationError(message, type=kind, non_retryable=True)

    return refused


def host_failure(message: str = "injected: define failed") -> Behaviour:
    def fail(_: Any, host: str | None) -> Any:
        raise ApplicationError(f"{host}: {message}", type="HostFailure", non_retryable=True)

    return fail


async def run_workers(
    address: str,
    standins: StandInActivities,
    scenario: Callable[[Client], Awaitable[Any]],
    hosts: tuple[str, ...] = HOSTS,
    control: bool = True,
) -> Any:
    """Run `scenario` with a control worker (every workflow, the control stand-ins; unless
    `control` is False) and one compute worker per host in `hosts` (a host left out takes no
    work: its worker is down)."""
    client = await Client.connect(address)
    workers = [
        *(
            [
                Worker(
                    client,
                    task_queue=CONTROL_TASK_QUEUE,
                    workflows=ALL_WORKFLOWS,
                    activities=standins.functions(RunsOn.CONTROL),
                    workflow_runner=SANDBOX,
                )
            ]
            if control
            else []
        ),
        *(
            Worker(
                client,
                task_queue=compute_task_queue(host),
                activities=standins.functions(RunsOn.HOST),
            )
            for host in hosts
        ),
    ]
    async with AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        return await scenario(client)
