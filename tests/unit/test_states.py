from __future__ import annotations

import pytest

from novaflow.states import can_start, derive_status


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
        ("resized", None, "VERIFY_RESIZE"),
        ("deleted", None, "DELETED"),
    ],
)
def test_status_is_derived_as_nova_does(vm_state: str, task_state: str | None, status: str) -> None:
    assert derive_status(vm_state, task_state) == status


def test_delete_is_accepted_from_any_state_but_not_twice() -> None:
    assert can_start("delete", "building", "spawning")
    assert can_start("delete", "error", None)
    assert not can_start("delete", "active", "deleting")
    assert not can_start("delete", "deleted", None)
