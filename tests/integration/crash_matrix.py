"""The crash matrix's cases, generated from the workflows' own recorded steps.

Each flow is an operation as a user runs it (one request per phase: a resize, then its confirm)
and the recorded history of that flow (tests/replay/histories). The activities a phase runs are
read from the history, in order; every one of them, in two positions (before its body, and
after its side effects and before Temporal hears of it: hypervisor/faults.py `around`), is a
case. A new operation is covered by adding its flow here; a new step of an existing one by
its new recorded history. `uncovered()` names the declared activities no case reaches.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from hypervisor.faults import AFTER, BEFORE
from workflows.catalog import RunsOn, declared

HISTORIES = Path(__file__).resolve().parents[1] / "replay" / "histories"


@dataclass(frozen=True)
class Flow:
    """An operation as a user runs it, and the history that records it."""

    name: str
    history: str
    # The phases whose steps are cases (a flow whose first phase another flow already covers
    # names only its later ones).
    phases: tuple[int, ...] = (0,)
    # Fail this step (its `:after` position) on every host, so the flow compensates; its cases
    # are then the steps that follow the failure (the undo steps).
    fails_at: str | None = None


FLOWS = (
    Flow("create", "CreateServer-completed.json"),
    Flow("create-fails", "CreateServer-failed.json", fails_at="spawn_on_host"),
    Flow("stop", "ServerAction-completed-gated.json"),
    Flow("delete", "DeleteServer-completed-gated.json"),
    Flow("resize-confirm", "ResizeServer-completed-gated-confirmed.json", phases=(0, 1)),
    Flow("resize-revert", "ResizeServer-completed-gated-reverted.json", phases=(1,)),
    Flow(
        "resize-fails",
        "ResizeServer-failed-gated-rolled-back.json",
        fails_at="receive_disk_on_host",
    ),
    Flow("rebuild", "RebuildServer-completed-gated.json"),
)
# The steps a request waits for before it is answered: a create's reservation, an operation's
# state gate (they run inside the update that starts or continues the workflow).
REQUEST_STEPS = ("reserve_quota", "begin_operation")
POSITIONS = {"before": BEFORE, "after": AFTER}
KINDS = {
    kind.name: kind.runs_on
    for kind in [*declared(RunsOn.CONTROL).values(), *declared(RunsOn.HOST).values()]
}


@dataclass(frozen=True)
class Case:
    flow: Flow
    phase: int
    step: str  # an activity's name
    position: str  # "before" or "after"

    @property
    def runs_on(self) -> RunsOn:
        return KINDS[self.step]

    @property
    def request_waits_for_it(self) -> bool:
        """Whether the step is the one the phase's request waits for (its answer then waits
        for the step)."""
        return self.step in REQUEST_STEPS

    @property
    def id(self) -> str:
        phase = f"-{self.phase + 1}" if len(self.flow.phases) > 1 or self.phase else ""
        return f"{self.flow.name}{phase}-{self.step}-{self.position}"


# A phase starts where a person acts: an update (the request that started the flow, a confirm,
# a revert), or the end of a wait for one (a resize confirmed by its confirm window).
PHASE_STARTS = ("EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED", "EVENT_TYPE_TIMER_FIRED")


def phases_of(history: str) -> list[list[str]]:
    """The activities a recorded flow ran, phase by phase, in order."""
    events = json.loads((HISTORIES / history).read_text())["events"]
    phases: list[list[str]] = [[]]
    for event in events:
        kind = event["eventType"]
        if kind in PHASE_STARTS and phases[-1]:
            phases.append([])
        elif kind == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED":
            phases[-1].append(event["activityTaskScheduledEventAttributes"]["activityType"]["name"])
        elif kind == "EVENT_TYPE_MARKER_RECORDED":
            marker = event["markerRecordedEventAttributes"]
            if marker["markerName"] == "core_local_activity":
                data = marker["details"]["data"]["payloads"][0]["data"]
                phases[-1].append(json.loads(base64.b64decode(data))["activity_type"])
    return phases


def steps_of(flow: Flow, phase: int) -> list[str]:
    """The distinct steps of one phase of a flow that are its cases, in their order."""
    steps = phases_of(flow.history)[phase]
    if flow.fails_at is not None:  # the undo steps: those after the failure, not before it
        failure = steps.index(flow.fails_at) + 1
        steps = [step for step in steps[failure:] if step not in steps[:failure]]
    return list(dict.fromkeys(steps))


def cases() -> list[Case]:
    return [
        Case(flow, phase, step, position)
        for flow in FLOWS
        for phase in flow.phases
        for step in steps_of(flow, phase)
        for position in POSITIONS
    ]


# Declared activities that no operation's flow runs as a step a worker could be killed in.
NOT_IN_THE_MATRIX = {
    # Read-only, for a person: a lost call is asked again.
    "describe_domain": "diagnostics only read the domain",
    "read_console": "console output only reads a file",
    "check_host": "a read of the host's heartbeat, run when a host step is lost",
    "cancel_operation": "a delete's cancel of a create in flight (tests/integration/test_races.py)",
    "drop_original_disk_on_host": (
        "a same-host confirm's removal of the disk kept for a revert: one unlink, done again "
        "by a retry; a confirm that cannot do it goes on (tests/workflows/test_moves.py) and "
        "the server's delete takes the file (tests/unit/test_virt_driver.py)"
    ),
}


def uncovered() -> set[str]:
    reached = {case.step for case in cases()}
    return set(KINDS) - reached - set(NOT_IN_THE_MATRIX)
