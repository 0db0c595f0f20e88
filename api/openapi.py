"""The OpenAPI document (/openapi.json) declares every status a route can answer.

FastAPI declares only a route's own success status and a 422 for its parameters. novaflow
never answers 422 (a bad parameter is Nova's 400, api/errors.py), and most refusals come from
layers around the routes, each for a reason that follows from the route's shape:

- 400, every route: a malformed microversion, a NUL or lone surrogate in the URL, a bad
  parameter or body;
- 401, every route but the public ones: no token, or a bad one (api/auth.py);
- 403, the same: the route's policy rule, or noauth on a non-loopback address;
- 503, the same: Keycloak's keys out of reach (api/keycloak_auth.py);
- 404, a path with parameters: what it names does not exist (or is another project's);
- 405, the same: a parameter left empty makes the URL another route's (`/servers//action`
  reads as `/servers/{id}`), which may not take the method;
- 406, the compute API's paths: a microversion outside the API's range (api/microversion.py);
- 409, writes (POST, PUT, PATCH, DELETE): the state of what is written refuses it;
- 413, POST, PUT, PATCH: a body over the limit (api/sizelimit.py).

Every refusal has Nova's fault body (the `Fault` schema). What no shape tells is in
EXTRA_STATUSES, beside the few answers FastAPI cannot see (RESPONSES). A success answered
without a body (a 202 or 204 handed back as a bare Response) is declared without content.

tests/integration/test_openapi.py checks the document; schemathesis checks it against a running
stack (about 1.5 min per caller, too slow for the suite), e.g. `schemathesis run
http://127.0.0.1:8774/openapi.json -c status_code_conformance,content_type_conformance
-H 'X-Auth-Token: admin:p-st'` (and again as a member, `alice:p-st`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.responses import JSONResponse
from starlette.responses import Response

from api.auth import is_public
from api.microversion import is_compute

WRITES = frozenset({"post", "put", "patch", "delete"})
WITH_BODY = frozenset({"post", "put", "patch"})

# Statuses some routes answer beyond what their shape says (method, path) -> statuses.
EXTRA_STATUSES: dict[tuple[str, str], frozenset[int]] = {
    # Nova's diagnostics of a server that is not running; a host that did not answer.
    ("get", "/v2.1/servers/{server_id}/diagnostics"): frozenset({409}),
    # An image's data before it was uploaded.
    ("get", "/image/v2/images/{image_id}/file"): frozenset({409}),
}

# Answers FastAPI cannot see in the route's signature (method, path) -> {status: response}.
RESPONSES: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    # One endpoint, one action per body: the console output is 200 with a body, the actions
    # that start an operation 202 without one (rebuild's has the server), confirmResize 204.
    ("post", "/v2.1/servers/{server_id}/action"): {
        "200": {
            "description": "os-getConsoleOutput: the output",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "202": {"description": "Accepted: the operation started (rebuild: with the server)"},
        "204": {"description": "confirmResize: confirmed"},
    },
    ("get", "/image/v2/images/{image_id}/file"): {
        "200": {
            "description": "The image's data",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
    },
}

FAULT = {
    "title": "Fault",
    "description": "Nova's fault body: one key naming the fault (badRequest, itemNotFound, "
    "conflictingRequest, ...) that holds its code and a message.",
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
    },
}

DESCRIPTIONS = {
    400: "Bad request: a malformed parameter, body or microversion",
    401: "Unauthorized: no token, or one that does not verify",
    403: "Forbidden: the policy does not allow it (or a quota is exceeded)",
    404: "Not found",
    405: "Method not allowed (a path parameter left empty names another route)",
    406: "The requested microversion is not supported",
    409: "Conflict with the state of the resource",
    413: "The request body is too large",
    503: "A service the API depends on is unavailable",
}


def statuses(method: str, path: str, has_path_parameters: bool) -> set[int]:
    """The refusals a route answers, from its shape (see the module's table)."""
    found = {400}
    if not is_public(path):
        found |= {401, 403, 503}
    if has_path_parameters:
        found |= {404, 405}
    if is_compute(path):
        found.add(406)
    if method in WRITES:
        found.add(409)
    if method in WITH_BODY:
        found.add(413)
    return found | EXTRA_STATUSES.get((method, path), frozenset())


def _bodiless(endpoint: Callable[..., Any]) -> bool:
    """Does the route hand back a bare Response (so no JSON body) as its success?"""
    returned = get_typed_return_annotation(endpoint)
    return (
        isinstance(returned, type)
        and issubclass(returned, Response)
        and not issubclass(returned, JSONResponse)
    )


def _routes(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    """(method, path, route) of every route, included routers' too."""
    iterate = getattr(routing, "iter_route_contexts", None)  # FastAPI >= 0.16x: lazy includes
    contexts: Iterator[Any] = iterate(app.routes) if iterate else iter(app.routes)
    for context in contexts:
        route = getattr(context, "route", context)
        for method in getattr(context, "methods", None) or ():
            yield method.lower(), context.path, route


def declare_errors(document: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    """`document` (FastAPI's) with every route's refusals and bodiless answers declared."""
    document.setdefault("components", {}).setdefault("schemas", {})["Fault"] = FAULT
    fault = {"application/json": {"schema": {"$ref": "#/components/schemas/Fault"}}}
    routes = {(method, path): route for method, path, route in _routes(app)}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # answered as Nova's 400
            route = routes.get((method, path))
            success = str(getattr(route, "status_code", None) or "")
            if route is not None and success in ("202", "204") and _bodiless(route.endpoint):
                responses[success] = {"description": responses[success].get("description", "")}
            responses.update(RESPONSES.get((method, path), {}))
            parameters = operation.get("parameters", [])
            in_path = any(p.get("in") == "path" for p in parameters)
            for refusal in sorted(statuses(method, path, in_path)):
                responses.setdefault(
                    str(refusal), {"description": DESCRIPTIONS[refusal], "content": fault}
                )
    schemas = document["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def install(app: FastAPI) -> None:
    """Make app.openapi() answer the declared document (built once, like FastAPI's)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_errors(generate(), app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
