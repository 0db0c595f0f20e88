"""/v2.1/os-server-groups: affinity and anti-affinity groups for the scheduler."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from api import views
from api.deps import ContextDep, DbDep, SessionDep
from api.policy import rule
from api.schemas import ServerGroupBody
from novaflow import server_groups

router = APIRouter(prefix="/v2.1/os-server-groups", tags=["server groups"])


@router.post("", dependencies=[rule("os_compute_api:os-server-groups:create")])
def create_group(
    body: Annotated[ServerGroupBody, Body()], db: DbDep, ctx: ContextDep
) -> dict[str, Any]:
    spec = body.server_group
    with db.write() as session:
        group = server_groups.create(session, spec.name, spec.policy, ctx.project_id, ctx.user_id)
        return {"server_group": views.group_view(session, group)}


@router.get("", dependencies=[rule("os_compute_api:os-server-groups:index")])
def list_groups(session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    rows = server_groups.of_project(session, ctx.project_id)
    return {"server_groups": [views.group_view(session, g) for g in rows]}


@router.get("/{group_id}", dependencies=[rule("os_compute_api:os-server-groups:show")])
def show_group(group_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    group = server_groups.visible(session, group_id, ctx.project_id, ctx.is_admin)
    return {"server_group": views.group_view(session, group)}


@router.delete(
    "/{group_id}", status_code=204, dependencies=[rule("os_compute_api:os-server-groups:delete")]
)
def delete_group(group_id: str, db: DbDep, ctx: ContextDep) -> Response:
    with db.write() as session:
        server_groups.delete(
            session, server_groups.visible(session, group_id, ctx.project_id, ctx.is_admin)
        )
    return Response(status_code=204)
