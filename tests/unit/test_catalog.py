"""Every declared activity has exactly one implementation on the worker that runs it, so a
missing or misspelled step fails here, not as a stalled workflow task."""

from __future__ import annotations

import pytest

from activities.compute import ComputeActivities
from activities.instances import InstanceActivities
from activities.moves import MoveActivities
from activities.network import NetworkActivities
from activities.operations import OperationActivities
from activities.registry import check_complete, implementations, implements
from activities.scheduling import SchedulingActivities
from workflows import catalog
from workflows.catalog import RunsOn, declared
from workflows.contracts import ServerRef

CONTROL = [
    InstanceActivities,
    SchedulingActivities,
    NetworkActivities,
    OperationActivities,
    MoveActivities,
]
HOST = [ComputeActivities]


def test_the_control_worker_implements_every_control_activity() -> None:
    found = check_complete(CONTROL, RunsOn.CONTROL)
    assert set(found) == set(declared(RunsOn.CONTROL))
    assert "begin_operation" in found and "schedule" in found


def test_the_compute_worker_implements_every_host_activity() -> None:
    found = check_complete(HOST, RunsOn.HOST)
    assert set(found) == set(declared(RunsOn.HOST))
    assert "power_action_on_host" in found


def test_a_missing_implementation_is_refused() -> None:
    with pytest.raises(RuntimeError, match="missing.*begin_operation"):
        check_complete([c for c in CONTROL if c is not InstanceActivities], RunsOn.CONTROL)


def test_an_activity_declared_for_the_other_kind_of_worker_is_refused() -> None:
    with pytest.raises(RuntimeError, match="not declared for it.*spawn_on_host"):
        check_complete([*CONTROL, ComputeActivities], RunsOn.CONTROL)


def test_an_activity_implemented_twice_is_refused() -> None:
    class Again:
        @implements(catalog.RELEASE_QUOTA)
        def release(self, inp: ServerRef) -> None: ...

    with pytest.raises(RuntimeError, match="release_quota is implemented twice"):
        implementations([InstanceActivities, Again])


def test_every_declared_step_is_in_the_crash_matrix() -> None:
    """A new activity is killed before and after its side effect like every other: its flow's
    recorded history brings it into tests/integration/test_crash_matrix.py."""
    from tests.integration.crash_matrix import NOT_IN_THE_MATRIX, uncovered

    assert uncovered() == set(), "add a flow (or a history) that runs it"
    every = {*declared(RunsOn.CONTROL), *declared(RunsOn.HOST)}
    assert set(NOT_IN_THE_MATRIX) <= every
