"""One error body shape for every failure, as Nova answers: {"badRequest": {"code": 400,
"message": "..."}}. Validation errors name the field; nothing turns into a bare 500."""

from __future__ import annotations

import logging

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
    415: "badMediaType",
    503: "serviceUnavailable",
}


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
            e.get("msg", "invalid") for e in tied if _field_name(tuple(e.get("loc", ()))) == field
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
