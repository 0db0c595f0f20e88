"""Dependencies: the database session, the caller, the Temporal client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session
from temporalio.client import Client

from api.auth import RequestContext, noauth_context
from api.compute import ComputeAPI
from novaflow.db import Database
from novaflow.errors import Forbidden


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    with db.read() as session:
        yield session


def get_context(x_auth_token: Annotated[str | None, Header()] = None) -> RequestContext:
    return noauth_context(x_auth_token)


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
