"""Dependencies: the database session, the caller, the Temporal client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session
from temporalio.client import Client

from api.auth import RequestContext, Unauthorized
from api.compute import ComputeAPI
from novaflow.db import Database
from novaflow.errors import Forbidden


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    with db.read() as session:
        yield session


def get_context(
    request: Request,
    # Declared for the API's description (OpenAPI): the token is read and verified by the
    # Authenticate middleware (api/auth.py), before the body; `Authorization: Bearer` works too.
    x_auth_token: Annotated[str | None, Header()] = None,
) -> RequestContext:
    """The caller, as the Authenticate middleware found it."""
    context = getattr(request.state, "context", None)
    if not isinstance(context, RequestContext):
        raise Unauthorized("The request you have made requires authentication.", error=None)
    return context


def require_admin(ctx: Annotated[RequestContext, Depends(get_context)]) -> RequestContext:
    if not ctx.is_admin:
        raise Forbidden("Policy doesn't allow this operation to be performed.")
    return ctx


def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


def get_compute(request: Request) -> ComputeAPI:
    state = request.app.state
    return ComputeAPI(state.db, state.temporal, state.settings)


DbDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[Session, Depends(get_session)]
ContextDep = Annotated[RequestContext, Depends(get_context)]
AdminDep = Annotated[RequestContext, Depends(require_admin)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
ComputeDep = Annotated[ComputeAPI, Depends(get_compute)]
