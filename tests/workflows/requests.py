"""Inputs as the API builds them, and a way to start workflows the API's way."""

from __future__ import annotations

import uuid

from novaflow.resources import Resources
from workflows.contracts import (
    BeginInput,
    CreateRequest,
    DeleteServerInput,
    MoveInput,
    NewServer,
    OperationInput,
    PortRequest,
    ReserveInput,
    StepContext,
)

PICKUP = 1.0  # seconds: a host's worker that takes no step within this is gone


def reserve_input(count: int = 1) -> ReserveInput:
    request_id = f"req-{uuid.uuid4()}"
    request = CreateRequest(
        request_id=request_id,
        reservation_id="r-test",
        project_id="p1",
        user_id="alice",
        flavor_id="1",
        flavor_name="m1.tiny",
        resources=Resources(1, 512, 1),
        image_id="img",
        ports=[PortRequest(network_id="net")],
    )
    servers = [NewServer(str(uuid.uuid4()), f"vm-{i}", i) for i in range(count)]
    return ReserveInput(request=request, servers=servers, min_count=count)


def begin_input(server_id: str, action: str, **options: str) -> BeginInput:
    return BeginInput(
        ctx=StepContext(server_id, f"req-{uuid.uuid4()}", f"begin_{action}"),
        action=action,
        project_id="p1",
        user_id="alice",
        options=options,
    )


def delete_input(begin: BeginInput) -> DeleteServerInput:
    return DeleteServerInput(
        server_id=begin.ctx.server_id,
        request_id=begin.ctx.request_id,
        project_id="p1",
        user_id="alice",
        host_pickup_seconds=PICKUP,
        gated=True,
    )


def operation_input(begin: BeginInput) -> OperationInput:
    return OperationInput(
        server_id=begin.ctx.server_id,
        action=begin.action,
        host_pickup_seconds=PICKUP,
        shutdown_timeout_seconds=1,
    )


def move_input(begin: BeginInput, **settings: float | bool) -> MoveInput:
    return MoveInput(
        server_id=begin.ctx.server_id,
        action=begin.action,
        host_pickup_seconds=PICKUP,
        shutdown_timeout_seconds=1,
        **settings,  # type: ignore[arg-type]
    )
