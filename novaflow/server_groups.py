"""Server groups (affinity, anti-affinity) and their members, per project."""

from __future__ import annotations

from sqlmodel import Session, select

from novaflow import quota
from novaflow.errors import NotFound
from novaflow.models import ServerGroup, ServerGroupMember


def create(session: Session, name: str, policy: str, project_id: str, user_id: str) -> ServerGroup:
    """A new group, within the project's server_groups quota (403 past it)."""
    quota.check_new_group(session, project_id)
    group = ServerGroup(name=name, policy=policy, project_id=project_id, user_id=user_id)
    session.add(group)
    session.flush()
    return group


def of_project(session: Session, project_id: str) -> list[ServerGroup]:
    return list(session.exec(select(ServerGroup).where(ServerGroup.project_id == project_id)))


def visible(session: Session, group_id: str, project_id: str, is_admin: bool) -> ServerGroup:
    """The group a caller of `project_id` may see (an admin sees every project's)."""
    group = session.get(ServerGroup, group_id)
    if group is None or (group.project_id != project_id and not is_admin):
        raise NotFound(f"Server group {group_id} could not be found.")
    return group


def members(session: Session, group_id: str) -> list[str]:
    """Its servers; a deleted one is no longer a member (as in Nova)."""
    return quota.live_group_members(session, group_id)


def delete(session: Session, group: ServerGroup) -> None:
    for member in session.exec(
        select(ServerGroupMember).where(ServerGroupMember.group_id == group.id)
    ):
        session.delete(member)
    session.delete(group)
