"""Workflow determinism: histories recorded from real runs (tests/replay/histories, refreshed
with NOVAFLOW_RECORD_HISTORIES=1 make test) must replay against the current workflow code.
A change that breaks them needs workflow.patched() or a new workflow version."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.registry import ALL_WORKFLOWS

HISTORIES = sorted((Path(__file__).parent.parent / "replay" / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    asyncio.run(Replayer(workflows=ALL_WORKFLOWS).replay_workflow(history))


def test_histories_are_recorded() -> None:
    kinds = {p.stem.split("-")[0] for p in HISTORIES}
    assert {"CreateServer", "DeleteServer"} <= kinds
