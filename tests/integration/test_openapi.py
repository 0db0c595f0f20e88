"""The OpenAPI document declares what each route can answer (api/openapi.py): Nova's refusals
in its fault shape, no 422 (never answered), and no body where a success has none.

Checked on the document itself (no request is made but one, to see the served document is the
same); schemathesis' status_code_conformance and content_type_conformance checks, run against a
stack, are the dynamic counterpart (see api/openapi.py for how; too slow for the suite)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from api import openapi
from api.app import create_app
from api.auth import is_public
from api.errors import error_response
from api.microversion import is_compute
from novaflow.config import Settings
from workers.devstack import Stack

FAULT_REF = {"$ref": "#/components/schemas/Fault"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def declares_fault(operation: dict[str, Any], status: int) -> bool:
    response = operation["responses"].get(str(status))
    return response is not None and response["content"]["application/json"]["schema"] == FAULT_REF


def test_every_route_declares_its_refusals(document: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in operations(document):
        in_path = any(p["in"] == "path" for p in operation.get("parameters", []))
        wanted = {400}
        if not is_public(path):
            wanted |= {401, 403}
        if in_path:
            wanted |= {404, 405}  # 405: an empty parameter makes the URL another route's
        if is_compute(path):
            wanted.add(406)
        if method in ("post", "put", "patch", "delete"):
            wanted.add(409)
        if method in ("post", "put", "patch"):
            wanted.add(413)
        missing += [
            f"{method.upper()} {path}: {s}" for s in wanted if not declares_fault(operation, s)
        ]
        assert "422" not in operation["responses"], f"{method.upper()} {path} declares a 422"
    assert missing == []
    assert len(list(operations(document))) > 60
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_a_few_routes_by_hand(document: dict[str, Any]) -> None:
    def responses(method: str, path: str) -> dict[str, Any]:
        return dict(document["paths"][path][method]["responses"])

    services = responses("delete", "/v2.1/os-services/{service_id}")
    assert set(services) == {"204", "400", "401", "403", "404", "405", "406", "409", "503"}
    # The public version document: only a malformed request is refused.
    assert set(responses("get", "/")) == {"200", "400", "406"}
    # Reads of a collection have no 404, nor 409 or 413.
    assert set(responses("get", "/v2.1/os-simple-tenant-usage")) == {
        "200", "400", "401", "403", "406", "503"
    }  # fmt: skip
    assert "409" in responses("get", "/v2.1/servers/{server_id}/diagnostics")


def test_answers_without_a_body_are_declared_without_content(document: dict[str, Any]) -> None:
    for method, path, status in (
        ("delete", "/v2.1/os-keypairs/{name}", "202"),
        ("post", "/v2.1/servers/{server_id}/action", "202"),
        ("post", "/v2.1/servers/{server_id}/action", "204"),
        ("delete", "/v2.1/os-services/{service_id}", "204"),
        ("delete", "/v2.1/servers/{server_id}", "204"),
    ):
        response = document["paths"][path][method]["responses"][status]
        assert "content" not in response, (method, path, status)
    # Every 204 everywhere: a 204 has no body by definition.
    for method, path, operation in operations(document):
        assert "content" not in operation["responses"].get("204", {}), (method, path)
    action = document["paths"]["/v2.1/servers/{server_id}/action"]["post"]["responses"]
    assert "application/json" in action["200"]["content"]  # the console output
    download = document["paths"]["/image/v2/images/{image_id}/file"]["get"]["responses"]
    assert list(download["200"]["content"]) == ["application/octet-stream"]


def test_the_fault_schema_is_what_errors_answer(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["Fault"]
    for status in (400, 401, 403, 404, 406, 409, 413, 503):
        body = error_response(status, "why").body
        jsonschema.validate(httpx.Response(200, content=body).json(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"badRequest": {"code": 400}}, schema)


def test_the_tables_name_routes_that_exist(document: dict[str, Any]) -> None:
    known = {(method, path) for method, path, _ in operations(document)}
    assert set(openapi.EXTRA_STATUSES) <= known
    assert set(openapi.RESPONSES) <= known


def test_the_served_document_is_the_declared_one(stack: Stack, document: dict[str, Any]) -> None:
    served = httpx.get(f"{stack.api_url}/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json()["paths"].keys() == document["paths"].keys()
    for method, path, operation in operations(served.json()):
        assert declares_fault(operation, 400), (method, path)
