"""Every microversion novaflow announces, served as Nova serves it: at each version where a
body changes (and just before it), tempest's schema for that version validates the body
(tempest keeps one module per version that changed it: the newest at or below the version
asked for is the one that applies), and the requests Nova accepts or refuses at a version are
accepted or refused here (api/microversion.py has the history)."""

from __future__ import annotations

import base64
import importlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import tempest.lib.api_schema.response.compute as compute_schemas

from api.microversion import MAX_VERSION
from novaflow.seed import PRIVATE_NETWORK_ID
from tests.integration.client import CIRROS, NovaClient, refused, wait_until
from tests.integration.test_tempest_schemas import valid
from workers.devstack import Stack

MAX = str(MAX_VERSION)
SCHEMAS = Path(compute_schemas.__file__).parent


def at(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def schema(kind: str, name: str, version: str) -> dict[str, Any]:
    """tempest's schema `name` of `kind` (servers, keypairs, ...) at `version`: from the
    newest of its per-version modules at or below it that defines it."""
    minor = int(version.split(".")[1])
    minors = sorted(
        (int(d.name[len("v2_") :]) for d in SCHEMAS.glob("v2_*") if (d / f"{kind}.py").exists()),
        reverse=True,
    )
    for candidate in (m for m in minors if m <= minor):
        module: ModuleType = importlib.import_module(
            f"{compute_schemas.__name__}.v2_{candidate}.{kind}"
        )
        if hasattr(module, name):
            return dict(getattr(module, name))
    raise LookupError(f"tempest has no {kind}.{name} at or below {version}")


def valid_at(kind: str, name: str, version: str, response: httpx.Response) -> dict[str, Any]:
    return valid(schema(kind, name, version), response)


@pytest.fixture(scope="module")
def nova(stack: Stack) -> Iterator[NovaClient]:
    client = NovaClient(stack.api_url, user="alice", project="p-microversions")
    yield client
    client.close()


def create(nova: NovaClient, version: str, **server: Any) -> httpx.Response:
    body = nova.server_body(name=server.pop("name", "mv-vm"), **server)
    return nova.http.post("/v2.1/servers", json=body, headers=at(version))


def gone(nova: NovaClient, server_id: str) -> None:
    if nova.status(server_id) != "GONE":
        nova.admin.delete(f"/v2.1/servers/{server_id}")
        nova.wait_status(server_id, "GONE")


@pytest.fixture(scope="module")
def server(nova: NovaClient) -> Iterator[str]:
    """An ACTIVE server created at the maximum, with a description (2.19) and tags (2.52)."""
    response = create(nova, MAX, name="mv-shown", description="shown", tags=["blue", "round"])
    assert response.status_code == 202, response.text
    valid_at("servers", "create_server_with_admin_pass", MAX, response)
    server_id = response.json()["server"]["id"]
    nova.wait_status(server_id, "ACTIVE")
    yield server_id
    gone(nova, server_id)


# --------------------------------------------------------------------------------- servers

# Around each version that changed a server's body: 2.3, 2.9, 2.16, 2.19, 2.26, 2.47.
SERVER_VERSIONS = ["2.1", "2.2", "2.3", "2.8", "2.9", "2.15", "2.16", "2.18", "2.19", "2.25",
                   "2.26", "2.46", "2.47", MAX]  # fmt: skip


@pytest.mark.parametrize("version", SERVER_VERSIONS)
def test_server_bodies(nova: NovaClient, server: str, version: str) -> None:
    minor = int(version.split(".")[1])
    headers = at(version)
    valid_at("servers", "list_servers", version, nova.http.get("/v2.1/servers", headers=headers))
    for client in (nova.http, nova.admin):
        detail = client.get("/v2.1/servers/detail", headers=headers)
        valid_at("servers", "list_servers_detail", version, detail)
        shown = valid_at(
            "servers", "get_server", version, client.get(f"/v2.1/servers/{server}", headers=headers)
        )["server"]
        assert ("locked" in shown) == (minor >= 9)
        assert ("description" in shown) == (minor >= 19)
        assert ("tags" in shown) == (minor >= 26)
        assert ("original_name" in shown["flavor"]) == (minor >= 47)
        admin = client is nova.admin
        assert ("host_status" in shown) == (admin and minor >= 16)
        assert ("OS-EXT-SRV-ATTR:hostname" in shown) == (admin and minor >= 3)
    if minor >= 16:
        assert shown["host_status"] == "UP"
    if minor >= 3:
        assert shown["OS-EXT-SRV-ATTR:hostname"] == "mv-shown"
        assert shown["OS-EXT-SRV-ATTR:root_device_name"] == "/dev/vda"
    if minor >= 26:
        assert shown["description"] == "shown" and shown["tags"] == ["blue", "round"]
    updated = valid_at(
        "servers",
        "update_server",
        version,
        nova.http.put(
            f"/v2.1/servers/{server}", json={"server": {"name": "mv-shown"}}, headers=headers
        ),
    )["server"]
    assert ("tags" in updated) == (minor >= 26)


def test_the_hostname_is_the_first_name_s(nova: NovaClient, server: str) -> None:
    """2.3's hostname comes from the name the server was created with; a rename keeps it."""
    path = f"/v2.1/servers/{server}"
    renamed = nova.http.put(path, json={"server": {"name": "Another Name"}}, headers=at("2.3"))
    assert renamed.status_code == 200, renamed.text
    try:
        shown = nova.admin.get(path, headers=at("2.3")).json()["server"]
        assert shown["name"] == "Another Name"
        assert shown["OS-EXT-SRV-ATTR:hostname"] == "mv-shown"
    finally:
        nova.http.put(path, json={"server": {"name": "mv-shown"}})


def test_description_on_update_from_2_19(nova: NovaClient, server: str) -> None:
    path = f"/v2.1/servers/{server}"
    refused(
        nova.http.put(path, json={"server": {"description": "x"}}, headers=at("2.18")),
        400,
        "description",
    )
    body = {"server": {"description": "changed"}}
    answer = valid_at(
        "servers", "update_server", "2.19", nova.http.put(path, json=body, headers=at("2.19"))
    )
    assert answer["server"]["description"] == "changed"
    back = nova.http.put(path, json={"server": {"description": "shown"}}, headers=at(MAX))
    assert back.status_code == 200, back.text


def test_create_requests_by_version(nova: NovaClient) -> None:
    """What create's body may hold, version by version (checked before anything is created:
    a bad flavor is reported only once the body passed)."""

    def body_refused(version: str, field: str, **server: Any) -> None:
        refused(create(nova, version, flavor="no-such-flavor", **server), 400, field)

    def body_passed(version: str, **server: Any) -> None:
        refused(create(nova, version, flavor="no-such-flavor", **server), 400, "flavorRef")

    body_refused("2.18", "description", description="d")
    body_passed("2.19", description="d")
    body_refused("2.51", "tags", tags=["a"])
    body_passed("2.52", tags=["a"])
    body_refused("2.52", "tags", tags=["a/b"])
    tagged = [{"uuid": PRIVATE_NETWORK_ID, "tag": "nic1"}]
    root = [{"uuid": CIRROS, "source_type": "image", "boot_index": 0, "tag": "root"}]
    for version in ("2.31", "2.33", "2.41"):
        body_refused(version, "tag", networks=tagged)
        body_refused(version, "tag", block_device_mapping_v2=root)
    for version in ("2.32", "2.42", MAX):
        body_passed(version, networks=tagged)
        body_passed(version, block_device_mapping_v2=root)
    body_refused("2.36", "networks", networks="auto")
    body_refused("2.36", "networks", networks="none")
    body_passed("2.37", networks="auto")
    body_refused("2.37", "uuid", networks=[{"uuid": "not-a-uuid"}])
    response = nova.http.post(
        "/v2.1/servers",
        json={"server": {"name": "n", "flavorRef": "1", "imageRef": CIRROS}},
        headers=at("2.37"),
    )
    refused(response, 400, "networks")


def test_networks_left_out_before_2_37_and_none_from_it(nova: NovaClient) -> None:
    """Before 2.37 a server without `networks` gets the one network the project may use;
    from 2.37 "none" gives it none."""
    body = {"server": {"name": "mv-default-net", "flavorRef": "1", "imageRef": CIRROS}}
    response = nova.http.post("/v2.1/servers", json=body, headers=at("2.36"))
    assert response.status_code == 202, response.text
    with_default = response.json()["server"]["id"]
    without = create(nova, "2.37", name="mv-no-net", networks="none")
    assert without.status_code == 202, without.text
    without_id = without.json()["server"]["id"]
    try:
        assert list(nova.wait_status(with_default, "ACTIVE")["addresses"]) == ["private"]
        assert nova.wait_status(without_id, "ACTIVE")["addresses"] == {}
    finally:
        gone(nova, with_default)
        gone(nova, without_id)


def test_status_filter(nova: NovaClient) -> None:
    listed = nova.http.get("/v2.1/servers", params={"status": "banana"}, headers=at("2.37"))
    assert listed.status_code == 200 and listed.json() == {"servers": []}, listed.text
    known = nova.http.get("/v2.1/servers", params={"status": "shelved"}, headers=at("2.38"))
    assert known.status_code == 200, known.text
    refused(nova.http.get("/v2.1/servers", params={"status": "banana"}, headers=at("2.38")), 400)


def test_ip6_filter(nova: NovaClient, server: str) -> None:
    """No server has an IPv6 address; a non-admin's ip6 filter counts only from 2.5."""

    def listed(version: str) -> list[str]:
        response = nova.http.get("/v2.1/servers", params={"ip6": "::1"}, headers=at(version))
        return [s["id"] for s in response.json()["servers"]]

    assert server in listed("2.4")
    assert listed("2.5") == []


# ------------------------------------------------------------------------------------ tags


def test_tags(nova: NovaClient, server: str) -> None:
    base = f"/v2.1/servers/{server}/tags"
    refused(nova.http.get(base, headers=at("2.25")), 404)
    v = "2.26"
    h = at(v)
    valid_at(
        "servers", "update_all_tags", v, nova.http.put(base, json={"tags": ["a", "b"]}, headers=h)
    )
    assert valid_at("servers", "list_tags", v, nova.http.get(base, headers=h))["tags"] == ["a", "b"]
    valid_at("servers", "check_tag_existence", v, nova.http.get(f"{base}/a", headers=h))
    refused(nova.http.get(f"{base}/zzz", headers=h), 404)
    created = nova.http.put(f"{base}/c", headers=h)
    assert created.status_code == 201, created.text
    valid_at("servers", "update_tag", v, created)
    assert created.headers["location"].endswith(f"/servers/{server}/tags/c")
    again = nova.http.put(f"{base}/c", headers=h)
    assert again.status_code == 204, again.text
    valid_at("servers", "update_tag", v, again)
    valid_at("servers", "delete_tag", v, nova.http.delete(f"{base}/b", headers=h))
    refused(nova.http.delete(f"{base}/b", headers=h), 404)
    refused(nova.http.put(base, json={"tags": [str(n) for n in range(51)]}, headers=h), 400, "tags")

    def found(**params: str) -> bool:
        response = nova.http.get("/v2.1/servers", params=params, headers=h)
        assert response.status_code == 200, response.text
        return server in [s["id"] for s in response.json()["servers"]]

    assert found(tags="a,c") and not found(tags="a,x")
    assert found(**{"tags-any": "x,c"}) and not found(**{"tags-any": "x,y"})
    assert found(**{"not-tags": "a,x"}) and not found(**{"not-tags": "a,c"})
    assert found(**{"not-tags-any": "x,y"}) and not found(**{"not-tags-any": "x,a"})
    # (before 2.26 the filters are unknown, so ignored)
    before = nova.http.get("/v2.1/servers", params={"tags": "x"}, headers=at("2.25"))
    assert server in [s["id"] for s in before.json()["servers"]]
    valid_at("servers", "delete_all_tags", v, nova.http.delete(base, headers=h))
    assert nova.http.get(base, headers=h).json() == {"tags": []}
    restored = nova.http.put(base, json={"tags": ["blue", "round"]}, headers=h)
    assert restored.status_code == 200, restored.text


# ------------------------------------------------------------------ rebuild, instance actions


@pytest.fixture(scope="module")
def rebuilt(nova: NovaClient) -> Iterator[str]:
    server_id = nova.create_ok(name="mv-rebuilt")
    nova.wait_status(server_id, "ACTIVE")
    yield server_id
    gone(nova, server_id)


def rebuild(nova: NovaClient, server_id: str, version: str, **args: Any) -> dict[str, Any]:
    response = nova.http.post(
        f"/v2.1/servers/{server_id}/action",
        json={"rebuild": {"imageRef": CIRROS, **args}},
        headers=at(version),
    )
    body = valid_at("servers", "rebuild_server_with_admin_pass", version, response)["server"]
    nova.wait_status(server_id, "ACTIVE")
    return body


def test_rebuild_by_version(nova: NovaClient, rebuilt: str) -> None:
    path = f"/v2.1/servers/{rebuilt}/action"
    for version, field, value in (
        ("2.18", "description", "d"),
        ("2.53", "key_name", None),
        ("2.56", "user_data", "aGk="),
    ):
        body = {"rebuild": {"imageRef": CIRROS, field: value}}
        refused(nova.http.post(path, json=body, headers=at(version)), 400, field)
    answer = rebuild(nova, rebuilt, "2.1")
    assert "locked" not in answer and "OS-EXT-STS:vm_state" not in answer
    answer = rebuild(nova, rebuilt, "2.19", description="first")
    assert answer["description"] == "first" and "key_name" not in answer
    assert nova.create_keypair("mv-key").status_code == 200
    try:
        answer = rebuild(nova, rebuilt, "2.54", key_name="mv-key")
    finally:  # (keypairs are the user's, in every project: leave none to other tests)
        assert nova.http.delete("/v2.1/os-keypairs/mv-key").status_code == 202
    assert answer["key_name"] == "mv-key" and "user_data" not in answer
    user_data = base64.b64encode(b"#!/bin/sh\n").decode()
    answer = rebuild(nova, rebuilt, MAX, key_name=None, user_data=user_data, description=None)
    assert answer["key_name"] is None and answer["user_data"] == user_data
    assert answer["description"] is None and answer["flavor"]["original_name"]
    shown = nova.admin.get(f"/v2.1/servers/{rebuilt}", headers=at(MAX)).json()["server"]
    assert shown["OS-EXT-SRV-ATTR:user_data"] == user_data and shown["key_name"] is None


def test_instance_actions_by_version(nova: NovaClient, rebuilt: str) -> None:
    base = f"/v2.1/servers/{rebuilt}/os-instance-actions"
    for action in ("lock", "unlock"):  # (actions of their own, done in the gate)
        assert nova.server_action(rebuilt, {action: None}).status_code == 202
    for version in ("2.1", "2.50", "2.51", "2.57", "2.58", "2.61", "2.62", MAX):
        minor = int(version.split(".")[1])
        for client in (nova.http, nova.admin):
            listed = valid_at(
                "servers", "list_instance_actions", version, client.get(base, headers=at(version))
            )["instanceActions"]
            assert all(("updated_at" in a) == (minor >= 58) for a in listed)
            shown = valid_at(
                "servers",
                "show_instance_action",
                version,
                client.get(f"{base}/{listed[0]['request_id']}", headers=at(version)),
            )["instanceAction"]
            assert ("events" in shown) == (client is nova.admin or minor >= 51)
            for event in shown.get("events", []):
                assert ("hostId" in event) == (minor >= 62)
                assert ("host" in event) == (client is nova.admin and minor >= 62)
    # 2.58's paging: newest first, a page after the marker, changes-since.
    everything = nova.http.get(base, headers=at("2.58")).json()["instanceActions"]
    assert len(everything) >= 3
    page = nova.http.get(base, params={"limit": 2}, headers=at("2.58")).json()
    assert [a["request_id"] for a in page["instanceActions"]] == [
        a["request_id"] for a in everything[:2]
    ]
    [link] = page["links"]
    assert link["rel"] == "next"
    following = nova.http.get(link["href"], headers=at("2.58")).json()["instanceActions"]
    assert [a["request_id"] for a in following] == [a["request_id"] for a in everything[2:4]]
    after = nova.http.get(
        base, params={"limit": 1, "marker": everything[0]["request_id"]}, headers=at("2.58")
    ).json()["instanceActions"]
    assert [a["request_id"] for a in after] == [everything[1]["request_id"]]
    refused(nova.http.get(base, params={"marker": "req-none"}, headers=at("2.58")), 400)
    since = nova.http.get(
        base, params={"changes-since": everything[0]["updated_at"]}, headers=at("2.58")
    )
    assert since.status_code == 200, since.text
    since = since.json()["instanceActions"]
    assert everything[0]["request_id"] in [a["request_id"] for a in since]
    assert len(since) < len(everything)
    # (before 2.58 the paging parameters are unknown, so ignored)
    ignored = nova.http.get(base, params={"limit": 1}, headers=at("2.57")).json()
    assert len(ignored["instanceActions"]) == len(everything)


def test_a_deleted_server_s_actions_from_2_21(nova: NovaClient) -> None:
    server_id = nova.create_ok(name="mv-deleted")
    nova.wait_status(server_id, "ACTIVE")
    nova.delete_and_wait(server_id)
    base = f"/v2.1/servers/{server_id}/os-instance-actions"
    refused(nova.http.get(base, headers=at("2.20")), 404)
    listed = nova.http.get(base, headers=at("2.21"))
    assert {a["action"] for a in listed.json()["instanceActions"]} == {"create", "delete"}


def test_trigger_crash_dump_from_2_17(nova: NovaClient, server: str) -> None:
    path = f"/v2.1/servers/{server}/action"
    refused(nova.http.post(path, json={"trigger_crash_dump": None}, headers=at("2.16")), 400)
    refused(nova.http.post(path, json={"trigger_crash_dump": {}}, headers=at("2.17")), 400)
    response = nova.http.post(path, json={"trigger_crash_dump": None}, headers=at("2.17"))
    assert response.status_code == 202, response.text
    request_id = response.headers["x-openstack-request-id"]

    def finished() -> dict[str, Any] | None:
        action = nova.action(server, request_id)
        return (
            action if action["events"] and all(e["finish_time"] for e in action["events"]) else None
        )

    action = wait_until(finished, "the crash dump's action to finish")
    assert action["action"] == "trigger_crash_dump" and action["message"] is None, action
    assert nova.status(server) == "ACTIVE"


def test_diagnostics_by_version(nova: NovaClient, server: str) -> None:
    path = f"/v2.1/servers/{server}/diagnostics"
    legacy = nova.admin.get(path, headers=at("2.47"))
    assert legacy.status_code == 200, legacy.text
    assert legacy.json() == {"memory": 512 * 1024, "cpu0_time": legacy.json()["cpu0_time"]}
    standard = valid_at(
        "servers", "show_server_diagnostics", "2.48", nova.admin.get(path, headers=at("2.48"))
    )
    assert standard["state"] == "running" and standard["memory_details"]["maximum"] == 512
    valid_at("servers", "show_server_diagnostics", MAX, nova.admin.get(path, headers=at(MAX)))


# ----------------------------------------------------------------------------- migrations


def test_migrations_by_version(nova: NovaClient) -> None:
    server_id = nova.create_ok(name="mv-resized")
    nova.wait_status(server_id, "ACTIVE")
    try:
        refused(
            nova.server_action(server_id, {"migrate": {"host": "host-a"}}, admin=True), 400, "host"
        )
        response = nova.server_action(server_id, {"resize": {"flavorRef": "2"}})
        assert response.status_code == 202, response.text
        nova.wait_status(server_id, "VERIFY_RESIZE")
        for version in ("2.1", "2.22", "2.23", "2.58", "2.59", MAX):
            minor = int(version.split(".")[1])
            listed = valid_at(
                "migrations", "list_migrations", version,
                nova.admin.get("/v2.1/os-migrations", headers=at(version)),
            )["migrations"]  # fmt: skip
            mine = [m for m in listed if m["instance_uuid"] == server_id]
            assert len(mine) == 1
            assert ("migration_type" in mine[0]) == (minor >= 23)
            assert ("uuid" in mine[0]) == (minor >= 59)
        page = nova.admin.get("/v2.1/os-migrations", params={"limit": 1}, headers=at("2.59")).json()
        assert len(page["migrations"]) == 1 and page["migrations_links"][0]["rel"] == "next"
        assert (
            "migrations_links"
            not in nova.admin.get(
                "/v2.1/os-migrations", params={"limit": 1}, headers=at("2.58")
            ).json()
        )
        refused(
            nova.admin.get("/v2.1/os-migrations", params={"marker": "x"}, headers=at("2.59")), 400
        )
        # A server's live migrations in progress (2.23): novaflow has none.
        base = f"/v2.1/servers/{server_id}/migrations"
        refused(nova.admin.get(base, headers=at("2.22")), 404)
        valid_at(
            "servers", "list_live_migrations", "2.23", nova.admin.get(base, headers=at("2.23"))
        )
        valid_at("servers", "list_live_migrations", MAX, nova.admin.get(base, headers=at(MAX)))
        refused(nova.admin.get(f"{base}/1", headers=at("2.23")), 404)
        refused(nova.admin.delete(f"{base}/1", headers=at("2.23")), 404)
        refused(nova.admin.delete(f"{base}/1", headers=at("2.24")), 409, "abort live migration")
        complete = {"force_complete": None}
        refused(nova.admin.post(f"{base}/1/action", json=complete, headers=at("2.21")), 404)
        refused(nova.admin.post(f"{base}/1/action", json={}, headers=at("2.22")), 400)
        forced = nova.admin.post(f"{base}/1/action", json=complete, headers=at("2.22"))
        refused(forced, 409, "force_complete")
        confirmed = nova.server_action(server_id, {"confirmResize": None})
        assert confirmed.status_code == 204, confirmed.text
        wait_until(lambda: nova.status(server_id) == "ACTIVE", "the resize confirmed")
    finally:
        gone(nova, server_id)


# ------------------------------------------------------------------------------- keypairs


@pytest.fixture
def keypair_user(nova: NovaClient) -> Iterator[NovaClient]:
    """A user of its own: keypairs are a user's, whatever the project."""
    client = nova.as_user("mv-keypairs-user")
    yield client
    client.close()


def test_keypairs_by_version(keypair_user: NovaClient) -> None:
    nova = keypair_user
    admin = nova.admin
    base = "/v2.1/os-keypairs"
    refused(
        nova.http.post(base, json={"keypair": {"name": "k", "type": "ssh"}}, headers=at("2.1")),
        400,
        "type",
    )
    created = nova.http.post(base, json={"keypair": {"name": "mv-k21"}}, headers=at("2.1"))
    assert created.status_code == 200
    valid_at("keypairs", "create_keypair", "2.1", created)
    valid_at(
        "keypairs", "delete_keypair", "2.1", nova.http.delete(f"{base}/mv-k21", headers=at("2.1"))
    )
    created = nova.http.post(
        base, json={"keypair": {"name": "mv-k22", "type": "x509"}}, headers=at("2.2")
    )
    assert created.status_code == 201 and created.json()["keypair"]["type"] == "x509"
    valid_at("keypairs", "create_keypair", "2.2", created)
    valid_at("keypairs", "list_keypairs", "2.2", nova.http.get(base, headers=at("2.2")))
    valid_at("keypairs", "get_keypair", "2.2", nova.http.get(f"{base}/mv-k22", headers=at("2.2")))
    deleted = nova.http.delete(f"{base}/mv-k22", headers=at("2.2"))
    assert deleted.status_code == 204
    # 2.10: an admin creates a keypair for another user.
    for_bob = {"keypair": {"name": "mv-bob", "user_id": "mv-bob"}}
    refused(admin.post(base, json=for_bob, headers=at("2.9")), 400, "user_id")
    made = admin.post(base, json=for_bob, headers=at("2.10"))
    assert made.status_code == 201 and made.json()["keypair"]["user_id"] == "mv-bob", made.text
    refused(nova.http.post(base, json=for_bob, headers=at("2.10")), 403)
    bob = admin.get(base, params={"user_id": "mv-bob"}, headers=at("2.10")).json()
    assert [k["keypair"]["name"] for k in bob["keypairs"]] == ["mv-bob"]
    # 2.35: pages.
    for name in ("mv-p1", "mv-p2", "mv-p3"):
        assert (
            nova.http.post(base, json={"keypair": {"name": name}}, headers=at("2.35")).status_code
            == 201
        )
    page = nova.http.get(base, params={"limit": 2}, headers=at("2.35")).json()
    assert [k["keypair"]["name"] for k in page["keypairs"]] == ["mv-p1", "mv-p2"]
    assert page["keypairs_links"][0]["rel"] == "next"
    rest = nova.http.get(base, params={"marker": "mv-p2"}, headers=at("2.35")).json()
    assert [k["keypair"]["name"] for k in rest["keypairs"]] == ["mv-p3"]
    unpaged = nova.http.get(base, params={"limit": 2}, headers=at("2.34")).json()
    assert len(unpaged["keypairs"]) == 3 and "keypairs_links" not in unpaged


# -------------------------------------------------------------------- the admin's views


def test_hypervisors_by_version(nova: NovaClient, server: str) -> None:
    base = "/v2.1/os-hypervisors"
    for version in ("2.1", "2.27", "2.28", "2.33", "2.52", "2.53", MAX):
        minor = int(version.split(".")[1])
        h = at(version)
        listed = valid_at(
            "hypervisors", "list_search_hypervisors", version, nova.admin.get(base, headers=h)
        )
        detail = valid_at(
            "hypervisors",
            "list_hypervisors_detail",
            version,
            nova.admin.get(f"{base}/detail", headers=h),
        )["hypervisors"]
        for row in detail:
            assert isinstance(row["cpu_info"], dict) == (minor >= 28)
            assert isinstance(row["id"], int) == (minor < 53)
            assert row["service"]["id"] == row["id"]
        one = listed["hypervisors"][0]["id"]
        valid_at(
            "hypervisors", "get_hypervisor", version, nova.admin.get(f"{base}/{one}", headers=h)
        )
    ids = [row["id"] for row in nova.admin.get(base, headers=at("2.33")).json()["hypervisors"]]
    page = nova.admin.get(base, params={"limit": 1}, headers=at("2.33")).json()
    assert [r["id"] for r in page["hypervisors"]] == ids[:1]
    following = nova.admin.get(page["hypervisors_links"][0]["href"], headers=at("2.33")).json()
    assert [r["id"] for r in following["hypervisors"]] == ids[1:2]
    after = nova.admin.get(base, params={"marker": ids[0]}, headers=at("2.33")).json()
    assert [r["id"] for r in after["hypervisors"]] == ids[1:]
    # 2.53: uuids, with_servers, the hostname pattern.
    uuids = [row["id"] for row in nova.admin.get(base, headers=at("2.53")).json()["hypervisors"]]
    refused(nova.admin.get(f"{base}/{ids[0]}", headers=at("2.53")), 400)
    refused(nova.admin.get(f"{base}/{uuids[0]}", headers=at("2.52")), 404)
    host = nova.show(server)["OS-EXT-SRV-ATTR:host"]
    found = nova.admin.get(
        base,
        params={"hypervisor_hostname_pattern": host, "with_servers": "true"},
        headers=at("2.53"),
    )
    [row] = valid_at("hypervisors", "list_search_hypervisors", "2.53", found)["hypervisors"]
    assert server in [s["uuid"] for s in row["servers"]]
    refused(
        nova.admin.get(base, params={"hypervisor_hostname_pattern": "nope"}, headers=at("2.53")),
        404,
    )


def test_flavors_limits_and_quotas_by_version(nova: NovaClient) -> None:
    for version in ("2.54", "2.55", "2.60", "2.61", MAX):
        h = at(version)
        valid_at("flavors", "list_flavors", version, nova.http.get("/v2.1/flavors", headers=h))
        valid_at(
            "flavors",
            "list_flavors_details",
            version,
            nova.http.get("/v2.1/flavors/detail", headers=h),
        )
        flavor = valid_at(
            "flavors",
            "create_update_get_flavor_details",
            version,
            nova.http.get("/v2.1/flavors/1", headers=h),
        )["flavor"]
        minor = int(version.split(".")[1])
        assert ("description" in flavor) == (minor >= 55)
        assert ("extra_specs" in flavor) == (minor >= 61)
    project = f"/v2.1/os-quota-sets/{nova.project}"
    for version in ("2.35", "2.36", "2.38", "2.39", "2.56", "2.57", MAX):
        h = at(version)
        valid_at("limits", "get_limit", version, nova.http.get("/v2.1/limits", headers=h))
        valid_at("quotas", "get_quota_set", version, nova.http.get(project, headers=h))
        valid_at(
            "quotas",
            "get_quota_set_details",
            version,
            nova.http.get(f"{project}/detail", headers=h),
        )
        update = nova.admin.put(project, json={"quota_set": {"instances": 20}}, headers=h)
        valid_at("quotas", "update_quota_set", version, update)
    refused(
        nova.admin.put(project, json={"quota_set": {"floating_ips": 5}}, headers=at("2.36")),
        400,
        "floating_ips",
    )
    extension = nova.http.get(
        f"/v2.1/os-novaflow-quota-sets/{nova.project}/detail", headers=at("2.36")
    )
    assert "floating_ips" in extension.json()["quota_set"]


def test_proxy_apis_are_gone_from_2_36(nova: NovaClient) -> None:
    proxies = ("/v2.1/images", "/v2.1/images/detail", f"/v2.1/images/{CIRROS}",
               "/v2.1/os-networks", f"/v2.1/os-networks/{PRIVATE_NETWORK_ID}")  # fmt: skip
    for path in proxies:
        assert nova.http.get(path, headers=at("2.35")).status_code == 200, path
        refused(nova.http.get(path, headers=at("2.36")), 404)


def test_server_groups_by_version(nova: NovaClient) -> None:
    base = "/v2.1/os-server-groups"
    soft = {"server_group": {"name": "mv-soft", "policies": ["soft-affinity"]}}
    refused(nova.http.post(base, json=soft, headers=at("2.14")), 400, "soft-affinity")
    hard = {"server_group": {"name": "mv-hard", "policies": ["anti-affinity"]}}
    for version, body in (("2.1", hard), ("2.13", hard), ("2.15", soft), (MAX, soft)):
        response = nova.http.post(base, json=body, headers=at(version))
        group = valid_at("server_groups", "create_show_server_group", version, response)
        group = group["server_group"]
        assert ("project_id" in group) == (version != "2.1")
        valid_at(
            "server_groups", "list_server_groups", version, nova.http.get(base, headers=at(version))
        )
        assert nova.http.delete(f"{base}/{group['id']}").status_code == 204


def test_a_version_s_new_routes_do_not_exist_before_it(nova: NovaClient, server: str) -> None:
    refused(nova.http.get(f"/v2.1/servers/{server}/tags", headers=at("2.25")), 404)
    refused(nova.admin.get(f"/v2.1/servers/{server}/migrations", headers=at("2.22")), 404)
    assert uuid.UUID(server)  # (the routes exist for a real server)
