"""Workflow determinism: histories recorded from real runs (tests/replay/histories, refreshed
with NOVAFLOW_RECORD_HISTORIES=1 make test) must replay against the current workflow code.
A change that breaks them needs workflow.patched() or a new workflow version."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from novaflow.resources import Resources
from workflows.contracts import CreateRequest
from workflows.registry import ALL_WORKFLOWS

REPLAY = Path(__file__).parent.parent / "replay"
HISTORIES = sorted((REPLAY / "histories").glob("*.json"))
# Each recorded history's SHA-256. It may only grow: a history is never re-recorded to make a
# changed workflow pass (use workflow.patched, keep the old history, record a new one beside it).
MANIFEST = REPLAY / "manifest.json"


def test_every_recorded_history_replays() -> None:
    """All of them through one replay worker (a worker per history costs ~4x as much); each
    failure is reported by its file's name."""

    histories = [WorkflowHistory.from_json(path.stem, path.read_text()) for path in HISTORIES]
    names = {history.run_id: history.workflow_id for history in histories}

    async def replay() -> dict[str, str]:
        async def each() -> AsyncIterator[WorkflowHistory]:
            for history in histories:
                yield history

        results = await Replayer(workflows=ALL_WORKFLOWS).replay_workflows(
            each(), raise_on_replay_failure=False
        )
        return {names[run_id]: repr(error) for run_id, error in results.replay_failures.items()}

    assert HISTORIES
    assert asyncio.run(replay()) == {}


def test_no_recorded_history_was_changed_or_removed() -> None:
    """Every history is in the manifest with its hash, and every manifest entry still exists
    unchanged. (A new history is added to both: NOVAFLOW_RECORD_HISTORIES=1 does it.)"""
    manifest = json.loads(MANIFEST.read_text())
    now = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in HISTORIES}
    changed = sorted(name for name in manifest if now.get(name) != manifest[name])
    assert changed == [], f"recorded histories changed or removed: {changed}"
    unlisted = sorted(set(now) - set(manifest))
    assert unlisted == [], f"histories missing from {MANIFEST.name}: {unlisted}"


def test_histories_are_recorded() -> None:
    kinds = {p.stem.split("-")[0] for p in HISTORIES}
    assert {"CreateServer", "DeleteServer"} <= kinds


def test_a_create_request_recorded_with_three_amount_fields_loads_as_one_value() -> None:
    """Histories recorded before the amounts became one value carry vcpus/memory_mb/disk_gb:
    a create running through the upgrade must still schedule and build with them."""
    legacy = {
        "request_id": "req-1", "reservation_id": "r-1", "project_id": "p", "user_id": "u",
        "flavor_id": "2", "flavor_name": "m1.small", "vcpus": 1, "memory_mb": 2048,
        "disk_gb": 20, "image_id": "img",
    }  # fmt: skip
    converter = DataConverter.default.payload_converter
    [payload] = converter.to_payloads([legacy])
    [request] = converter.from_payloads([payload], [CreateRequest])
    assert request.resources == Resources(1, 2048, 20)
