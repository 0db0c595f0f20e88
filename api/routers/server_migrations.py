"""/v2.1/servers/{id}/migrations (Nova 2.23; force_complete 2.22, DELETE 2.24): a server's
live migrations in progress. novaflow moves servers cold only (resize, migrate: /os-migrations
lists them), so there are none: the list is empty, one is never found, and a force-complete or
an abort finds the server not live-migrating (409), as Nova's answers would be for such a
server.

Included by the servers router (same prefix); before their versions the routes do not exist
(404).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from api.compute import ComputeAPI
from api.deps import ContextDep, SessionDep
from api.microversion import since
from api.policy import rule
from api.schemas import ForceCompleteBody
from novaflow.errors import Conflict, NotFound
from novaflow.models import Server
from novaflow.states import VmState

router = APIRouter(tags=["server migrations"])


@router.get(
    "/{server_id}/migrations",
    dependencies=[since((2, 23)), rule("os_compute_api:servers:migrations:index")],
)
def list_server_migrations(server_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    """Nova 2.23: the server's live migrations in progress. novaflow has no live migration,
    so there are none (its cold moves are in /os-migrations)."""
    ComputeAPI.visible_in(session, ctx, server_id)
    return {"migrations": []}


@router.get(
    "/{server_id}/migrations/{migration_id}",
    dependencies=[since((2, 23)), rule("os_compute_api:servers:migrations:show")],
)
def show_server_migration(
    server_id: str, migration_id: str, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    server = ComputeAPI.visible_in(session, ctx, server_id)
    raise NotFound(
        f"In-progress live migration {migration_id} is not found for server {server.id}."
    )


def _not_live_migrating(server: Server, action: str) -> Conflict:
    """Nova's answer when a server is not live-migrating (ACTIVE, task_state migrating),
    which a novaflow server never is."""
    if server.vm_state != VmState.ACTIVE:
        where = f"vm_state {server.vm_state}"
    else:
        where = f"task_state {server.task_state}"
    return Conflict(f"Cannot '{action}' instance {server.id} while it is in {where}")


@router.post(
    "/{server_id}/migrations/{migration_id}/action",
    status_code=202,
    dependencies=[since((2, 22)), rule("os_compute_api:servers:migrations:force_complete")],
)
def force_complete(
    server_id: str,
    migration_id: str,
    body: Annotated[ForceCompleteBody, Body()],
    session: SessionDep,
    ctx: ContextDep,
) -> Response:
    """Nova 2.22: finish a live migration at once (pausing the guest); there is none."""
    raise _not_live_migrating(ComputeAPI.visible_in(session, ctx, server_id), "force_complete")


@router.delete(
    "/{server_id}/migrations/{migration_id}",
    status_code=202,
    dependencies=[since((2, 24)), rule("os_compute_api:servers:migrations:delete")],
)
def abort_server_migration(
    server_id: str, migration_id: str, session: SessionDep, ctx: ContextDep
) -> Response:
    """Nova 2.24: abort a live migration in progress; there is none."""
    server = ComputeAPI.visible_in(session, ctx, server_id)
    raise _not_live_migrating(server, "abort live migration")
