"""Request ids, as Nova's: every request gets one, `req-<uuid>`, and every response carries it
in `x-openstack-request-id` and `x-compute-request-id` (errors included). An operation the
request starts is recorded under it (its instance action's request_id: api/compute.py).

A handler may name another id in `x-openstack-request-id`: a repeated DELETE that takes over
an earlier delete is recorded under that one's action, and the header then names that action;
`x-compute-request-id` always says the same.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-openstack-request-id"
COMPUTE_HEADER = "x-compute-request-id"

# The current request's id (set per request by `RequestId`); None outside a request.
current: ContextVar[str | None] = ContextVar("request_id", default=None)


def new() -> str:
    return f"req-{uuid.uuid4()}"


class RequestId:
    """Pure ASGI, outermost: the id exists before anything else runs or answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                value = headers.get(HEADER) or request_id
                headers[HEADER] = value
                headers[COMPUTE_HEADER] = value
            await send(message)

        scope.setdefault("state", {})["request_id"] = request_id
        token = current.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current.reset(token)
