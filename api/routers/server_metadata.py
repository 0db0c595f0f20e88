"""/v2.1/servers/{id}/metadata: Nova's server metadata, as a whole and item by item.

Included by the servers router (same prefix). Each change is one write transaction on the
locked server row (novaflow.server_metadata), so concurrent changes never lose one another.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlmodel import Session

from api.auth import RequestContext
from api.deps import ContextDep, DbDep, SessionDep
from api.schemas import MetadataBody, MetaItemBody
from novaflow import server_metadata, servers
from novaflow.errors import Invalid
from novaflow.models import Server

router = APIRouter(tags=["server metadata"])


def _server(session: Session, server_id: str, ctx: RequestContext, lock: bool = False) -> Server:
    return servers.get_visible_server(
        session, server_id, ctx.project_id, is_admin=ctx.is_admin, for_update=lock
    )


@router.get("/{server_id}/metadata")
def show_metadata(server_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    return {"metadata": _server(session, server_id, ctx).metadata_}


@router.put("/{server_id}/metadata")
def replace_metadata(
    server_id: str, body: MetadataBody, ctx: ContextDep, db: DbDep
) -> dict[str, Any]:
    """Every item not in the body is removed."""
    with db.write() as session:
        server = _server(session, server_id, ctx, lock=True)
        return {"metadata": server_metadata.replace(session, server, body.metadata)}


@router.post("/{server_id}/metadata")
def merge_metadata(
    server_id: str, body: MetadataBody, ctx: ContextDep, db: DbDep
) -> dict[str, Any]:
    """The body's items are added or replaced; the others stay."""
    with db.write() as session:
        server = _server(session, server_id, ctx, lock=True)
        return {"metadata": server_metadata.merge(session, server, body.metadata)}


@router.get("/{server_id}/metadata/{key}")
def show_metadata_item(
    server_id: str, key: str, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    return {"meta": {key: server_metadata.item(_server(session, server_id, ctx), key)}}


@router.put("/{server_id}/metadata/{key}")
def set_metadata_item(
    server_id: str, key: str, body: MetaItemBody, ctx: ContextDep, db: DbDep
) -> dict[str, Any]:
    [(body_key, value)] = body.meta.items()
    if body_key != key:
        raise Invalid(
            "Invalid input for field/attribute meta. Request body and URI mismatch: "
            f"the body sets {body_key!r}, the URI names {key!r}"
        )
    with db.write() as session:
        server = _server(session, server_id, ctx, lock=True)
        server_metadata.merge(session, server, {key: value})
    return {"meta": {key: value}}


@router.delete("/{server_id}/metadata/{key}", status_code=204)
def delete_metadata_item(server_id: str, key: str, ctx: ContextDep, db: DbDep) -> Response:
    with db.write() as session:
        server = _server(session, server_id, ctx, lock=True)
        server_metadata.delete_item(session, server, key)
    return Response(status_code=204)
