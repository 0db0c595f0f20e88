"""Where an operation is, for the people watching it: the `phase` query and the workflow's
current details (shown by the Temporal UI and `temporal workflow metadata`)."""

from __future__ import annotations

from temporalio import workflow


class PhaseReporting:
    """Mixed into every operation's workflow class."""

    _phase: str = "starting"

    @workflow.query(name="phase")
    def phase(self) -> str:
        return self._phase

    def _enter(self, phase: str) -> None:
        self._phase = phase
        workflow.set_current_details(phase)
