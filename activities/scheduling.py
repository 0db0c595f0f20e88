"""Scheduling on the control-plane worker: filter and weigh the hosts, then claim the best
one atomically; alternates are kept for a reschedule."""

from __future__ import annotations

from datetime import timedelta

from activities.base import StepRecorder, as_application_error
from activities.registry import implements
from novaflow import placement, servers
from novaflow.db import Database
from novaflow.errors import NoValidHost
from novaflow.models import utcnow
from novaflow.scheduler import FilterScheduler, HostState, RequestSpec
from novaflow.scheduler import NoValidHost as NoHostPassed
from novaflow.states import TaskState
from workflows import catalog
from workflows.contracts import (
    ClaimRef,
    DestinationInput,
    ScheduleInput,
    ScheduleResult,
    StepContext,
    claim_id_for,
)

CANDIDATES = 3  # the chosen host and two alternates, as Nova's max_attempts default


class SchedulingActivities:
    def __init__(
        self,
        db: Database,
        scheduler: FilterScheduler,
        service_down: timedelta,
    ) -> None:
        self.db = db
        self.scheduler = scheduler
        self.service_down = service_down
        self.recorder = StepRecorder(db)

    @implements(catalog.SCHEDULE)
    def schedule(self, inp: ScheduleInput) -> ScheduleResult:
        """Filter and weigh (reading only), then claim the best host that still fits in one
        short write transaction; the hosts after it are the alternates."""
        server_id, event = inp.ctx.server_id, f"schedule_{inp.attempt}"
        claim_id = claim_id_for(server_id, inp.attempt)
        with self.db.read() as session:
            earlier = session.get(placement.Claim, claim_id)
        if earlier is not None and earlier.state == "active":  # a retry of a step that worked
            return ScheduleResult(host=earlier.host, claim_id=claim_id)
        ranked = self._rank(inp, event)
        with self.recorder.step(inp.ctx, event) as session:
            servers.ensure_still_wanted(session, server_id)
            earlier = session.get(placement.Claim, claim_id)
            if earlier is not None and earlier.state == "active":  # an attempt that timed out
                return ScheduleResult(host=earlier.host, claim_id=claim_id)  # but committed
            for index, host in enumerate(ranked):
                if placement.claim(
                    session,
                    claim_id,
                    server_id,
                    host.name,
                    inp.resources,
                    group_id=inp.server_group_id,
                ):
                    servers.set_task_state(session, server_id, TaskState.NETWORKING, host=host.name)
                    alternates = [h.name for h in ranked[index + 1 :]]
                    return ScheduleResult(host=host.name, claim_id=claim_id, alternates=alternates)
            raise NoValidHost(
                "No valid host was found. There are not enough hosts available "
                f"(claims failed on {', '.join(h.name for h in ranked)})."
            )

    def _rank(self, inp: ScheduleInput, event: str) -> list[HostState]:
        spec = RequestSpec(
            server_id=inp.ctx.server_id,
            resources=inp.resources,
            availability_zone=inp.availability_zone,
            image_properties=inp.image_properties,
            ignore_hosts=frozenset(inp.exclude_hosts),
        )
        return self._ranked(inp.ctx, event, spec, inp.server_group_id)

    def _ranked(
        self,
        ctx: StepContext,
        event: str,
        spec: RequestSpec,
        server_group_id: str | None,
        only_host: str | None = None,
    ) -> list[HostState]:
        """The scheduler's choice, best first, from a consistent read of the hosts. Runs
        outside the write lock: the claim re-checks capacity atomically anyway. `only_host`:
        an admin named the host, which must still pass every filter."""
        started = utcnow()
        with self.db.read() as session:
            if server_group_id:
                group = session.get(placement.ServerGroup, server_group_id)
                spec.group_policy = group.policy if group else None
                spec.group_hosts = placement.group_hosts(session, server_group_id, ctx.server_id)
            hosts = placement.host_states(session, started, self.service_down)
        if only_host is not None:
            hosts = [h for h in hosts if h.name == only_host]
        try:
            return self.scheduler.select(hosts, spec, count=CANDIDATES)
        except NoHostPassed as error:
            self.recorder.record_failure(ctx, event, started, str(error), None)
            raise as_application_error(NoValidHost(str(error))) from error

    @implements(catalog.CLAIM_DESTINATION)
    def claim_destination(self, inp: DestinationInput) -> ScheduleResult:
        """A resize's or a migration's destination: filtered and weighed as a build, then
        claimed under the move's own claim id (the source keeps its claim meanwhile)."""
        event = inp.ctx.event or "claim_destination"
        with self.db.read() as session:
            earlier = session.get(placement.Claim, inp.claim_id)
        if earlier is not None and earlier.state == "active":  # a retry of a step that worked
            return ScheduleResult(host=earlier.host, claim_id=inp.claim_id)
        spec = RequestSpec(
            server_id=inp.ctx.server_id,
            resources=inp.resources,
            availability_zone=inp.availability_zone,
            image_properties=inp.image_properties,
            ignore_hosts=frozenset(inp.exclude_hosts),
        )
        ranked = self._ranked(inp.ctx, event, spec, inp.server_group_id, inp.only_host)
        with self.recorder.step(inp.ctx, event) as session:
            for index, host in enumerate(ranked):
                if placement.claim(
                    session,
                    inp.claim_id,
                    inp.ctx.server_id,
                    host.name,
                    inp.resources,
                    group_id=inp.server_group_id,
                ):
                    alternates = [h.name for h in ranked[index + 1 :]]
                    return ScheduleResult(
                        host=host.name, claim_id=inp.claim_id, alternates=alternates
                    )
            raise NoValidHost(
                "No valid host was found. There are not enough hosts available "
                f"(claims failed on {', '.join(h.name for h in ranked)})."
            )

    @implements(catalog.RELEASE_CLAIM)
    def release_claim(self, inp: ClaimRef) -> None:
        with self.recorder.step(inp.ctx, inp.ctx.event or "release_claim") as session:
            placement.release(session, inp.claim_id)
