"""The service under the routers, as Nova's compute/api.py: who may see a server, and the one
way every operation but create starts (create's own path is in server_create.py).

Each operation starts its workflow with the state gate as its first step (update-with-start,
see workflows/gate.py): the API writes nothing itself, so there is nothing to undo when
Temporal is unreachable, and a 409/403/404 comes from the gate's own transaction.
"""

from __future__ import annotations

import uuid

from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api import operations
from api.auth import RequestContext
from novaflow import servers
from novaflow.config import Settings
from novaflow.db import Database
from novaflow.models import Server
from workflows.contracts import (
    BeginInput,
    DeleteServerInput,
    OperationInput,
    StepContext,
    Ticket,
)


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


class ComputeAPI:
    def __init__(self, db: Database, temporal: Client, settings: Settings) -> None:
        self.db = db
        self.temporal = temporal
        self.settings = settings

    def visible(self, ctx: RequestContext, server_id: str, include_deleted: bool = False) -> Server:
        """The server the caller may see, else NotFound (404): another project's server is
        not found for a non-admin, whatever it is."""
        with self.db.read() as session:
            return servers.get_visible_server(
                session,
                server_id,
                ctx.project_id,
                is_admin=ctx.is_admin,
                include_deleted=include_deleted,
            )

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
