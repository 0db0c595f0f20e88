"""/v2.1/servers/{id}/tags (Nova 2.26): a server's tags, as a whole and one by one.

Included by the servers router (same prefix); before 2.26 the routes do not exist (404). A tag
changes only on a server that is ACTIVE, PAUSED, SUSPENDED or SHUTOFF (409 otherwise, as
Nova), in one write transaction on the locked server row.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Response

from api import views
from api.compute import ComputeAPI
from api.deps import ComputeDep, ContextDep, SessionDep
from api.microversion import since
from api.policy import rule
from api.schemas import TagsBody
from novaflow import server_tags
from novaflow.errors import Invalid, NotFound
from novaflow.models import Server

router = APIRouter(tags=["server tags"], dependencies=[since((2, 26))])


def _path_tag(tag: str) -> str:
    problem = server_tags.tag_problem(tag)
    if problem is not None:
        raise Invalid(f"Tag '{tag}' is invalid: it {problem}")
    return tag


@router.get("/{server_id}/tags", dependencies=[rule("os_compute_api:os-server-tags:index")])
def list_tags(server_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    server = ComputeAPI.visible_in(session, ctx, server_id)
    return {"tags": server_tags.tags_of(session, server.id)}


@router.put("/{server_id}/tags", dependencies=[rule("os_compute_api:os-server-tags:update_all")])
def replace_tags(
    server_id: str, body: Annotated[TagsBody, Body()], ctx: ContextDep, compute: ComputeDep
) -> dict[str, Any]:
    def replace(session: SessionDep, server: Server) -> list[str]:
        server_tags.check_taggable(server, "update")
        return server_tags.replace_all(session, server, body.tags)

    return {"tags": compute.change(ctx, server_id, replace)}


@router.delete(
    "/{server_id}/tags",
    status_code=204,
    dependencies=[rule("os_compute_api:os-server-tags:delete_all")],
)
def delete_tags(server_id: str, ctx: ContextDep, compute: ComputeDep) -> Response:
    def remove_all(session: SessionDep, server: Server) -> None:
        server_tags.check_taggable(server, "delete")
        server_tags.remove_all(session, server)

    compute.change(ctx, server_id, remove_all)
    return Response(status_code=204)


@router.get(
    "/{server_id}/tags/{tag}",
    status_code=204,
    dependencies=[rule("os_compute_api:os-server-tags:show")],
)
def check_tag(server_id: str, tag: str, session: SessionDep, ctx: ContextDep) -> Response:
    server = ComputeAPI.visible_in(session, ctx, server_id)
    if not server_tags.has(session, server, tag):
        raise NotFound(f"Tag {tag} could not be found.")
    return Response(status_code=204)


@router.put("/{server_id}/tags/{tag}", dependencies=[rule("os_compute_api:os-server-tags:update")])
def add_tag(server_id: str, tag: str, ctx: ContextDep, compute: ComputeDep) -> Response:
    """201 when the tag is new, 204 when the server had it; both say where it is."""
    _path_tag(tag)

    def add(session: SessionDep, server: Server) -> bool:
        server_tags.check_taggable(server, "update")
        return server_tags.add(session, server, tag)

    created = compute.change(ctx, server_id, add)
    location = f"{views.base_url.get()}/v2.1/servers/{server_id}/tags/{quote(tag, safe='')}"
    return Response(status_code=201 if created else 204, headers={"Location": location})


@router.delete(
    "/{server_id}/tags/{tag}",
    status_code=204,
    dependencies=[rule("os_compute_api:os-server-tags:delete")],
)
def delete_tag(server_id: str, tag: str, ctx: ContextDep, compute: ComputeDep) -> Response:
    def remove(session: SessionDep, server: Server) -> None:
        server_tags.check_taggable(server, "delete")
        server_tags.remove(session, server, tag)

    compute.change(ctx, server_id, remove)
    return Response(status_code=204)
