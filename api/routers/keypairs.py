"""/v2.1/os-keypairs: a user's SSH keys (import or generate, list, show, delete), as Nova's
API. Keypairs belong to the calling user; from 2.10 an admin may name another user with
`?user_id=` (and `user_id` in a create's body). 2.2 adds the key's `type` and answers a create
with 201, a delete with 204 (202 before); 2.35 pages the list (`limit`, `marker`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response

from api import listing, views
from api.auth import RequestContext
from api.deps import ContextDep, DbDep, SessionDep
from api.microversion import current
from api.policy import enforce, rule
from api.schemas import KeypairBody
from novaflow import keypairs
from novaflow.models import KeyPair

router = APIRouter(prefix="/v2.1/os-keypairs", tags=["keypairs"])

UserIdQuery = Annotated[str | None, Query(min_length=1, max_length=255)]


def keypair_summary(keypair: KeyPair) -> dict[str, Any]:
    body = {
        "name": keypair.name,
        "public_key": keypair.public_key,
        "fingerprint": keypair.fingerprint,
    }
    if current.get() >= (2, 2):  # Nova's keypair type comes with 2.2
        body["type"] = keypair.type
    return body


def keypair_view(keypair: KeyPair) -> dict[str, Any]:
    return {
        **keypair_summary(keypair),
        "id": keypair.id,
        "user_id": keypair.user_id,
        "created_at": views.iso_micro(keypair.created_at),
        "updated_at": None,
        "deleted": False,
        "deleted_at": None,
    }


def owner(ctx: RequestContext, user_id: str | None, rule_name: str) -> str:
    """Whose keypairs: the caller's, or (admins only, from 2.10) the user named by
    `?user_id=` (before 2.10 Nova ignores it)."""
    if current.get() < (2, 10):
        user_id = None
    enforce(ctx, rule_name, owner=user_id)
    return ctx.user_id if user_id is None else user_id


@router.post("", dependencies=[rule("os_compute_api:os-keypairs:create")])
def create_keypair(
    body: Annotated[KeypairBody, Body()],
    request: Request,
    response: Response,
    db: DbDep,
    ctx: ContextDep,
) -> dict[str, Any]:
    spec = body.keypair
    user_id = owner(ctx, spec.user_id, "os_compute_api:os-keypairs:create")
    if current.get() >= (2, 2):
        response.status_code = 201
    with db.write() as session:
        keypair, private_key = keypairs.create(
            session,
            user_id,
            spec.name,
            public_key=spec.public_key,
            key_type=spec.type,
            limit=request.app.state.settings.keypairs_per_user,
        )
    view = {**keypair_summary(keypair), "user_id": keypair.user_id}
    if private_key is not None:
        view["private_key"] = private_key
    return {"keypair": view}


@router.get("", dependencies=[rule("os_compute_api:os-keypairs:index")])
def list_keypairs(
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    user_id: UserIdQuery = None,
    limit: Annotated[int | None, Query(ge=0)] = None,
    marker: str | None = None,
) -> dict[str, Any]:
    user = owner(ctx, user_id, "os_compute_api:os-keypairs:index")
    if current.get() < (2, 35):  # paging comes with 2.35 (Nova ignores it before)
        limit = marker = None
    rows = keypairs.list_for_user(session, user, limit, marker)
    body: dict[str, Any] = {"keypairs": [{"keypair": keypair_summary(row)} for row in rows]}
    if (end := listing.nova_page_end(rows, limit)) is not None:
        body["keypairs_links"] = listing.next_links(request, end.name)
    return body


@router.get("/{name}", dependencies=[rule("os_compute_api:os-keypairs:show")])
def show_keypair(
    name: str, session: SessionDep, ctx: ContextDep, user_id: UserIdQuery = None
) -> dict[str, Any]:
    return {
        "keypair": keypair_view(
            keypairs.get(session, owner(ctx, user_id, "os_compute_api:os-keypairs:show"), name)
        )
    }


@router.delete("/{name}", status_code=202, dependencies=[rule("os_compute_api:os-keypairs:delete")])
def delete_keypair(name: str, db: DbDep, ctx: ContextDep, user_id: UserIdQuery = None) -> Response:
    with db.write() as session:
        keypairs.delete(session, owner(ctx, user_id, "os_compute_api:os-keypairs:delete"), name)
    return Response(status_code=204 if current.get() >= (2, 2) else 202)
