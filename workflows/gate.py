"""The first step of every operation but create: the state gate, run by the update that starts
the workflow (update-with-start), so the caller gets 409/403/404 from the request itself and
nothing is written before the workflow exists. Mixed into each operation's workflow class."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import steps
from workflows.contracts import BeginInput, Ticket
from workflows.errors import reraisable
from workflows.phase import PhaseReporting


async def first_write_decided(decided: asyncio.Event) -> None:
    """Wait until the update that makes an operation's first write has answered, either way.

    An asyncio.Event set by the handler, not a wait_condition: the SDK (1.35) does not
    re-check conditions in an activation whose only news is a failed update, so a run waiting
    on a condition that the failure made true would wait for ever (seen: refused creates
    left running)."""
    await decided.wait()
    if not workflow.all_handlers_finished():
        await workflow.wait_condition(workflow.all_handlers_finished)


class Gated(PhaseReporting):
    _ticket: Ticket | None = None
    _begin: BeginInput | None = None
    _decided: asyncio.Event | None = None

    def _gate_decided(self) -> asyncio.Event:
        if self._decided is None:
            self._decided = asyncio.Event()
        return self._decided

    @workflow.update(name="begin")
    async def begin(self, inp: BeginInput) -> Ticket:
        """Check the server's state, lock and policy; record the instance action. A repeated
        request that reaches a running operation (a second DELETE) gets the same ticket."""
        if self._ticket is not None:
            return self._ticket
        if self._begin is not None:
            raise ApplicationError(
                "this operation is already passing its gate", type="Conflict", non_retryable=True
            )
        self._begin = inp
        self._enter(f"{inp.action}: checking the server's state")
        try:
            self._ticket = await steps.begin_operation(inp)
        except ActivityError as error:
            self._enter(f"refused: {reraisable(error).message[:100]}")
            raise reraisable(error) from None
        finally:
            self._gate_decided().set()
        return self._ticket

    async def _gate(self) -> Ticket | None:
        """The ticket once the gate let the operation through; None if it refused it."""
        await first_write_decided(self._gate_decided())
        return self._ticket
