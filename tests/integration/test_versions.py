"""Version discovery and microversion negotiation as OpenStack's clients expect them: the
version documents (public), the version headers on every compute answer, errors included, and
the request id every answer carries, which is the instance action's."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.microversion import MAX_VERSION
from tests.integration.client import NovaClient
from workers.devstack import Stack


def served_in(response: httpx.Response, version: str) -> None:
    expected = {
        "openstack-api-version": f"compute {version}",
        "x-openstack-nova-api-version": version,
        "vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
    }
    for name, value in expected.items():
        assert response.headers.get(name) == value, (name, dict(response.headers))


def served_in_2_1(response: httpx.Response) -> None:
    served_in(response, "2.1")


def request_id(response: httpx.Response) -> str:
    value = response.headers["x-openstack-request-id"]
    assert value.startswith("req-") and len(value) == len("req-") + 36, value
    assert response.headers["x-compute-request-id"] == value
    return value


ABOVE = f"2.{MAX_VERSION.minor + 1}"  # the first version novaflow does not serve
RANGE = f"Minimum is 2.1 and maximum is {MAX_VERSION}."


def v21(base: str) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": str(MAX_VERSION),
        "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": f"{base}/v2.1/"}],
    }


def test_the_versions_list_is_public(stack: Stack) -> None:
    response = httpx.get(f"{stack.api_url}/")  # no token
    assert response.status_code == 200, response.text
    assert response.json() == {
        "versions": [
            {
                "id": "v2.0",
                "status": "SUPPORTED",
                "version": "",
                "min_version": "",
                "updated": "2011-01-21T11:33:21Z",
                "links": [{"rel": "self", "href": f"{stack.api_url}/v2/"}],
            },
            v21(stack.api_url),
        ]
    }
    served_in_2_1(response)
    request_id(response)


@pytest.mark.parametrize("path", ["/v2.1", "/v2.1/"])
def test_the_v21_document_is_public(stack: Stack, path: str) -> None:
    response = httpx.get(f"{stack.api_url}{path}")  # no token
    assert response.status_code == 200, response.text
    expected = v21(stack.api_url)
    expected["links"].append(
        {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}
    )
    expected["media-types"] = [
        {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}
    ]
    assert response.json() == {"version": expected}
    served_in_2_1(response)


@pytest.mark.parametrize(
    ("headers", "version"),
    [
        ({}, "2.1"),
        ({"OpenStack-API-Version": "compute 2.1"}, "2.1"),
        ({"OpenStack-API-Version": "compute 2.47"}, "2.47"),
        ({"OpenStack-API-Version": "compute latest"}, str(MAX_VERSION)),
        ({"OpenStack-API-Version": "identity 3.0, compute 2.1"}, "2.1"),
        ({"X-OpenStack-Nova-API-Version": "2.1"}, "2.1"),
        ({"X-OpenStack-Nova-API-Version": "latest"}, str(MAX_VERSION)),
    ],
    ids=["none", "2.1", "2.47", "latest", "several-services", "legacy", "legacy-latest"],
)
def test_a_request_is_served_in_the_version_it_asks_for(
    nova: NovaClient, headers: dict[str, str], version: str
) -> None:
    response = nova.http.get("/v2.1/flavors", headers=headers)
    assert response.status_code == 200, response.text
    served_in(response, version)
    request_id(response)


@pytest.mark.parametrize(
    ("headers", "status", "title", "message"),
    [
        (
            {"OpenStack-API-Version": "compute 2.999"},
            406,
            "computeFault",
            f"Version 2.999 is not supported by the API. {RANGE}",
        ),
        (
            {"OpenStack-API-Version": "compute 1.0"},
            406,
            "computeFault",
            f"Version 1.0 is not supported by the API. {RANGE}",
        ),
        (
            {"X-OpenStack-Nova-API-Version": ABOVE},
            406,
            "computeFault",
            f"Version {ABOVE} is not supported by the API. {RANGE}",
        ),
        (
            {"OpenStack-API-Version": "compute banana"},
            400,
            "badRequest",
            "API Version String banana is of invalid format. Must be of format MajorNum.MinorNum.",
        ),
    ],
    ids=["too-high", "too-low", "legacy-too-high", "malformed"],
)
def test_a_version_out_of_range_or_malformed_is_refused(
    nova: NovaClient, headers: dict[str, str], status: int, title: str, message: str
) -> None:
    response = nova.http.get("/v2.1/flavors", headers=headers)
    assert response.status_code == status, response.text
    assert response.json() == {title: {"code": status, "message": message}}
    served_in_2_1(response)
    request_id(response)


def test_the_standard_header_wins_over_the_legacy_one(nova: NovaClient) -> None:
    headers = {"OpenStack-API-Version": "compute 2.1", "X-OpenStack-Nova-API-Version": "2.999"}
    response = nova.http.get("/v2.1/flavors", headers=headers)
    assert response.status_code == 200, response.text
    served_in_2_1(response)


def test_a_refusal_of_authentication_carries_the_headers(stack: Stack) -> None:
    response = httpx.get(f"{stack.api_url}/v2.1/flavors")  # no token
    assert response.status_code == 401, response.text
    served_in_2_1(response)
    request_id(response)


def test_each_request_has_its_own_id(nova: NovaClient) -> None:
    ids = {request_id(nova.http.get("/v2.1/flavors")) for _ in range(3)}
    assert len(ids) == 3


def test_the_request_id_is_the_instance_actions(nova: NovaClient) -> None:
    created = nova.create(name="request-id-vm")
    assert created.status_code == 202, created.text
    server_id = created.json()["server"]["id"]
    try:
        create_id = request_id(created)
        served_in_2_1(created)
        assert nova.action(server_id, create_id)["action"] == "create"
        nova.wait_status(server_id, "ACTIVE")
    finally:
        deleted = nova.http.delete(f"/v2.1/servers/{server_id}")
        assert deleted.status_code == 204, deleted.text
        nova.wait_status(server_id, "GONE")
    assert nova.action(server_id, request_id(deleted))["action"] == "delete"


def test_keystoneauth_discovers_the_compute_endpoint(stack: Stack) -> None:
    """What openstacksdk does before its first compute call (it failed on a 404 at /v2.1):
    discover the endpoint's microversions, then send one."""
    session = pytest.importorskip("keystoneauth1.session")
    token_endpoint = pytest.importorskip("keystoneauth1.token_endpoint")
    auth = token_endpoint.Token(f"{stack.api_url}/v2.1", "alice:p-keystoneauth")
    ksa = session.Session(auth=auth)
    data = ksa.get_endpoint_data(
        service_type="compute", interface="public", min_version="2", max_version="2.latest"
    )
    assert data is not None
    assert data.api_version == (2, 1)
    assert data.min_microversion == (2, 1) and data.max_microversion == MAX_VERSION
    assert data.url.rstrip("/") == f"{stack.api_url}/v2.1"
    response = ksa.get(
        "/flavors",
        endpoint_filter={"service_type": "compute", "interface": "public"},
        microversion="2.1",
    )
    assert response.status_code == 200
    assert response.headers["OpenStack-API-Version"] == "compute 2.1"
