"""The service under the routers, as Nova's compute/api.py: who may see a server (one rule),
listing, the writes a router asks for, and the one way every operation starts. Routers parse
and render (api/views.py); they make no database call of their own.

Each operation starts its workflow with the state gate as its first step (update-with-start,
see workflows/gate.py): the API writes nothing itself, so there is nothing to undo when
Temporal is unreachable, and a 409/403/404 comes from the gate's own transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api import operations, request_id, views
from api.auth import RequestContext
from api.schemas import ServerCreateBody
from api.server_create import build_reserve_input
from novaflow import hosts, moves, servers
from novaflow.config import Settings
from novaflow.db import Database
from novaflow.errors import Conflict
from novaflow.models import Server, utcnow
from novaflow.states import VmState
from workflows.contracts import (
    BeginInput,
    DeleteServerInput,
    DomainDiagnostics,
    MoveInput,
    OperationInput,
    ReserveInput,
    ReserveResult,
    ResizeDecision,
    StepContext,
    Ticket,
)

T = TypeVar("T")
MAX_PAGE = 1000  # Nova's osapi_max_limit


def new_request_id() -> str:
    """The current request's id (api/request_id.py): what it starts is recorded under the id
    its answer carries, as Nova's instance actions are. A fresh one outside a request."""
    return request_id.current.get() or request_id.new()


class ComputeAPI:
    def __init__(self, db: Database, temporal: Client, settings: Settings) -> None:
        self.db = db
        self.temporal = temporal
        self.settings = settings

    # ------------------------------------------------------------ reads

    @staticmethod
    def visible_in(
        session: Session,
        ctx: RequestContext,
        server_id: str,
        include_deleted: bool = False,
        for_update: bool = False,
    ) -> Server:
        """The server the caller may see, else NotFound (404): another project's server is
        not found for a non-admin, whatever it is. `for_update` locks it for a change."""
        return servers.get_visible_server(
            session,
            server_id,
            ctx.project_id,
            is_admin=ctx.is_admin,
            include_deleted=include_deleted,
            for_update=for_update,
        )

    def visible(self, ctx: RequestContext, server_id: str, include_deleted: bool = False) -> Server:
        with self.db.read() as session:
            return self.visible_in(session, ctx, server_id, include_deleted)

    @staticmethod
    def list(
        session: Session,
        ctx: RequestContext,
        filters: servers.ServerFilters,
        all_projects: bool,
        limit: int | None,
        marker: str | None,
    ) -> list[Server]:
        """A page of the servers the caller may list: its project's, or (an admin asking for
        all_tenants) every project's; only an admin filters by host."""
        if not (all_projects and ctx.is_admin):
            filters = replace(filters, project_id=ctx.project_id)
        if not ctx.is_admin:
            filters = replace(filters, host=None)
        # Nova clamps a page to osapi_max_limit (1000) rather than refusing a larger one.
        limit = min(limit, MAX_PAGE) if limit is not None else None
        return servers.list_servers(session, filters, limit, marker)

    # ------------------------------------------------------------ writes

    def change(
        self,
        ctx: RequestContext,
        server_id: str,
        change: Callable[[Session, Server], T],
        checks_lock: bool = False,
    ) -> T:
        """Run `change` on the visible server, locked, in one write transaction (rename,
        metadata: changes that are no operation of their own). `checks_lock`: a locked server
        refuses it to non-admins (409), as Nova's metadata changes."""
        with self.db.write() as session:
            server = self.visible_in(session, ctx, server_id, for_update=True)
            if checks_lock and server.locked and not ctx.is_admin:
                raise Conflict(f"Instance {server_id} is locked")
            return change(session, server)

    # ------------------------------------------------------------ operations

    async def create(
        self, ctx: RequestContext, body: ServerCreateBody
    ) -> tuple[ReserveInput, ReserveResult]:
        """Validate the request (400/403/409 naming the field, nothing written), then start
        CreateServer, whose first step records the servers and reserves their quota."""
        request_id = new_request_id()

        def validate() -> ReserveInput:
            with self.db.read() as session:
                return build_reserve_input(session, body, ctx, request_id)

        reserve = await run_in_threadpool(validate)
        result = await operations.start_create(
            self.temporal,
            reserve,
            self.settings.max_build_attempts,
            self.settings.host_pickup_seconds,
        )
        return reserve, result

    def _begin(
        self, ctx: RequestContext, server_id: str, action: str, options: dict[str, str]
    ) -> BeginInput:
        return BeginInput(
            ctx=StepContext(server_id, new_request_id(), f"begin_{action}"),
            action=action,
            project_id=ctx.project_id,
            user_id=ctx.user_id,
            is_admin=ctx.is_admin,
            options=options,
        )

    def _delete_under_way(self, ctx: RequestContext, server_id: str) -> tuple[Server, str | None]:
        with self.db.read() as session:
            server = servers.get_visible_server(
                session, server_id, ctx.project_id, is_admin=ctx.is_admin
            )
            return server, servers.delete_under_way(session, server_id)

    async def delete(self, ctx: RequestContext, server_id: str) -> Ticket:
        """Accepted from any state. A repeated DELETE joins the delete under way (its
        workflow, by id), or starts that workflow again if it failed."""
        server, under_way = await run_in_threadpool(self._delete_under_way, ctx, server_id)
        begin = self._begin(ctx, server_id, "delete", {})
        inp = DeleteServerInput(
            server_id=server_id,
            request_id=begin.ctx.request_id,
            project_id=server.project_id,
            user_id=ctx.user_id,
            host_pickup_seconds=self.settings.host_pickup_seconds,
            gated=True,
        )
        return await operations.start_delete(self.temporal, begin, inp, under_way)

    async def act(
        self, ctx: RequestContext, server_id: str, action: str, options: dict[str, str]
    ) -> Ticket:
        """A server action (stop, start, reboot, pause, lock, os-resetState, ...): accepted
        by its gate or refused with 409/403 (novaflow/operations.py holds the table)."""
        server = await run_in_threadpool(self.visible, ctx, server_id)
        begin = self._begin(ctx, server_id, action, options)
        inp = OperationInput(
            server_id=server_id,
            action=action,
            host_pickup_seconds=self.settings.host_pickup_seconds,
            shutdown_timeout_seconds=self.settings.shutdown_timeout_seconds,
        )
        return await operations.start_action(self.temporal, begin, inp, server.project_id)

    async def rebuild(
        self, ctx: RequestContext, server_id: str, options: dict[str, str]
    ) -> tuple[Ticket, dict[str, object]]:
        """A new disk from an image on the same host: accepted by its gate (409, or 400 for
        the image), then carried out by RebuildServer. Returns the ticket and the server's
        body as it is now (REBUILD), which Nova's answer carries."""
        server = await run_in_threadpool(self.visible, ctx, server_id)
        begin = self._begin(ctx, server_id, "rebuild", options)
        inp = OperationInput(
            server_id=server_id,
            action="rebuild",
            host_pickup_seconds=self.settings.host_pickup_seconds,
            shutdown_timeout_seconds=self.settings.shutdown_timeout_seconds,
        )
        ticket = await operations.start_action(
            self.temporal, begin, inp, server.project_id, workflow="RebuildServer"
        )

        def body() -> dict[str, object]:
            with self.db.read() as session:
                server = self.visible_in(session, ctx, server_id)
                return views.server_rebuild_view(session, server, ctx)

        return ticket, await run_in_threadpool(body)

    async def move(
        self, ctx: RequestContext, server_id: str, action: str, options: dict[str, str]
    ) -> Ticket:
        """A resize or a cold migration: accepted by its gate (409/403/400 at once), then
        carried out by ResizeServer, which waits in VERIFY_RESIZE for a confirm or revert."""
        server = await run_in_threadpool(self.visible, ctx, server_id)
        begin = self._begin(ctx, server_id, action, options)
        inp = MoveInput(
            server_id=server_id,
            action=action,
            host_pickup_seconds=self.settings.host_pickup_seconds,
            shutdown_timeout_seconds=self.settings.shutdown_timeout_seconds,
            confirm_window_seconds=self.settings.resize_confirm_window,
            allow_same_host=self.settings.allow_resize_to_same_host,
        )
        return await operations.start_move(self.temporal, begin, inp, server.project_id)

    def _move_waiting(self, ctx: RequestContext, server_id: str, action: str) -> str:
        """The workflow of the server's move that waits for a confirm or a revert; 409 when
        the server is not VERIFY_RESIZE (404 when the caller may not see it)."""
        with self.db.read() as session:
            server = self.visible_in(session, ctx, server_id)
            if server.vm_state != VmState.RESIZED:
                raise Conflict(
                    f"Cannot '{action}' instance {server_id} while it is in vm_state "
                    f"{server.vm_state}"
                )
            return moves.awaiting_decision(session, server, action).workflow_id

    async def decide(self, ctx: RequestContext, server_id: str, action: str) -> Ticket:
        """confirmResize or revertResize: an update of the move's running workflow, whose
        validator refuses it (409) unless the move waits for exactly this decision."""
        workflow_id = await run_in_threadpool(self._move_waiting, ctx, server_id, action)
        decision = ResizeDecision(
            request_id=new_request_id(),
            project_id=ctx.project_id,
            user_id=ctx.user_id,
            is_admin=ctx.is_admin,
        )
        return await operations.decide_move(self.temporal, workflow_id, action, decision)

    # ------------------------------------------------------------ asking a server's host

    def _host_that_is_up(self, ctx: RequestContext, server_id: str, what: str) -> str:
        """The host of the server the caller may see (404 otherwise), which must be up: 409
        for a server that has no host (still building, or failed before it got one) or whose
        host's compute worker stopped heartbeating (asked anyway, it would only time out)."""
        with self.db.read() as session:
            server = self.visible_in(session, ctx, server_id)
            if not server.host:
                raise Conflict(
                    f"Instance {server_id} is not ready: it has no host "
                    f"(vm_state {server.vm_state}), so it has no {what}."
                )
            down_after = self.settings.service_down
            if not hosts.is_up(session, server.host, utcnow(), down_after):
                raise Conflict(
                    f"Compute host {server.host} of instance {server_id} is down: "
                    f"its {what} cannot be read now."
                )
            return server.host

    async def diagnostics(
        self, ctx: RequestContext, server_id: str
    ) -> tuple[str, DomainDiagnostics]:
        host = await run_in_threadpool(self._host_that_is_up, ctx, server_id, "diagnostics")
        return host, await operations.diagnostics(self.temporal, server_id, host)

    async def console_output(self, ctx: RequestContext, server_id: str, length: int | None) -> str:
        host = await run_in_threadpool(self._host_that_is_up, ctx, server_id, "console log")
        return await operations.console_output(self.temporal, server_id, host, length)
