"""/v2.1/os-server-groups: affinity and anti-affinity groups for the scheduler."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from sqlmodel import Session, select

from api.auth import RequestContext
from api.deps import ContextDep, DbDep, SessionDep
from api.schemas import ServerGroupBody
from novaflow.errors import NotFound
from novaflow.models import ServerGroup, ServerGroupMember

router = APIRouter(prefix="/v2.1/os-server-groups", tags=["server groups"])


def group_view(session: Session, group: ServerGroup) -> dict[str, Any]:
    members = session.exec(
        select(ServerGroupMember.server_id).where(ServerGroupMember.group_id == group.id)
    ).all()
    return {
        "id": group.id,
        "name": group.name,
        "policy": group.policy,
        "rules": {},
        "members": list(members),
        "project_id": group.project_id,
        "user_id": group.user_id,
    }


def _visible(session: Session, group_id: str, ctx: RequestContext) -> ServerGroup:
    group = session.get(ServerGroup, group_id)
    if group is None or (group.project_id != ctx.project_id and not ctx.is_admin):
        raise NotFound(f"Server group {group_id} could not be found.")
    return group


@router.post("")
def create_group(
    body: Annotated[ServerGroupBody, Body()], db: DbDep, ctx: ContextDep
) -> dict[str, Any]:
    with db.write() as session:
        group = ServerGroup(
            name=body.server_group.name,
            policy=body.server_group.policy,
            project_id=ctx.project_id,
            user_id=ctx.user_id,
        )
        session.add(group)
        session.flush()
        return {"server_group": group_view(session, group)}


@router.get("")
def list_groups(session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    rows = session.exec(select(ServerGroup).where(ServerGroup.project_id == ctx.project_id))
    return {"server_groups": [group_view(session, g) for g in rows]}


@router.get("/{group_id}")
def show_group(group_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    return {"server_group": group_view(session, _visible(session, group_id, ctx))}


@router.delete("/{group_id}", status_code=204)
def delete_group(group_id: str, db: DbDep, ctx: ContextDep) -> Response:
    with db.write() as session:
        group = _visible(session, group_id, ctx)
        for member in session.exec(
            select(ServerGroupMember).where(ServerGroupMember.group_id == group.id)
        ):
            session.delete(member)
        session.delete(group)
    return Response(status_code=204)
