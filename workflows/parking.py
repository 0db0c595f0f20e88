"""A step whose outcome is unknown parks its operation until a person decides.

When a host stops answering after it took a step (its worker heartbeated, then went silent, and
the retry was never picked up), nobody can tell whether the step happened: guessing either way
could leave a guest running that the database calls stopped, or the reverse. So the operation
parks: `NeedsAttention = true`, the `phase` query and the current details say what it waits
for, and it waits for one of three signals, from the ops CLI (`novaflow ops retry ...`),
`temporal workflow signal --name retry ...`, or the Temporal UI (More Actions -> Send a Signal):

    retry       run the step again (e.g. once the host is back)
    rollback    give up the operation: compensate, as for any failure
    mark-error  leave the server in ERROR for a person to repair
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, TimeoutError

from workflows import steps
from workflows.compensation import UndoAbandoned
from workflows.contracts import NEEDS_ATTENTION
from workflows.phase import PhaseReporting

T = TypeVar("T")


class MarkedError(UndoAbandoned):
    """An operator decided a parked operation leaves its server in ERROR (in an undo: that
    undo is given up, the others still run)."""


class Decision(StrEnum):
    RETRY = "retry"
    ROLLBACK = "rollback"
    MARK_ERROR = "mark-error"


def outcome_unknown(error: ActivityError) -> bool:
    """The host took the step (it heartbeated) and then stopped answering: its retry timed out
    waiting for the host's worker. A step that was never taken is not unknown: it did not run."""
    timeout = error.cause
    return (
        steps.not_picked_up(error)
        and isinstance(timeout, TimeoutError)
        and bool(timeout.last_heartbeat_details)
    )


class Parkable(PhaseReporting):
    _decision: Decision | None = None
    _parked: bool = False

    @workflow.signal(name=Decision.RETRY)
    def retry(self) -> None:
        self._decide(Decision.RETRY)

    @workflow.signal(name=Decision.ROLLBACK)
    def rollback(self) -> None:
        self._decide(Decision.ROLLBACK)

    @workflow.signal(name=Decision.MARK_ERROR)
    def mark_error(self) -> None:
        self._decide(Decision.MARK_ERROR)

    def _decide(self, decision: Decision) -> None:
        if not self._parked:
            workflow.logger.warning("signal %s ignored: the operation is not parked", decision)
            return
        self._decision = decision

    async def _park(self, why: str) -> Decision:
        """Wait for a person's decision about a step whose outcome is unknown."""
        self._parked, self._decision = True, None
        workflow.upsert_search_attributes([NEEDS_ATTENTION.value_set(True)])
        self._enter(f"parked: {why}; waiting for a signal: retry, rollback or mark-error")
        try:
            await workflow.wait_condition(lambda: self._decision is not None)
        finally:  # decided, or cancelled (a DELETE): nobody needs to look any more
            self._parked = False
            workflow.upsert_search_attributes([NEEDS_ATTENTION.value_set(False)])
        decision = self._decision
        assert decision is not None
        self._enter(f"{decision} (decided by a person)")
        return decision

    async def _until_decided(self, action: str, host: str, step: Callable[[], Awaitable[T]]) -> T:
        """Run the host step `action` on `host`; when its outcome is unknown,
        park, then do what a person decides: retry runs it again, rollback re-raises its
        failure (the caller compensates as for any failure), mark-error raises MarkedError."""
        parked_before, what = False, f"{action} on {host}"
        while True:
            self._enter(what)
            try:
                return await step()
            except ActivityError as error:
                # A retry that no host took leaves the outcome as unknown as it was.
                unknown = outcome_unknown(error) or (parked_before and steps.not_picked_up(error))
                if not unknown:
                    raise
                parked_before = True
                decision = await self._park(
                    f"{what}: the host took the step, then stopped answering"
                )
                if decision == Decision.ROLLBACK:
                    raise
                if decision == Decision.MARK_ERROR:
                    raise MarkedError(
                        f"{action} had an unknown outcome on the server's host; "
                        "marked ERROR by an operator"
                    ) from None
