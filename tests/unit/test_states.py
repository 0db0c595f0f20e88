from __future__ import annotations

import pytest

from novaflow.states import TaskState, VmState, derive_status, status_condition


@pytest.mark.parametrize(
    ("vm_state", "task_state", "status"),
    [
        ("building", "scheduling", "BUILD"),
        ("building", "spawning", "BUILD"),
        ("active", None, "ACTIVE"),
        ("active", "deleting", "ACTIVE"),
        ("stopped", None, "SHUTOFF"),
        ("error", None, "ERROR"),
        ("error", "deleting", "ERROR"),
        ("active", "migrating", "MIGRATING"),
        ("active", "rebuilding", "REBUILD"),
        ("error", "rebuilding", "REBUILD"),  # a rebuild recovering a server in ERROR
        ("error", "rebooting_hard", "ERROR"),
        ("resized", None, "VERIFY_RESIZE"),
        ("deleted", None, "DELETED"),
    ],
)
def test_status_is_derived_as_nova_does(vm_state: str, task_state: str | None, status: str) -> None:
    assert derive_status(vm_state, task_state) == status


STATUSES = [
    "BUILD",
    "ACTIVE",
    "SHUTOFF",
    "PAUSED",
    "SUSPENDED",
    "VERIFY_RESIZE",
    "ERROR",
    "DELETED",
    "MIGRATING",
    "RESIZE",
    "REVERT_RESIZE",
    "REBUILD",
    "REBOOT",
    "HARD_REBOOT",
    "BOGUS",
]


@pytest.mark.parametrize("status", STATUSES)
def test_the_status_filter_matches_exactly_the_servers_showing_that_status(status: str) -> None:
    """GET /servers?status=X filters in SQL on (vm_state, task_state): the condition must pick
    exactly the rows whose derived status is X, for every pair of states."""
    vm_states, task_states, excluded = status_condition(status)
    for vm_state in VmState:
        for task_state in [None, *TaskState]:
            picked = (
                vm_state in vm_states
                and (task_states is None or task_state in task_states)
                and (task_state is None or task_state not in excluded)
            )
            shown = derive_status(vm_state, task_state)
            assert picked == (shown == status), (vm_state, task_state, shown)
