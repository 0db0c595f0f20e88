"""Fault positions around every activity, for tests and drills (NOVAFLOW_FAULT_INJECTION only).

A worker with fault injection on wraps each activity it runs: `<activity>:before` is checked
before the body runs, `<activity>:after` once it returned (its transaction committed, its
libvirt calls returned) and before Temporal hears of it. A worker killed at either position
proves the step idempotent: the retry either does the work or finds it done. The positions
come from the activity's name, so every declared activity has them without a line of its own.

A fault scoped to a server (hypervisor/faults.py) applies when the activity works for it: the
input's server id, or that server's name (read from the database only while such a fault is
armed for the step).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from hypervisor.faults import AFTER, BEFORE, FaultInjector, around
from novaflow.db import Database
from novaflow.models import Server

ServerNames = Callable[[set[str]], set[str]]


def servers_of(arg: object) -> set[str]:
    """The ids (and, for a create's first step, the names) of the servers an activity's input
    works for."""
    ctx = getattr(arg, "ctx", None)
    if ctx is not None and getattr(ctx, "server_id", None):
        return {ctx.server_id}
    server_id = getattr(arg, "server_id", None)
    if server_id:
        return {str(server_id)}
    found: set[str] = set()
    for server in getattr(arg, "servers", None) or []:  # ReserveInput: new servers
        found |= {server.server_id, server.name}
    return found


def utcnow() -> datetime:
    return datetime.now(UTC)


def names_in(db: Database) -> ServerNames:
    """Looks up the names of servers by id (deleted ones too: a delete's steps are scoped by
    the name the server had)."""

    def names(server_ids: set[str]) -> set[str]:
        if not server_ids:
            return set()
        with db.read() as session:
            found = session.exec(select(Server.name).where(col(Server.id).in_(server_ids)))
            return set(found.all())

    return names


class StepFaults(Interceptor):
    def __init__(self, faults: FaultInjector, names: ServerNames) -> None:
        self.faults = faults
        self.names = names

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Around(next, self)


class _Around(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, owner: StepFaults) -> None:
        super().__init__(next)
        self.owner = owner
        self.outbound: ActivityOutboundInterceptor | None = None

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        # The heartbeat of the event loop: once a synchronous activity's body has run, the
        # context's own `activity.heartbeat` waits on the loop, and called from it would block it.
        self.outbound = outbound
        super().init(outbound)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        servers = servers_of(input.args[0]) if input.args else set()

        def keep_alive() -> None:
            if not info.is_local and self.outbound is not None:
                self.outbound.heartbeat()  # a held step keeps heartbeating, as a working one does

        async def check(position: str) -> None:
            # A hold ends with the attempt: once Temporal has timed it out (and scheduled the
            # next one), holding it would only keep a slot of the worker busy.
            timeout = info.start_to_close_timeout
            left = None
            if timeout is not None and not info.is_local:
                left = timeout.total_seconds() - (utcnow() - info.started_time).total_seconds()
            step = around(name, position)
            scopes = servers
            if self.owner.faults.scoped(step):  # the servers' names, read off the event loop
                scopes = servers | await asyncio.to_thread(self.owner.names, servers)
            check = self.owner.faults.check_async(step, keep_alive, scopes)
            try:
                await asyncio.wait_for(check, timeout=left)
            except TimeoutError:
                raise ApplicationError(f"{name}: the attempt timed out while held") from None

        name = info.activity_type
        await check(BEFORE)
        result = await super().execute_activity(input)
        await check(AFTER)
        return result
