"""Server records and quota, on the control-plane worker: the first and last steps of an
operation (reserve, mark active or failed, finish a delete)."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from activities.base import StepRecorder, as_application_error
from activities.network import allocated_ports, image_content_of
from activities.registry import implements
from novaflow import hosts, ipam, operations, placement, quota, servers
from novaflow.db import Database
from novaflow.errors import Conflict, NovaflowError, RequestExpired
from novaflow.models import Flavor, Image, Server, utcnow
from novaflow.resources import Resources
from novaflow.servers import ServerDraft
from novaflow.states import VmState
from workflows import catalog
from workflows.contracts import (
    BeginInput,
    CreateRequest,
    EndInput,
    FailInput,
    FinishInput,
    HostCheck,
    HostStatus,
    RebuildPlan,
    ReserveInput,
    ReserveResult,
    ServerPlacement,
    ServerRef,
    StepContext,
    Ticket,
    operation_workflow_id,
)


def quota_needed(inp: ReserveInput) -> quota.QuotaDeltas:
    request = inp.request
    return quota.QuotaDeltas(
        instances=1,
        cores=request.resources.vcpus,
        ram=request.resources.memory_mb,
        ports=sum(1 for p in request.ports if p.port_id is None),
        floating_ips=sum(1 for p in request.ports if p.floating_ip),
    )


def server_template(request: CreateRequest) -> Server:
    """The fields every server of the request shares, as an (unsaved) row."""
    return Server(
        name="",
        project_id=request.project_id,
        user_id=request.user_id,
        reservation_id=request.reservation_id,
        flavor_id=request.flavor_id,
        image_id=request.image_id,
        vcpus=request.resources.vcpus,
        memory_mb=request.resources.memory_mb,
        disk_gb=request.resources.disk_gb,
        availability_zone=request.availability_zone,
        key_name=request.key_name,
        user_data=request.user_data,
        metadata_=request.metadata,
        description=request.description,
        requested_networks=[asdict(p) for p in request.ports],
        server_group_id=request.server_group_id,
    )


class InstanceActivities:
    def __init__(
        self,
        db: Database,
        service_down: timedelta = timedelta(seconds=30),
    ) -> None:
        self.db = db
        self.recorder = StepRecorder(db)
        self.service_down = service_down

    @implements(catalog.RESERVE_QUOTA)
    def reserve_quota(self, inp: ReserveInput) -> ReserveResult:
        """Record the servers and reserve their quota in one transaction: all or nothing.
        A retry finds what an earlier attempt committed (both parts are idempotent)."""
        request = inp.request
        try:
            with self.db.write() as session:
                # Checked inside the transaction: an API that gave up waiting (503) must never
                # see this request recorded after all, not even by an attempt of this step
                # that committed just before its worker died (that is removed again).
                expired = bool(inp.accept_until) and time.time() > inp.accept_until
                if expired:
                    ids = [s.server_id for s in inp.servers]
                    for server_id in servers.forget_unrecorded(session, ids, request.request_id):
                        quota.cancel(session, server_id)
                else:
                    ids = _record_request(session, inp)
            if expired:
                raise RequestExpired("The request expired before it could be recorded.")
            return ReserveResult(server_ids=ids)
        except NovaflowError as error:
            raise as_application_error(error) from error

    @implements(catalog.BEGIN_OPERATION)
    def begin_operation(self, inp: BeginInput) -> Ticket:
        """The gate of every operation but create (see novaflow/operations.py), run inside the
        update that starts its workflow: a refusal (404, 403, 409) is the API's answer."""
        ctx = inp.ctx
        caller = operations.Caller(inp.project_id, inp.user_id, inp.is_admin)
        try:
            with self.db.write() as session:
                begun = operations.begin(
                    session,
                    ctx.server_id,
                    inp.action,
                    inp.options,
                    caller,
                    request_id=ctx.request_id,
                    workflow_id=inp.workflow_id,
                    down_after=self.service_down,
                    accept_until=inp.accept_until,
                )
                if begun.request_id == ctx.request_id:  # not a DELETE joining an earlier one
                    servers.record_event(
                        session, ctx.server_id, begun.request_id, ctx.event, start_time=utcnow()
                    )
        except NovaflowError as error:
            raise as_application_error(error) from error
        return Ticket(
            request_id=begun.request_id,
            host=begun.host,
            host_action=begun.host_action,
            running_workflow_id=begun.running_workflow_id,
            joined=begun.joined,
        )

    @implements(catalog.END_OPERATION)
    def end_operation(self, inp: EndInput) -> None:
        """The operation's last write: its end state, or the failure, and the action closed."""
        with self.recorder.step(inp.ctx, inp.ctx.event) as session:
            operations.end(
                session,
                inp.ctx.server_id,
                inp.ctx.request_id,
                inp.action,
                inp.options,
                power_state=inp.power_state,
                error=inp.error,
                mark_error=inp.mark_error,
            )
            step = inp.host_step
            if step is not None:
                servers.record_event(
                    session,
                    inp.ctx.server_id,
                    inp.ctx.request_id,
                    step.event,
                    start_time=datetime.fromtimestamp(step.started, UTC),
                    finish_time=datetime.fromtimestamp(step.finished, UTC),
                    error=step.error,
                    host=step.host,
                )

    @implements(catalog.FINISH_CREATE)
    def finish_create(self, inp: FinishInput) -> None:
        """ACTIVE, quota committed, action finished: the last step of a successful create."""
        with self.recorder.step(inp.ctx, "finish_create", inp.host) as session:
            servers.ensure_still_wanted(session, inp.ctx.server_id)
            quota.commit(session, inp.ctx.server_id)
            servers.mark_active(session, inp.ctx.server_id, inp.host, inp.power_state)
            servers.finish_action(session, inp.ctx.server_id, inp.ctx.request_id, error=False)

    @implements(catalog.FAIL_CREATE)
    def fail_create(self, inp: FailInput) -> None:
        """ERROR with a fault, after the compensations gave everything back."""
        with self.recorder.step(inp.ctx, "fail_create") as session:
            servers.mark_error(session, inp.ctx.server_id, inp.message, inp.details, inp.code)
            servers.finish_action(session, inp.ctx.server_id, inp.ctx.request_id, error=True)

    @implements(catalog.RELEASE_QUOTA)
    def release_quota(self, inp: ServerRef) -> None:
        with self.recorder.step(inp.ctx, inp.ctx.event or "release_quota") as session:
            quota.release(session, inp.ctx.server_id)

    @implements(catalog.LOAD_PLACEMENT)
    def load_placement(self, inp: ServerRef) -> ServerPlacement:
        with self.db.read() as session:
            server = session.get(servers.Server, inp.ctx.server_id)
            if server is None:
                return ServerPlacement(host=None, exists=False)
            host = servers.active_claim_host(session, server.id) or server.host
            up = host is None or hosts.is_up(session, host, utcnow(), self.service_down)
            placement_ = ServerPlacement(host=host, exists=not server.deleted, host_up=up)
        if not up:
            assert host is not None
            self._record_host_down(
                inp.ctx, host, f"local_delete@{host}", "deleted in the database only; "
            )
        return placement_

    @implements(catalog.PLAN_REBUILD)
    def plan_rebuild(self, inp: ServerRef) -> RebuildPlan:
        """The server as its rebuild re-creates it (the gate already set its new image)."""
        with self.db.read() as session:
            server = servers.get_server(session, inp.ctx.server_id)
            flavor = session.get(Flavor, server.flavor_id)
            image = session.get(Image, server.image_id)
            if server.host is None:
                raise as_application_error(
                    Conflict(f"Instance {server.id} has no host: nothing to rebuild there")
                )
            return RebuildPlan(
                host=server.host,
                name=server.name,
                project_id=server.project_id,
                flavor_name=flavor.name if flavor is not None else server.flavor_id,
                image_id=server.image_id,
                resources=Resources(server.vcpus, server.memory_mb, server.disk_gb),
                ports=allocated_ports(session, server.id),
                image_properties=dict(image.properties) if image is not None else {},
                start=server.vm_state != VmState.STOPPED,
                image_content=image_content_of(session, image),
            )

    @implements(catalog.CHECK_HOST)
    def check_host(self, inp: HostCheck) -> HostStatus:
        """Is the host up (its worker heartbeating)? A host found down is recorded in the
        server's audit trail: its domain is left for the host's reaper."""
        with self.db.read() as session:
            up = hosts.is_up(session, inp.host, utcnow(), self.service_down)
        if not up:
            self._record_host_down(inp.ctx, inp.host, f"host_down@{inp.host}")
        return HostStatus(up=up)

    def _record_host_down(
        self, ctx: StepContext, host: str, event: str, what_happened: str = ""
    ) -> None:
        """The audit trail says why the domain is still on that host, and who removes it."""
        self.recorder.record(
            ctx,
            event,
            utcnow(),
            error=f"host {host} is down: {what_happened}its compute worker removes the domain "
            "when it comes back",
            host=host,
        )

    @implements(catalog.FINISH_DELETE)
    def finish_delete(self, inp: ServerRef) -> None:
        """The database side of a delete, in one transaction: ports and IPs, host claims and
        quota given back, the server marked DELETED, the action finished. Idempotent."""
        server_id = inp.ctx.server_id
        with self.recorder.step(inp.ctx, "finish_delete") as session:
            ipam.release_for_server(session, server_id)
            placement.release_all(session, server_id)
            quota.release_all(session, server_id)
            servers.mark_deleted(session, server_id)
            servers.finish_action(session, server_id, inp.ctx.request_id, error=False)


def _record_request(session: Session, inp: ReserveInput) -> list[str]:
    """Reserve the quota of as many of the request's servers as fit (never fewer than its
    min_count) and insert their rows, actions and first events; returns their ids."""
    request = inp.request
    ids = quota.reserve(
        session,
        request.project_id,
        [s.server_id for s in inp.servers],
        quota_needed(inp),
        min_count=inp.min_count,
    )
    chosen = [s for s in inp.servers if s.server_id in set(ids)]
    if request.server_group_id is not None:
        quota.check_group_room(session, request.server_group_id, [s.server_id for s in chosen])
    servers.insert_servers(
        session,
        server_template(request),
        [ServerDraft(s.server_id, s.name, s.launch_index) for s in chosen],
        request_id=request.request_id,
        workflow_ids=[
            operation_workflow_id(s.server_id, "create", request.request_id) for s in chosen
        ],
        tags=request.tags,
    )
    now = servers.utcnow()
    for s in chosen:
        servers.record_event(
            session, s.server_id, request.request_id, "reserve_quota", start_time=now
        )
    return ids
