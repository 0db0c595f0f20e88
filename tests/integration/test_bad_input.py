"""Bad input gets a clear error and changes nothing: a 4xx (never a 500 or a bare 422), Nova's
error body naming the field, and no server, quota usage, port or address taken."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from novaflow.seed import PRIVATE_NETWORK_ID, PUBLIC_NETWORK_ID
from tests.integration.client import CIRROS, NovaClient, refused
from workers.devstack import Stack

UNKNOWN = "00000000-0000-4000-8000-000000000000"
DEBIAN = "6b7c0e4a-2f44-4b8e-9b1a-0c1f1d9e5a02"  # min_disk 2: too big for m1.tiny
DROP = object()  # a server attribute to leave out of the body


def snapshot(nova: NovaClient) -> dict[str, Any]:
    """What a refused request must leave as it was."""
    ports = nova.http.get("/v2.1/ports")
    assert ports.status_code == 200, ports.text
    return {"servers": nova.servers(), "usage": nova.usage(), "ports": ports.json()["ports"]}


def server(**changes: Any) -> dict[str, Any]:
    """A valid server body with attributes changed (or dropped with DROP)."""
    spec: dict[str, Any] = {
        "name": "vm",
        "flavorRef": "1",
        "imageRef": CIRROS,
        "networks": [{"uuid": PRIVATE_NETWORK_ID}],
    }
    spec.update(changes)
    return {"server": {k: v for k, v in spec.items() if v is not DROP}}


def net(**entry: Any) -> list[dict[str, Any]]:
    return [{"uuid": PRIVATE_NETWORK_ID, **entry}]


ZEROS = {"instances": 0, "cores": 0, "ram": 0, "ports": 0, "floating_ips": 0}
B = pytest.param
SERVER_CASES = [
    B(b'{"server": {"name": ', 400, "JSON", id="malformed-json"),
    B(b"[1, 2]", 400, "body", id="body-a-list"),
    B(b'"vm"', 400, "body", id="body-a-string"),
    B({}, 400, "server", id="no-server"),
    B({"servers": server()["server"]}, 400, "server", id="servers-typo"),
    B({**server(), "bogus": 1}, 400, "bogus", id="unknown-top-attribute"),
    B(server(name=DROP), 400, "name", id="no-name"),
    B(server(flavorRef=DROP), 400, "flavorRef", id="no-flavorRef"),
    B(server(imageRef=DROP), 400, "imageRef", id="no-imageRef"),
    B(server(name=123), 400, "name", id="name-int"),
    B(server(flavorRef=[]), 400, "flavorRef", id="flavorRef-list"),
    B(server(imageRef=7), 400, "imageRef", id="imageRef-int"),
    B(server(min_count="two"), 400, "min_count", id="min_count-str"),
    B(server(networks=5), 400, "networks", id="networks-int"),
    B(server(networks="all"), 400, "networks", id="networks-str"),
    B(server(networks=[{"uuid": 5}]), 400, "networks[0].uuid", id="net-uuid-int"),
    B(server(networks=net(bogus=1)), 400, "networks[0].bogus", id="net-unknown-key"),
    B(server(networks=[{}]), 400, "networks[0]", id="net-empty-entry"),
    B(server(metadata={"role": 5}), 400, "metadata", id="metadata-value-int"),
    B(server(metadata=["role"]), 400, "metadata", id="metadata-list"),
    B(server(name=""), 400, "name", id="name-empty"),
    B(server(name=" vm"), 400, "name", id="name-leading-space"),
    B(server(name="x" * 256), 400, "name", id="name-256"),
    B(server(flavorRef="999"), 400, "flavorRef", id="flavor-unknown"),
    B(server(imageRef=UNKNOWN), 400, "imageRef", id="image-unknown"),
    B(server(imageRef=DEBIAN), 400, "flavorRef", id="flavor-too-small"),
    B(server(networks=[{"uuid": UNKNOWN}]), 400, "networks[0].uuid", id="net-unknown"),
    B(server(networks=[{"uuid": PUBLIC_NETWORK_ID}]), 400, "networks[0].uuid", id="net-external"),
    B(server(networks=[{"port": UNKNOWN}]), 400, "networks[0].port", id="port-unknown"),
    B(server(networks=net(port=UNKNOWN)), 400, "networks[0]", id="port-and-uuid"),
    B(
        server(networks=[{"port": UNKNOWN}], max_count=2),
        400,
        "networks[0].port",
        id="port-max_count-2",
    ),
    B(server(networks=net(fixed_ip="192.168.9.9")), 400, "fixed_ip", id="fixed_ip-outside"),
    B(server(networks=net(fixed_ip="10.0.0.x")), 400, "fixed_ip", id="fixed_ip-malformed"),
    B(
        server(networks=net(fixed_ip="10.0.1.9"), max_count=2),
        400,
        "fixed_ip",
        id="fixed_ip-max_count-2",
    ),
    B(
        server(networks=net(fixed_ip="10.0.2.9") * 2),
        400,
        "networks[1].fixed_ip",
        id="fixed_ip-twice",
    ),
    B(server(min_count=3, max_count=2), 400, "min_count", id="min-over-max"),
    B(server(min_count=0), 400, "min_count", id="min_count-0"),
    B(server(max_count=101), 400, "max_count", id="max_count-101"),
    B(server(availability_zone="az-nowhere"), 400, "availability_zone", id="az-unknown"),
    B(
        {**server(), "os:scheduler_hints": {"group": UNKNOWN}},
        400,
        "os:scheduler_hints.group",
        id="group-unknown",
    ),
    B(
        {**server(), "os:scheduler_hints": {"group": 5}},
        400,
        "os:scheduler_hints.group",
        id="group-int",
    ),
    B(server(user_data="not base64!"), 400, "user_data", id="user_data-not-b64"),
    B(server(key_name="no-such-key"), 400, "key_name", id="key_name-unknown"),
    B(server(key_name=5), 400, "key_name", id="key_name-int"),
    B(server(bogus=True), 400, "bogus", id="unknown-server-attribute"),
]


@pytest.mark.parametrize(("body", "status", "field"), SERVER_CASES)
def test_srv(nova: NovaClient, body: Any, status: int, field: str) -> None:
    before = snapshot(nova)
    assert before["servers"] == [] and before["usage"] == ZEROS
    if isinstance(body, bytes):
        response = nova.http.post(
            "/v2.1/servers", content=body, headers={"Content-Type": "application/json"}
        )
    else:
        response = nova.http.post("/v2.1/servers", json=body)
    refused(response, status, field)
    assert snapshot(nova) == before


def test_no_token_or_a_bad_one_is_401(nova: NovaClient, stack: Stack) -> None:
    anonymous = httpx.post(f"{stack.api_url}/v2.1/servers", json=server())
    refused(anonymous, 401)
    bad_token = nova.http.post("/v2.1/servers", json=server(), headers={"X-Auth-Token": "alice"})
    refused(bad_token, 401)
    assert snapshot(nova) == {"servers": [], "usage": ZEROS, "ports": []}


def make_port(nova: NovaClient, **spec: Any) -> dict[str, Any]:
    response = nova.http.post(
        "/v2.1/ports", json={"port": {"network_id": PRIVATE_NETWORK_ID, **spec}}
    )
    assert response.status_code == 201, response.text
    return dict(response.json()["port"])


def test_same_port_twice_is_409(nova: NovaClient) -> None:
    port = make_port(nova)
    before = snapshot(nova)
    refused(
        nova.create(networks=[{"port": port["id"]}, {"port": port["id"]}]), 409, "networks[1].port"
    )
    assert snapshot(nova) == before
    assert nova.http.delete(f"/v2.1/ports/{port['id']}").status_code == 204


def test_port_bound_to_another_server_is_409(nova: NovaClient) -> None:
    port = make_port(nova)
    first = nova.create_ok(name="owner", networks=[{"port": port["id"]}])
    nova.wait_status(first, "ACTIVE")
    before = snapshot(nova)

    message = refused(nova.create(name="thief", networks=[{"port": port["id"]}]), 409, "port")
    assert port["id"] in message
    # Also when it comes second, after a network that would have been allocated first.
    refused(
        nova.create(name="thief", networks=[{"uuid": PRIVATE_NETWORK_ID}, {"port": port["id"]}]),
        409,
        "networks[1].port",
    )
    assert snapshot(nova) == before
    assert [s["id"] for s in before["servers"]] == [first]

    nova.delete_and_wait(first)
    assert nova.http.delete(f"/v2.1/ports/{port['id']}").status_code == 204
    assert snapshot(nova) == {"servers": [], "usage": ZEROS, "ports": []}


def test_fixed_ip_already_taken_is_refused(nova: NovaClient) -> None:
    port = make_port(nova)
    taken = port["fixed_ips"][0]["ip_address"]
    before = snapshot(nova)
    refused(nova.create(networks=net(fixed_ip=taken)), 400, "fixed_ip", taken)
    refused(
        nova.http.post(
            "/v2.1/ports",
            json={"port": {"network_id": PRIVATE_NETWORK_ID, "fixed_ips": [{"ip_address": taken}]}},
        ),
        409,
        taken,
    )
    assert snapshot(nova) == before
    assert nova.http.delete(f"/v2.1/ports/{port['id']}").status_code == 204


def test_over_quota_for_instances_is_403_and_takes_nothing(nova: NovaClient) -> None:
    nova.set_quota(instances=1)
    first = nova.create_ok(name="one")
    nova.wait_status(first, "ACTIVE")
    before = snapshot(nova)
    refused(nova.create(name="two"), 403, "Quota exceeded for instances")
    after = snapshot(nova)
    assert after == before
    assert after["usage"]["instances"] == 1
    assert [s["id"] for s in after["servers"]] == [first]
    nova.delete_and_wait(first)


def test_over_quota_for_cores_is_403(nova: NovaClient) -> None:
    nova.set_quota(cores=2)
    refused(nova.create(flavor="4"), 403, "Quota exceeded for cores")
    assert snapshot(nova) == {"servers": [], "usage": ZEROS, "ports": []}


def test_multi_create_where_min_count_does_not_fit_creates_nothing(nova: NovaClient) -> None:
    nova.set_quota(instances=2)
    refused(
        nova.create(name="batch", min_count=3, max_count=5), 403, "Quota exceeded for instances"
    )
    assert snapshot(nova) == {"servers": [], "usage": ZEROS, "ports": []}


QUOTA_CASES = [
    B({"quota_set": {"instances": "ten"}}, 400, "instances", id="str"),
    B({"quota_set": {"cores": True}}, 400, "cores", id="bool"),
    B({"quota_set": {"instances": -2}}, 400, "instances", id="below-minus-1"),
    B({"quota_set": {"bogus": 1}}, 400, "bogus", id="unknown"),
    B({"quota": {"instances": 1}}, 400, "quota_set", id="no-quota_set"),
    B([], 400, "body", id="list"),
]


@pytest.mark.parametrize(("body", "status", "field"), QUOTA_CASES)
def test_quota(nova: NovaClient, body: Any, status: int, field: str) -> None:
    url = f"/v2.1/os-quota-sets/{nova.project}"
    before = nova.admin.get(url).json()
    refused(nova.admin.put(url, json=body), status, field)
    assert nova.admin.get(url).json() == before


def test_quota_update_by_non_admin_is_403(nova: NovaClient) -> None:
    url = f"/v2.1/os-quota-sets/{nova.project}"
    before = nova.admin.get(url).json()
    refused(nova.http.put(url, json={"quota_set": {"instances": 100}}), 403)
    assert nova.admin.get(url).json() == before


PORT_CASES = [
    B({"port": {}}, 400, "network_id", id="no-network"),
    B({"port": {"network_id": UNKNOWN}}, 400, "network_id", id="unknown-network"),
    B({"port": {"network_id": PUBLIC_NETWORK_ID}}, 400, "network_id", id="external-network"),
    B({"port": {"network_id": 5}}, 400, "network_id", id="network-int"),
    B(
        {"port": {"network_id": PRIVATE_NETWORK_ID, "fixed_ips": [{"ip_address": "1.2.3.4"}]}},
        400,
        "fixed_ip",
        id="ip-outside",
    ),
    B(
        {"port": {"network_id": PRIVATE_NETWORK_ID, "fixed_ips": [{"ip_address": "nope"}]}},
        400,
        "fixed_ip",
        id="ip-malformed",
    ),
    B({"port": {"network_id": PRIVATE_NETWORK_ID, "bogus": 1}}, 400, "bogus", id="unknown"),
]


@pytest.mark.parametrize(("body", "status", "field"), PORT_CASES)
def test_port(nova: NovaClient, body: Any, status: int, field: str) -> None:
    refused(nova.http.post("/v2.1/ports", json=body), status, field)
    assert snapshot(nova) == {"servers": [], "usage": ZEROS, "ports": []}


GROUP_CASES = [
    B({"server_group": {"name": "g"}}, 400, "policy", id="no-policy"),
    B({"server_group": {"name": "g", "policy": "spread"}}, 400, "policy", id="bad-policy"),
    B({"server_group": {"name": "", "policy": "affinity"}}, 400, "name", id="empty-name"),
    B({"server_group": {"name": 1, "policy": "affinity"}}, 400, "name", id="name-int"),
    B({"server_group": {"name": "g", "policy": "affinity", "x": 1}}, 400, "x", id="unknown"),
    B({"group": {"name": "g", "policy": "affinity"}}, 400, "server_group", id="no-group"),
]


@pytest.mark.parametrize(("body", "status", "field"), GROUP_CASES)
def test_group(nova: NovaClient, body: Any, status: int, field: str) -> None:
    refused(nova.http.post("/v2.1/os-server-groups", json=body), status, field)
    assert nova.http.get("/v2.1/os-server-groups").json()["server_groups"] == []


ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxGoLyJCNp0IYtEwJyitspAGbEhBF6B3J/q08xLW54C"
KEYPAIR_CASES = [
    B(b'{"keypair": {"name": ', 400, "JSON", id="malformed-json"),
    B({"key_pair": {"name": "k"}}, 400, "keypair", id="no-keypair"),
    B({"keypair": {}}, 400, "keypair.name", id="no-name"),
    B({"keypair": {"name": 5}}, 400, "keypair.name", id="name-int"),
    B({"keypair": {"name": ""}}, 400, "keypair.name", id="name-empty"),
    B({"keypair": {"name": "k" * 256}}, 400, "keypair.name", id="name-256"),
    B({"keypair": {"name": "a/b"}}, 400, "keypair.name", id="name-unsafe"),
    B({"keypair": {"name": "k", "public_key": 5}}, 400, "keypair.public_key", id="key-int"),
    B({"keypair": {"name": "k", "public_key": "ssh-rsa AAAA"}}, 400, "public_key", id="key-bad"),
    B({"keypair": {"name": "k", "public_key": ED25519[:-4]}}, 400, "public_key", id="key-cut"),
    B({"keypair": {"name": "k", "type": "rsa"}}, 400, "keypair.type", id="type-unknown"),
    B({"keypair": {"name": "k", "user_id": "bob"}}, 400, "keypair.user_id", id="unknown"),
]


@pytest.mark.parametrize(("body", "status", "field"), KEYPAIR_CASES)
def test_keypair(nova: NovaClient, body: Any, status: int, field: str) -> None:
    before = nova.http.get("/v2.1/os-keypairs").json()
    if isinstance(body, bytes):
        response = nova.http.post(
            "/v2.1/os-keypairs", content=body, headers={"Content-Type": "application/json"}
        )
    else:
        response = nova.http.post("/v2.1/os-keypairs", json=body)
    refused(response, status, field)
    assert nova.http.get("/v2.1/os-keypairs").json() == before


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"keypair": {"name": "k\xed\xa0\x80"}}', id="raw-surrogate-bytes"),
        pytest.param('{"keypair": {"name": "k\\u0000"}}'.encode("utf-16"), id="utf16-escaped-nul"),
        pytest.param('{"keypair": {"name": "k\\u0000"}}'.encode("utf-16-le"), id="utf16le-nul"),
    ],
)
def test_text_no_database_can_store_is_refused_however_it_is_encoded(
    nova: NovaClient, raw: bytes
) -> None:
    """JSON parsers take more than strict UTF-8 (raw surrogate bytes, UTF-16 bodies): such a
    body is refused naming the field, not stored (PostgreSQL refuses NULs: a 500)."""
    response = nova.http.post(
        "/v2.1/os-keypairs", content=raw, headers={"Content-Type": "application/json"}
    )
    refused(response, 400, "keypair.name")
    assert nova.keypair_names() == []
