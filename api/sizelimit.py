"""Request bodies are limited before anything reads them (Nova's oslo.middleware `sizelimit`,
[oslo_middleware] max_request_body_size): the outermost middleware, so before authentication,
before the other middlewares and before FastAPI/pydantic read a body.

A pure ASGI middleware: it never buffers. A declared Content-Length above the limit is a 413 at
once, no byte of the body read; a body without one (chunked) is counted as it is received and
refused with a 413 as soon as it passes the limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors

MESSAGE = "Request is too large."  # Nova's (oslo.middleware's) words

_IMAGE_DATA = re.compile(r"/image/v2/images/[^/]+/file")


def image_data_upload(scope: Scope) -> bool:
    """PUT /image/v2/images/{id}/file with an application/octet-stream body: exempt. An image's
    bytes are far larger than any API document by nature; the route streams them to the image
    store as they arrive (never held in memory), only after the caller was found to be an admin,
    and refuses them past its own limit (NOVAFLOW_IMAGE_MAX_BYTES, 413). Nothing else is: not
    another method or path, nor that path with another Content-Type (which the route refuses,
    and which the API's text check would otherwise read whole)."""
    if scope["method"] != "PUT" or _IMAGE_DATA.fullmatch(scope["path"]) is None:
        return False
    content_type = Headers(scope=scope).get("content-type", "")
    return content_type.split(";")[0].strip() == "application/octet-stream"


class RequestTooLarge(HTTPException):
    """Raised from `receive` once a body passes the limit. An HTTPException, so FastAPI's body
    parsing lets it through and the API's handler answers it (413, overLimit) if it gets there;
    otherwise the middleware answers it."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail=MESSAGE)


class BodySizeLimit:
    def __init__(
        self, app: ASGIApp, max_bytes: int, exempt: Callable[[Scope], bool] = lambda _: False
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await errors.error_response(413, MESSAGE)(scope, receive, send)
            return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLarge()
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except RequestTooLarge:
            if response_started:  # too late for a 413: the server drops the connection
                raise
            await errors.error_response(413, MESSAGE)(scope, receive, send)
