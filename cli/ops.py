"""Operations as Temporal knows them: find them by visibility query, read one's steps from its
history, and send the signals a parked operation waits for (workflows/parking.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.converter import DataConverter
from temporalio.service import RPCError

import codec
from cli.config import CliError, Endpoints
from workflows.contracts import HOST, NEEDS_ATTENTION, OPERATION
from workflows.parking import Decision

STATUSES = {s.name.lower().replace("_", "-"): s for s in WorkflowExecutionStatus}


def _quoted(value: str) -> str:
    if '"' in value or "\\" in value:
        raise CliError(f"not a valid filter value: {value!r}")
    return f'"{value}"'


def list_query(
    server: str | None = None,
    host: str | None = None,
    project: str | None = None,
    operation: str | None = None,
    status: str | None = None,
    needs_attention: bool = False,
) -> str:
    """The visibility query for the filters (the same text works in the Temporal UI)."""
    terms = []
    for attribute, value in (
        ("ServerId", server),
        ("Host", host),
        ("ProjectId", project),
        ("Operation", operation),
    ):
        if value:
            terms.append(f"{attribute} = {_quoted(value)}")
    if status:
        if status.lower() not in STATUSES:
            raise CliError(f"status: must be one of {', '.join(STATUSES)} (got {status!r})")
        name = STATUSES[status.lower()].name.title().replace("_", "")
        terms.append(f'ExecutionStatus = "{name}"')
    if needs_attention:
        terms.append("NeedsAttention = true")
    return " AND ".join(terms) or "ServerId IS NOT NULL"


@dataclass
class OperationRow:
    workflow_id: str
    kind: str
    status: str
    started: datetime | None
    operation: str
    host: str
    needs_attention: bool


def data_converter(where: Endpoints) -> DataConverter:
    """With the stack's payload keys, the CLI reads what the workers wrote (a phase, a memo);
    without any (no NOVAFLOW_PAYLOAD_KEYS, no key in the state directory), payloads stay
    encrypted: operations are still listed, shown and signalled."""
    if not where.payload_keys and not (Path(where.state_dir) / codec.KEY_FILE).exists():
        return DataConverter.default
    try:
        keys = codec.load_keys(where.payload_keys, Path(where.state_dir), create=False)
    except codec.PayloadKeyError as error:
        raise CliError(str(error)) from None
    return codec.data_converter(keys)


async def connect(where: Endpoints) -> Client:
    converter = data_converter(where)
    try:
        return await Client.connect(
            where.temporal_address, namespace=where.namespace, data_converter=converter
        )
    except RuntimeError as error:  # the SDK reports a refused connection as RuntimeError
        why = "connection refused" if "refused" in str(error).lower() else str(error)[:120]
        raise CliError(f"cannot reach Temporal at {where.temporal_address} ({why})") from None


async def list_operations(client: Client, query: str, limit: int = 50) -> list[OperationRow]:
    rows = []
    try:
        async for execution in client.list_workflows(query, limit=limit):
            rows.append(_row(execution))
    except RPCError as error:
        raise CliError(f"Temporal refused the query {query!r}: {error.message}") from None
    return rows


def _row(execution: WorkflowExecution) -> OperationRow:
    attributes = execution.typed_search_attributes
    return OperationRow(
        workflow_id=execution.id,
        kind=execution.workflow_type,
        status=execution.status.name.lower() if execution.status else "unknown",
        started=execution.start_time,
        operation=attributes.get(OPERATION) or "",
        host=attributes.get(HOST) or "",
        needs_attention=bool(attributes.get(NEEDS_ATTENTION)),
    )


async def resolve(client: Client, ident: str, parked: bool = False) -> str:
    """A workflow id, given one or a server id (then the server's newest operation, or its
    parked one when `parked`)."""
    if ident.startswith("server-"):
        return ident
    query = f"ServerId = {_quoted(ident)}"
    if parked:
        query += ' AND NeedsAttention = true AND ExecutionStatus = "Running"'
    found = await list_operations(client, query, limit=20)
    if not found:
        what = "parked operation" if parked else "operation"
        raise CliError(f"no {what} found for {ident}")
    found.sort(key=lambda row: row.started or datetime.min, reverse=True)
    return found[0].workflow_id


async def signal(client: Client, workflow_id: str, decision: Decision) -> None:
    try:
        await client.get_workflow_handle(workflow_id).signal(decision.value)
    except RPCError as error:
        raise CliError(f"cannot signal {workflow_id}: {error.message}") from None


@dataclass
class Step:
    name: str
    scheduled: datetime | None = None
    finished: datetime | None = None
    outcome: str = "running"
    detail: str = ""


@dataclass
class PendingStep:
    name: str
    attempt: int
    state: str
    last_failure: str


@dataclass
class OperationDetail:
    row: OperationRow
    phase: str
    closed: datetime | None
    steps: list[Step] = field(default_factory=list)
    pending: list[PendingStep] = field(default_factory=list)


async def show(client: Client, workflow_id: str) -> OperationDetail:
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as error:
        raise CliError(f"no operation {workflow_id}: {error.message}") from None
    try:
        phase = str(await handle.query("phase", rpc_timeout=_QUERY_TIMEOUT))
    except Exception:  # a closed workflow with no worker to answer, or an older one
        phase = ""
    detail = OperationDetail(_row(description), phase, description.close_time)
    for pending in description.raw_description.pending_activities:
        failure = pending.last_failure.message if pending.HasField("last_failure") else ""
        detail.pending.append(
            PendingStep(
                pending.activity_type.name,
                pending.attempt,
                _pending_state(pending.state),
                failure,
            )
        )
    detail.steps = _steps(await handle.fetch_history())
    return detail


_QUERY_TIMEOUT = timedelta(seconds=5)


def _pending_state(state: PendingActivityState.ValueType) -> str:
    return PendingActivityState.Name(state).removeprefix("PENDING_ACTIVITY_STATE_").lower()


def _steps(history: object) -> list[Step]:
    """Each activity of the history with its times and outcome (local activities appear as
    markers: finished when recorded)."""
    steps: dict[int, Step] = {}
    for event in history.events:  # type: ignore[attr-defined]
        when = event.event_time.ToDatetime()
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            steps[event.event_id] = Step(attrs.activity_type.name, scheduled=when)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            step = steps.get(event.activity_task_completed_event_attributes.scheduled_event_id)
            if step:
                step.finished, step.outcome = when, "completed"
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            attrs = event.activity_task_failed_event_attributes
            step = steps.get(attrs.scheduled_event_id)
            if step:
                step.finished, step.outcome = when, "failed"
                step.detail = attrs.failure.message
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            attrs = event.activity_task_timed_out_event_attributes
            step = steps.get(attrs.scheduled_event_id)
            if step:
                step.finished, step.outcome = when, "timed out"
                step.detail = attrs.failure.message
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
            step = steps.get(event.activity_task_canceled_event_attributes.scheduled_event_id)
            if step:
                step.finished, step.outcome = when, "cancelled"
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            attrs = event.marker_recorded_event_attributes
            if attrs.marker_name == "core_local_activity":
                steps[event.event_id] = Step(
                    _local_activity_name(attrs), scheduled=when, finished=when, outcome="completed"
                )
    return list(steps.values())


def _local_activity_name(attrs: object) -> str:
    """A local activity's name, from its marker's data (SDK core writes it as JSON)."""
    try:
        payload = attrs.details["data"].payloads[0].data  # type: ignore[attr-defined]
        return str(json.loads(payload)["activity_type"])
    except (KeyError, IndexError, ValueError, TypeError):
        return "local activity"
