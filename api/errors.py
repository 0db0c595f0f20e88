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

_TITLES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
           405: "badMethod", 409: "conflictingRequest", 415: "badMediaType",
           503: "serviceUnavailable"}


def error_response(code: int, message: str, title: str | None = None) -> JSONResponse:
    title = title or _TITLES.get(code, "computeFault")
    return JSONResponse(status_code=code, content={title: {"code": code, "message": message}})


def _field_name(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    # Drop pydantic's union/type tags so the user sees the field they wrote.
    parts = [p for p in parts if not p.startswith("function-") and p not in {"str", "int"}]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(NovaflowError)
    async def _domain(_: Request, error: NovaflowError) -> JSONResponse:
        return error_response(error.code, error.message, error.title)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        loc = tuple(first.get("loc", ()))
        if first.get("type") == "json_invalid":
            return error_response(400, "Malformed request body: not valid JSON")
        field = _field_name(loc)
        reason = first.get("msg", "invalid")
        return error_response(400, f"Invalid input for field/attribute {field}. {reason}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, f"Unexpected API Error: {type(error).__name__}")
