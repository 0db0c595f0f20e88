"""The crash matrix: every step of every operation, killed before its side effect and after it.

The cases are generated from the workflows' recorded steps (tests/integration/crash_matrix.py).
In each case a server of its own (in a project and for a user of its own) runs its flow with
one step held, scoped to that server, at one position (hypervisor/faults.py: `around`); the
worker that runs the step is killed with SIGKILL while it holds, the hold released, the
worker restarted. Then the flow must end as it would have without the crash: the documented
state, every count back (quota, claims on every host, ports and IPs, domains and disks on every
host), the instance actions without an error, and no workflow asking for a person.

A kill costs a worker restart and Temporal's timeouts (about ten seconds), so the cases that
kill the same kind of worker at the same position share one kill: a wave. Each case is still
its own test: the wave runs once (module fixture) and each test reads its case's outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from hypervisor.faults import AFTER, around, clear_faults, is_holding, set_fault
from tests.integration.client import CIRROS, NovaClient, wait_until
from tests.integration.crash_matrix import POSITIONS, Case, cases
from tests.integration.leaks import leaks
from tests.integration.test_moves import claims, settled, where_defined, where_disks
from tests.integration.test_parking import needing_attention
from workers.devstack import Stack
from workflows.catalog import RunsOn

SMALL = "2"  # the resize's flavor


@dataclass
class Run:
    """One case's server as its flow runs."""

    case: Case
    nova: NovaClient
    name: str
    server_id: str = ""
    request: threading.Thread | None = None
    answers: list[httpx.Response] = field(default_factory=list)
    held_on: str = ""  # the state directory's owner whose worker held the step
    error: BaseException | None = None

    @property
    def step(self) -> str:
        return around(self.case.step, POSITIONS[self.case.position])


def state_dirs(stack: Stack, runs_on: RunsOn) -> dict[str, Path]:
    if runs_on == RunsOn.CONTROL:
        return {"control": stack.control_state_dir}
    return {h.name: stack.host_state_dir(h.name) for h in stack.hosts}


# ------------------------------------------------------------------ the flows' requests


def start_phase(run: Run, phase: int) -> None:
    """Send the request of a phase of the case's flow (in a thread: the answer waits for the
    operation's first step, which may be the one held)."""
    flow, nova = run.case.flow.name, run.nova

    def send() -> None:
        if flow.startswith("create"):
            response = nova.create(name=run.name)
        elif flow == "stop":
            response = nova.server_action(run.server_id, {"os-stop": None})
        elif flow == "delete":
            response = nova.http.delete(f"/v2.1/servers/{run.server_id}")
        elif flow == "rebuild":
            response = nova.server_action(run.server_id, {"rebuild": {"imageRef": CIRROS}})
        elif phase == 0:
            response = nova.server_action(run.server_id, {"resize": {"flavorRef": SMALL}})
        elif flow == "resize-confirm":
            response = nova.server_action(run.server_id, {"confirmResize": None})
        else:
            response = nova.server_action(run.server_id, {"revertResize": None})
        run.answers.append(response)

    run.request = threading.Thread(target=send, daemon=True)
    run.request.start()


def phase_outcome(run: Run, phase: int) -> str:
    flow = run.case.flow.name
    if flow == "create-fails":
        return "ERROR"
    if flow == "stop":
        return "SHUTOFF"
    if flow == "delete":
        return "GONE"
    if flow.startswith("resize") and phase == 0 and flow != "resize-fails":
        return "VERIFY_RESIZE"
    return "ACTIVE"


def finish_phase(run: Run, phase: int, timeout: float = 120) -> None:
    if run.request is not None:
        run.request.join(timeout=timeout)
        [answer] = run.answers
        assert answer.status_code in (202, 204), answer.text
        if run.case.flow.name.startswith("create"):
            run.server_id = answer.json()["server"]["id"]
        run.request, run.answers = None, []
    wanted = phase_outcome(run, phase)
    if wanted == "GONE":
        run.nova.wait_status(run.server_id, "GONE", timeout=timeout)
    else:
        settled(run.nova, run.server_id, wanted, timeout=timeout)


# ------------------------------------------------------------------ a case, step by step


def prepare(stack: Stack, run: Run) -> None:
    """Bring the case's server to the start of its phase, then arm its faults."""
    flow = run.case.flow
    dirs = state_dirs(stack, run.case.runs_on)
    if not flow.name.startswith("create"):
        run.server_id = run.nova.create_ok(name=run.name)
        settled(run.nova, run.server_id, "ACTIVE")
    for phase in range(run.case.phase):  # e.g. the resize before a confirm
        start_phase(run, phase)
        finish_phase(run, phase)
    if flow.fails_at is not None:  # the failure that makes the flow compensate
        for host in stack.hosts:
            set_fault(
                stack.host_state_dir(host.name),
                around(flow.fails_at, AFTER),
                "fail",
                "injected: the matrix's failure",
                scope=run.name,
            )
    for directory in dirs.values():
        set_fault(directory, run.step, "hold", scope=run.name)


def where_is(run: Run) -> str:
    """What a case's server shows, for a failure's message."""
    if not run.server_id:
        return "not created"
    shown = run.nova.show(run.server_id)
    actions = run.nova.actions(run.server_id)
    events = (
        [
            (e["event"], e.get("result"))
            for e in run.nova.action(run.server_id, actions[0]["request_id"])["events"]
        ]
        if actions
        else []
    )
    return f"{shown['status']}/{shown['OS-EXT-STS:task_state']}, last action's events {events}"


def holder(stack: Stack, run: Run) -> str | None:
    for owner, directory in state_dirs(stack, run.case.runs_on).items():
        if is_holding(directory, run.step, scope=run.name):
            return owner
    return None


def release(stack: Stack, run: Run) -> None:
    for directory in state_dirs(stack, run.case.runs_on).values():
        clear_faults(directory, run.step, scope=run.name)


def conclude(stack: Stack, run: Run) -> None:
    """After the kill: the flow ends as documented, and nothing is left once it is deleted."""
    case, nova = run.case, run.nova
    finish_phase(run, case.phase)
    for phase in range(case.phase + 1, max(case.flow.phases) + 1):  # e.g. the confirm
        start_phase(run, phase)
        finish_phase(run, phase)
    if case.flow.fails_at is not None:
        for host in stack.hosts:
            clear_faults(
                stack.host_state_dir(host.name), around(case.flow.fails_at, AFTER), scope=run.name
            )
    assert needing_attention(stack, run.server_id) == [], "a workflow asks for a person"
    if case.flow.name != "delete":
        shown = nova.show(run.server_id)
        if shown["status"] != "ERROR":
            host = shown["OS-EXT-SRV-ATTR:host"]
            assert (
                where_defined(stack, run.server_id) == {host} == where_disks(stack, run.server_id)
            )
            assert list(claims(stack, run.server_id).values()) == [host]
            if case.runs_on == RunsOn.HOST and case.flow.name == "create":
                assert host == run.held_on, "resumed on the host it was killed on"
            assert nova.usage()["instances"] == 1
        else:
            assert shown["fault"]["message"], shown
            assert nova.usage()["instances"] == 0
        if case.flow.name.startswith("resize") and case.flow.name != "resize-fails":
            wanted_flavor = SMALL if case.flow.name == "resize-confirm" else "1"
            assert shown["flavor"]["id"] == wanted_flavor, shown["flavor"]
        recorded = [
            nova.action(run.server_id, action["request_id"])["events"]
            for action in nova.actions(run.server_id)
        ]
        errors = [event for events in recorded for event in events if event["result"] == "Error"]
        if case.flow.fails_at is None:
            assert errors == [], errors
            for events in recorded:  # a retried step found its own work: recorded once
                names = [event["event"] for event in events]
                assert len(names) == len(set(names)), names
        response = nova.admin.delete(f"/v2.1/servers/{run.server_id}")
        assert response.status_code == 204, response.text
        nova.wait_status(run.server_id, "GONE")
    wait_until(lambda: leaks(stack, [run.server_id]) == {}, "everything given back", timeout=30)
    assert nova.usage() == {"instances": 0, "cores": 0, "ram": 0, "ports": 0, "floating_ips": 0}


# ------------------------------------------------------------------ waves


def kill_holders(stack: Stack, runs: list[Run], runs_on: RunsOn) -> None:
    """Kill every worker holding a case's step, then release the holds and restart them."""
    try:
        if runs_on == RunsOn.CONTROL:
            stack.kill("control")
        else:
            for host in sorted({run.held_on for run in runs if run.held_on}):
                stack.kill(f"compute-{host}")
    finally:
        for run in runs:
            release(stack, run)
        stack.ensure_running()


def guarded(run: Run, step: Callable[[], None]) -> None:
    """Run one stage of a case; its failure is the case's, not the wave's."""
    if run.error is None:
        try:
            step()
        except BaseException as error:  # noqa: BLE001 - reported by the case's own test
            run.error = error


def run_wave(stack: Stack, wave: list[Case]) -> dict[str, Run]:
    runs = [
        Run(
            case,
            NovaClient(stack.api_url, user=f"u-{i}", project=f"p-mx-{case.id}"[:60]),
            name=f"mx-{case.id}",
        )
        for i, case in enumerate(wave)
    ]
    runs_on = wave[0].runs_on
    # A request held in the operation's first step (a create's reservation, an action's state
    # gate) has no answer until it is released, and the API gives up waiting after its
    # deadline: those are started last, once the others hold.
    last = [r for r in runs if r.case.request_waits_for_it]
    first = [r for r in runs if not r.case.request_waits_for_it]
    clock = time.monotonic()

    def took(what: str) -> None:
        print(f"wave {runs_on}/{wave[0].position}: {what} at {time.monotonic() - clock:.1f} s")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda r: guarded(r, lambda: prepare(stack, r)), runs))
        took("prepared")

        def reach(run: Run) -> None:
            try:
                run.held_on = wait_until(
                    lambda: holder(stack, run), f"{run.case.id}: a worker inside {run.step}", 60
                )
            except AssertionError as error:
                raise AssertionError(f"{error}; the server: {where_is(run)}") from None

        for group in (first, last):
            for run in group:
                guarded(run, lambda r=run: start_phase(r, r.case.phase))  # type: ignore[misc]
            list(pool.map(lambda r: guarded(r, lambda: reach(r)), group))
        took("all held")
        kill_holders(stack, [r for r in runs if r.error is None], runs_on)
        took("restarted")
        list(pool.map(lambda r: guarded(r, lambda: conclude(stack, r)), runs))
        took("concluded")
        for run in runs:
            if run.error is not None:
                print(f"  {run.case.id}: {type(run.error).__name__}: {str(run.error)[:300]}")
    for run in runs:
        release(stack, run)
        run.nova.close()
    return {run.case.id: run for run in runs}


CASES = cases()


def waves_of(chosen: list[Case]) -> dict[tuple[RunsOn, str], list[Case]]:
    """The cases that share a kill: same kind of worker, same position."""
    waves: dict[tuple[RunsOn, str], list[Case]] = {}
    for case in chosen:
        waves.setdefault((case.runs_on, case.position), []).append(case)
    return waves


class Waves:
    """Runs each wave once, when its first selected case asks for its outcome."""

    def __init__(self, stack: Stack, chosen: list[Case], selected: set[str]) -> None:
        self.stack = stack
        self.waves = waves_of([c for c in chosen if c.id in selected])
        self.outcomes: dict[str, Run] = {}

    def outcome(self, case: Case) -> Run:
        if case.id not in self.outcomes:
            self.outcomes.update(run_wave(self.stack, self.waves[(case.runs_on, case.position)]))
        return self.outcomes[case.id]


def selected_in(request: pytest.FixtureRequest) -> set[str]:
    """The ids of the module's cases this session runs (`-k` picks cases: a wave runs only
    those)."""
    return {
        item.callspec.id
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    }


@pytest.fixture(scope="module")
def waves(stack: Stack, request: pytest.FixtureRequest) -> Waves:
    return Waves(stack, CASES, selected_in(request))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_killed_inside_a_step(case: Case, waves: Waves) -> None:
    run = waves.outcome(case)
    if run.error is not None:
        raise run.error
