"""Every activity, declared once: its name, its input and output types, and where it runs.

Workflows call activities through `workflows/steps.py`, which takes these declarations;
activities implement them with `activities.registry.implements(...)`; workers register what the
registry finds and refuse to start when a declared activity of their kind is missing. A
misspelled step is an AttributeError at import and a mypy error, never a stalled workflow task.
Pure data: safe inside the workflow sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar, overload

from workflows.contracts import (
    AwaitWorkflowInput,
    BeginInput,
    ClaimRef,
    ConsoleOutput,
    ConsoleOutputInput,
    DestinationInput,
    DiagnosticsInput,
    DiskTransferInput,
    DomainDiagnostics,
    EndInput,
    FailInput,
    FinishInput,
    HostCheck,
    HostPowerInput,
    HostStatus,
    MovePlan,
    MoveProgress,
    MoveStepInput,
    NetworkInput,
    NetworkResult,
    PowerResult,
    RebuildPlan,
    ReserveInput,
    ReserveResult,
    ScheduleInput,
    ScheduleResult,
    ServerPlacement,
    ServerRef,
    SpawnInput,
    Ticket,
)

In = TypeVar("In")
Out = TypeVar("Out")


class RunsOn(StrEnum):
    CONTROL = "control"  # the control-plane worker: database and Temporal only
    HOST = "host"  # the compute worker of one host (task queue compute@<host>)


@dataclass(frozen=True)
class ActivityType(Generic[In, Out]):
    name: str
    arg: type[In]
    result: type[Out] | None
    runs_on: RunsOn


@overload
def _control(name: str, arg: type[In], result: None) -> ActivityType[In, None]: ...
@overload
def _control(name: str, arg: type[In], result: type[Out]) -> ActivityType[In, Out]: ...
def _control(name: str, arg: type[In], result: type[Out] | None) -> ActivityType[In, Any]:
    return ActivityType(name, arg, result, RunsOn.CONTROL)


@overload
def _host(name: str, arg: type[In], result: None) -> ActivityType[In, None]: ...
@overload
def _host(name: str, arg: type[In], result: type[Out]) -> ActivityType[In, Out]: ...
def _host(name: str, arg: type[In], result: type[Out] | None) -> ActivityType[In, Any]:
    return ActivityType(name, arg, result, RunsOn.HOST)


# ------------------------------------------------------------ control plane
RESERVE_QUOTA = _control("reserve_quota", ReserveInput, ReserveResult)
SCHEDULE = _control("schedule", ScheduleInput, ScheduleResult)
RELEASE_CLAIM = _control("release_claim", ClaimRef, None)
ALLOCATE_NETWORK = _control("allocate_network", NetworkInput, NetworkResult)
RELEASE_NETWORK = _control("release_network", ServerRef, None)
RELEASE_QUOTA = _control("release_quota", ServerRef, None)
FINISH_CREATE = _control("finish_create", FinishInput, None)
FAIL_CREATE = _control("fail_create", FailInput, None)
LOAD_PLACEMENT = _control("load_placement", ServerRef, ServerPlacement)
FINISH_DELETE = _control("finish_delete", ServerRef, None)
CHECK_HOST = _control("check_host", HostCheck, HostStatus)
CANCEL_OPERATION = _control("cancel_operation", AwaitWorkflowInput, None)
# The state gate of every operation but create (whose gate is the reservation).
BEGIN_OPERATION = _control("begin_operation", BeginInput, Ticket)
END_OPERATION = _control("end_operation", EndInput, None)
PLAN_REBUILD = _control("plan_rebuild", ServerRef, RebuildPlan)
# Resize and cold migration (novaflow/moves.py).
PLAN_MOVE = _control("plan_move", ServerRef, MovePlan)
CLAIM_DESTINATION = _control("claim_destination", DestinationInput, ScheduleResult)
ADVANCE_MOVE = _control("advance_move", MoveProgress, None)
FINISH_MOVE = _control("finish_move", MoveStepInput, None)
CONFIRM_MOVE = _control("confirm_move", MoveStepInput, None)
REVERT_MOVE = _control("revert_move", MoveStepInput, None)
FAIL_MOVE = _control("fail_move", MoveStepInput, None)

# ------------------------------------------------------------ on a host
SPAWN_ON_HOST = _host("spawn_on_host", SpawnInput, PowerResult)
DESTROY_ON_HOST = _host("destroy_on_host", ServerRef, None)
POWER_ACTION_ON_HOST = _host("power_action_on_host", HostPowerInput, PowerResult)
DESCRIBE_DOMAIN = _host("describe_domain", DiagnosticsInput, DomainDiagnostics)
READ_CONSOLE = _host("read_console", ConsoleOutputInput, ConsoleOutput)
RECEIVE_DISK_ON_HOST = _host("receive_disk_on_host", DiskTransferInput, None)
DROP_ORIGINAL_DISK_ON_HOST = _host("drop_original_disk_on_host", ServerRef, None)


def declared(runs_on: RunsOn) -> dict[str, ActivityType[Any, Any]]:
    """Every declared activity that runs on `runs_on`, by name."""
    return {
        kind.name: kind
        for kind in globals().values()
        if isinstance(kind, ActivityType) and kind.runs_on == runs_on
    }
