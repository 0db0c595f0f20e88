from __future__ import annotations

import pytest

from novaflow.states import derive_status


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
