"""The database steps of a resize or a cold migration, on the control-plane worker: read the
plan, record each phase of the migration, and the ends (finished, confirmed, reverted, rolled
back). The rules are in novaflow/moves.py; each step is idempotent."""

from __future__ import annotations

from activities.base import StepRecorder
from activities.network import allocated_ports, image_content_of
from activities.registry import implements
from novaflow import moves
from novaflow.db import Database
from novaflow.models import Host, Image
from novaflow.states import TaskState
from workflows import catalog
from workflows.contracts import (
    MovePlan,
    MoveProgress,
    MoveStepInput,
    ServerRef,
)


class MoveActivities:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.recorder = StepRecorder(db)

    @implements(catalog.PLAN_MOVE)
    def plan_move(self, inp: ServerRef) -> MovePlan:
        with self.db.read() as session:
            plan = moves.plan(session, inp.ctx.server_id, inp.ctx.request_id)
            migration, server = plan.migration, plan.server
            source = session.get(Host, migration.source_compute)
            ports = allocated_ports(session, server.id)
            assert migration.id is not None
            return MovePlan(
                migration_id=migration.id,
                source=migration.source_compute,
                source_uri=source.libvirt_uri if source is not None else "",
                dest_claim_id=migration.dest_claim_id,
                was_running=migration.was_running,
                name=server.name,
                project_id=server.project_id,
                image_id=server.image_id,
                old_flavor_name=plan.old_flavor_name,
                new_flavor_name=plan.new_flavor_name,
                old_resources=migration.old_resources,
                new_resources=migration.new_resources,
                ports=ports,
                image_properties=plan.image_properties,
                availability_zone=server.availability_zone,
                server_group_id=server.server_group_id,
                requested_host=migration.requested_host,
                image_content=image_content_of(session, session.get(Image, server.image_id)),
            )

    @implements(catalog.ADVANCE_MOVE)
    def advance_move(self, inp: MoveProgress) -> None:
        with self.recorder.step(inp.ctx, inp.ctx.event, inp.dest) as session:
            moves.advance(
                session, inp.migration_id, inp.status, TaskState(inp.task_state), inp.dest
            )

    @implements(catalog.FINISH_MOVE)
    def finish_move(self, inp: MoveStepInput) -> None:
        with self.recorder.step(inp.ctx, inp.ctx.event) as session:
            moves.finish(session, inp.migration_id, inp.power_state or 0)

    @implements(catalog.CONFIRM_MOVE)
    def confirm_move(self, inp: MoveStepInput) -> None:
        with self.recorder.step(inp.ctx, inp.ctx.event) as session:
            moves.confirm(session, inp.migration_id, inp.ctx.request_id)

    @implements(catalog.REVERT_MOVE)
    def revert_move(self, inp: MoveStepInput) -> None:
        with self.recorder.step(inp.ctx, inp.ctx.event) as session:
            moves.revert(
                session, inp.migration_id, inp.ctx.request_id, inp.power_state or 0, inp.error
            )

    @implements(catalog.FAIL_MOVE)
    def fail_move(self, inp: MoveStepInput) -> None:
        with self.recorder.step(inp.ctx, inp.ctx.event) as session:
            moves.fail(
                session,
                inp.migration_id,
                inp.error or "failed",
                inp.power_state,
                mark_error=inp.mark_error,
            )
