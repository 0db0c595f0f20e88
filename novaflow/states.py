"""Nova's server state model: vm_state + task_state + power_state, and the status derived."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class VmState(StrEnum):
    BUILDING = "building"
    ACTIVE = "active"
    STOPPED = "stopped"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    RESIZED = "resized"
    ERROR = "error"
    DELETED = "deleted"


class TaskState(StrEnum):
    SCHEDULING = "scheduling"
    NETWORKING = "networking"
    BLOCK_DEVICE_MAPPING = "block_device_mapping"
    SPAWNING = "spawning"
    DELETING = "deleting"
    # Used by the operations that build on create (migrate, resize, rebuild, power actions).
    MIGRATING = "migrating"
    RESIZE_PREP = "resize_prep"
    RESIZE_MIGRATING = "resize_migrating"
    RESIZE_MIGRATED = "resize_migrated"
    RESIZE_FINISH = "resize_finish"
    RESIZE_REVERTING = "resize_reverting"
    RESIZE_CONFIRMING = "resize_confirming"
    REBUILDING = "rebuilding"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    REBOOTING = "rebooting"
    REBOOTING_HARD = "rebooting_hard"
    PAUSING = "pausing"
    UNPAUSING = "unpausing"
    SUSPENDING = "suspending"
    RESUMING = "resuming"


class PowerState(IntEnum):
    """Nova's power_state numbers (what the API shows in OS-EXT-STS:power_state)."""

    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


# libvirt's virDomainState -> Nova's power state.
LIBVIRT_POWER_STATE = {
    0: PowerState.NOSTATE,
    1: PowerState.RUNNING,
    2: PowerState.RUNNING,  # blocked: still running
    3: PowerState.PAUSED,
    4: PowerState.SHUTDOWN,  # shutting down
    5: PowerState.SHUTDOWN,  # shut off
    6: PowerState.CRASHED,
    7: PowerState.SUSPENDED,  # pmsuspended
}

_STATUS_BY_VM_STATE = {
    VmState.BUILDING: "BUILD",
    VmState.ACTIVE: "ACTIVE",
    VmState.STOPPED: "SHUTOFF",
    VmState.PAUSED: "PAUSED",
    VmState.SUSPENDED: "SUSPENDED",
    VmState.RESIZED: "VERIFY_RESIZE",
    VmState.ERROR: "ERROR",
    VmState.DELETED: "DELETED",
}

_STATUS_BY_TASK_STATE = {
    TaskState.MIGRATING: "MIGRATING",
    TaskState.RESIZE_PREP: "RESIZE",
    TaskState.RESIZE_MIGRATING: "RESIZE",
    TaskState.RESIZE_MIGRATED: "RESIZE",
    TaskState.RESIZE_FINISH: "RESIZE",
    TaskState.RESIZE_REVERTING: "REVERT_RESIZE",
    TaskState.REBUILDING: "REBUILD",
    TaskState.REBOOTING: "REBOOT",
    TaskState.REBOOTING_HARD: "HARD_REBOOT",
}


# The tasks whose status shows even on a server in ERROR (a rebuild recovers one, as Nova's).
_OVERRIDING_ERROR = {TaskState.REBUILDING}


def derive_status(vm_state: str, task_state: str | None) -> str:
    """The API's `status`, as Nova derives it: a few tasks override the vm_state's status."""
    if task_state in _STATUS_BY_TASK_STATE and (
        vm_state != VmState.ERROR or task_state in _OVERRIDING_ERROR
    ):
        return _STATUS_BY_TASK_STATE[TaskState(task_state)]
    return _STATUS_BY_VM_STATE.get(VmState(vm_state), "UNKNOWN")


def status_condition(status: str) -> tuple[set[str], set[str | None] | None, set[str]]:
    """The states behind an API `status` (for filtering in SQL): (vm_states, task_states or
    None for any, task_states excluded). Unknown statuses match nothing."""
    status = status.upper()
    overriding = {str(t) for t in _STATUS_BY_TASK_STATE}
    over_error = {str(t) for t in _OVERRIDING_ERROR}
    by_task = {str(t) for t, s in _STATUS_BY_TASK_STATE.items() if s == status}
    if by_task:
        vm_states = {str(v) for v in VmState if v != VmState.ERROR or by_task <= over_error}
        return vm_states, set(by_task), set()
    vm_states = {str(v) for v, s in _STATUS_BY_VM_STATE.items() if s == status}
    excluded = overriding if VmState.ERROR not in vm_states else over_error
    return vm_states, None, excluded
