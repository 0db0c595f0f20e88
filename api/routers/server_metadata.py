"""/v2.1/servers/{id}/metadata: Nova's server metadata, as a whole and item by item.

Included by the servers router (same prefix). Each change is one write transaction on the
locked server row (ComputeAPI.change, novaflow.server_metadata), so concurrent changes never
lose one another.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.compute import ComputeAPI
from api.deps import ComputeDep, ContextDep, SessionDep
from api.policy import rule
from api.schemas import MetadataBody, MetaItemBody
from novaflow import server_metadata
from novaflow.errors import Invalid

router = APIRouter(tags=["server metadata"])


@router.get("/{server_id}/metadata", dependencies=[rule("os_compute_api:server-metadata:index")])
def show_metadata(server_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    return {"metadata": ComputeAPI.visible_in(session, ctx, server_id).metadata_}


@router.put(
    "/{server_id}/metadata", dependencies=[rule("os_compute_api:server-metadata:update_all")]
)
def replace_metadata(
    server_id: str, body: MetadataBody, ctx: ContextDep, compute: ComputeDep
) -> dict[str, Any]:
    """Every item not in the body is removed."""
    replaced = compute.change(
        ctx,
        server_id,
        lambda s, server: server_metadata.replace(s, server, body.metadata),
        checks_lock=True,
    )
    return {"metadata": replaced}


@router.post("/{server_id}/metadata", dependencies=[rule("os_compute_api:server-metadata:create")])
def merge_metadata(
    server_id: str, body: MetadataBody, ctx: ContextDep, compute: ComputeDep
) -> dict[str, Any]:
    """The body's items are added or replaced; the others stay."""
    merged = compute.change(
        ctx,
        server_id,
        lambda s, server: server_metadata.merge(s, server, body.metadata),
        checks_lock=True,
    )
    return {"metadata": merged}


@router.get(
    "/{server_id}/metadata/{key}", dependencies=[rule("os_compute_api:server-metadata:show")]
)
def show_metadata_item(
    server_id: str, key: str, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    server = ComputeAPI.visible_in(session, ctx, server_id)
    return {"meta": {key: server_metadata.item(server, key)}}


@router.put(
    "/{server_id}/metadata/{key}", dependencies=[rule("os_compute_api:server-metadata:update")]
)
def set_metadata_item(
    server_id: str, key: str, body: MetaItemBody, ctx: ContextDep, compute: ComputeDep
) -> dict[str, Any]:
    [(body_key, value)] = body.meta.items()
    if body_key != key:
        raise Invalid(
            "Invalid input for field/attribute meta. Request body and URI mismatch: "
            f"the body sets {body_key!r}, the URI names {key!r}"
        )
    compute.change(
        ctx,
        server_id,
        lambda s, server: server_metadata.merge(s, server, {key: value}),
        checks_lock=True,
    )
    return {"meta": {key: value}}


@router.delete(
    "/{server_id}/metadata/{key}",
    status_code=204,
    dependencies=[rule("os_compute_api:server-metadata:delete")],
)
def delete_metadata_item(
    server_id: str, key: str, ctx: ContextDep, compute: ComputeDep
) -> Response:
    compute.change(
        ctx,
        server_id,
        lambda s, server: server_metadata.delete_item(s, server, key),
        checks_lock=True,
    )
    return Response(status_code=204)
