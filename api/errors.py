"""One error body shape for every failure, as Nova answers: {"badRequest": {"code": 400,
"message": "..."}}. Validation errors name the field; nothing turns into a bare 500."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from novaflow.errors import NovaflowError

log = logging.getLogger("novaflow.api")

_TITLES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    503: "serviceUnavailable",
}


def _reason(error: Any) -> str:
    """pydantic's message without the prefix it puts on our own validators' messages."""
    message = str(error.get("msg") or "invalid")
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def error_response(code: int, message: str, title: str | None = None) -> JSONResponse:
    title = title or _TITLES.get(code, "computeFault")
    return JSONResponse(status_code=code, content={title: {"code": code, "message": message}})


def _field_name(loc: tuple[object, ...]) -> str:
    """The path the user wrote, e.g. `server.networks[0].uuid`, from pydantic's `loc`."""
    path = ""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif not (index == 0 and part == "body") and not _is_tag(str(part)):
            path += f".{part}" if path else str(part)
    return path or "body"


def _is_tag(part: str) -> bool:
    # pydantic names the union member or validator an error came from in its loc:
    # 'str', 'int', "literal['auto','none']", 'list[NetworkEntry]', 'function-after[...]'.
    return part in {"str", "int", "bool"} or part.startswith("function-") or "[" in part


def text_problem(text: str) -> str | None:
    """Why `text` cannot be taken as text anywhere in a request, or None: PostgreSQL stores no
    NUL character, and nothing (UTF-8, a database, a JSON answer) encodes a lone surrogate."""
    if "\x00" in text:
        return "Text must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Text must be valid Unicode (it holds a lone surrogate)"
    return None


# In strict UTF-8 JSON such text can only be an escape: \u0000, or a surrogate \ud800-\udfff.
_BAD_TEXT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _may_hold_bad_text(body: bytes) -> bool:
    """False only when no text in the body can be refused (most bodies). json.loads also takes
    raw surrogate bytes and UTF-16/32 bodies: those are not strict UTF-8, so they are looked at."""
    if b"\x00" in body or _BAD_TEXT_ESCAPE.search(body) is not None:
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def bad_text_in_body(body: bytes) -> tuple[str, str] | None:
    """(field, problem) for the first text in a JSON body that `text_problem` refuses."""
    if not _may_hold_bad_text(body):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: FastAPI answers that itself
    pending: list[tuple[tuple[object, ...], object]] = [(("body",), document)]
    while pending:
        loc, value = pending.pop()
        if isinstance(value, str) and (problem := text_problem(value)):
            return _field_name(loc), problem
        if isinstance(value, dict):
            for key, item in value.items():
                if problem := text_problem(key):
                    return _field_name(loc), problem
                pending.append(((*loc, key), item))
        elif isinstance(value, list):
            pending.extend(((*loc, index), item) for index, item in enumerate(value))
    return None


def bad_text_in_url(path: str, query: list[tuple[str, str]]) -> tuple[str, str] | None:
    """(field, problem) for a decoded URL path or query parameter `text_problem` refuses."""
    if problem := text_problem(path):
        return "path", problem
    for name, value in query:
        if problem := text_problem(name):
            return "query", problem
        if problem := text_problem(value):
            return f"query.{name}", problem
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(NovaflowError)
    async def _domain(_: Request, error: NovaflowError) -> JSONResponse:
        return error_response(error.code, error.message, error.title)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        found = list(error.errors()) or [{}]
        if any(e.get("type") == "json_invalid" for e in found):
            return error_response(400, "Malformed request body: not valid JSON")
        # With a union (e.g. networks: "auto" | [...]) pydantic reports each member; the one
        # that got deepest into the user's input is the one they meant.
        deepest = max(len(e.get("loc", ())) for e in found)
        tied = [e for e in found if len(e.get("loc", ())) == deepest]
        field = _field_name(tuple(tied[0].get("loc", ())))
        reasons = dict.fromkeys(
            _reason(e) for e in tied if _field_name(tuple(e.get("loc", ()))) == field
        )
        return error_response(
            400, f"Invalid input for field/attribute {field}. " + "; ".join(reasons)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, f"Unexpected API Error: {type(error).__name__}")
