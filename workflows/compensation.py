"""Compensations: undo steps registered *before* their step runs (a step can succeed and still
time out), run in reverse, each idempotent (an already-missing domain or IP counts as undone).
A failed undo is reported, never swallowed: the operation ends with the list of what failed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

Undo = Callable[[], Awaitable[object]]
T = TypeVar("T")


async def run_to_completion(work: Coroutine[Any, Any, T]) -> T:
    """Await `work` to its end even when a cancel reaches the caller meanwhile: the cancel is
    re-raised only after the work finished. (asyncio.shield alone would let the caller go on
    and the workflow close with the work half done.)"""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


class UndoAbandoned(Exception):
    """An undo a person gave up (e.g. mark-error on a parked undo step): counted as failed,
    and the undo steps after it still run."""


class Compensations:
    def __init__(self) -> None:
        self._steps: list[tuple[str, Undo]] = []

    def add(self, name: str, undo: Undo) -> None:
        self._steps.append((name, undo))

    def __len__(self) -> int:
        return len(self._steps)

    async def run(self) -> list[str]:
        """Run every undo in reverse order, to the end even if the workflow is cancelled
        meanwhile. Returns the names of undo steps that failed (empty: all given back)."""
        return await run_to_completion(self._run_all())

    async def _run_all(self) -> list[str]:
        failed: list[str] = []
        while self._steps:
            name, undo = self._steps.pop()
            try:
                await undo()
            except (ActivityError, UndoAbandoned) as error:
                workflow.logger.error(
                    "compensation %s failed: %s", name, getattr(error, "cause", None) or error
                )
                failed.append(name)
        return failed
