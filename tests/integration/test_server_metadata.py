"""Renaming a server and managing its metadata after create, as Nova's API does: the shapes, the
404s and 400s a user gets, the 128-item limit, no change while a delete runs, and no update
lost between concurrent requests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from hypervisor.faults import clear_faults, is_holding, set_fault
from tests.integration.client import NovaClient, refused, wait_until
from workers.devstack import Stack


@pytest.fixture
def server(nova: NovaClient) -> Iterator[str]:
    """An ACTIVE server named web-1 with metadata {"role": "web"}, deleted afterwards."""
    server_id = nova.create_ok(name="web-1", metadata={"role": "web"})
    nova.wait_status(server_id, "ACTIVE")
    yield server_id
    if nova.status(server_id) != "GONE":
        nova.delete_and_wait(server_id)  # nothing left in flight for the next test


def url(server_id: str, key: str | None = None) -> str:
    return f"/v2.1/servers/{server_id}/metadata" + (f"/{key}" if key is not None else "")


def wait_past(stamp: str) -> None:
    """`updated` is shown to the second: wait until the clock has passed `stamp`, so that a
    change made now shows a later time."""
    wait_until(
        lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) > stamp,
        f"the clock to pass {stamp}",
    )


def test_rename_shows_in_the_server_and_the_lists_and_moves_updated_forward(
    nova: NovaClient, server: str
) -> None:
    before = nova.show(server)
    wait_past(before["updated"])

    response = nova.rename(server, "web-renamed")
    assert response.status_code == 200, response.text
    renamed = response.json()["server"]
    assert renamed["id"] == server and renamed["name"] == "web-renamed"
    assert renamed["status"] == "ACTIVE" and renamed["metadata"] == {"role": "web"}
    # Nova's basic view of the server (as at 2.1: addresses without their type and MAC)
    assert renamed["addresses"] == {
        net: [{"version": a["version"], "addr": a["addr"]} for a in entries]
        for net, entries in before["addresses"].items()
    }
    assert renamed["updated"] > before["updated"]

    assert nova.show(server, admin=False)["name"] == "web-renamed"
    listed = nova.http.get("/v2.1/servers").json()["servers"]
    assert [(s["id"], s["name"]) for s in listed] == [(server, "web-renamed")]
    by_name = nova.http.get("/v2.1/servers/detail", params={"name": "renamed"}).json()
    assert [s["id"] for s in by_name["servers"]] == [server]

    # An empty update is Nova's no-op: the server as it is.
    unchanged = nova.http.put(f"/v2.1/servers/{server}", json={"server": {}})
    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.json()["server"]["name"] == "web-renamed"


def test_metadata_as_a_whole_and_item_by_item(nova: NovaClient, server: str) -> None:
    before = nova.show(server)
    assert nova.metadata(server) == {"role": "web"}
    wait_past(before["updated"])

    merged = nova.http.post(url(server), json={"metadata": {"role": "db", "tier": "1"}})
    assert merged.status_code == 200, merged.text
    assert merged.json() == {"metadata": {"role": "db", "tier": "1"}}
    shown = nova.show(server)
    assert shown["metadata"] == {"role": "db", "tier": "1"}
    assert shown["updated"] > before["updated"]

    item = nova.http.get(url(server, "tier"))
    assert item.status_code == 200 and item.json() == {"meta": {"tier": "1"}}

    put_item = nova.http.put(url(server, "owner"), json={"meta": {"owner": "ops team"}})
    assert put_item.status_code == 200, put_item.text
    assert put_item.json() == {"meta": {"owner": "ops team"}}
    assert nova.metadata(server) == {"role": "db", "tier": "1", "owner": "ops team"}

    deleted = nova.http.delete(url(server, "tier"))
    assert deleted.status_code == 204 and deleted.content == b""
    assert nova.metadata(server) == {"role": "db", "owner": "ops team"}
    refused(nova.http.get(url(server, "tier")), 404, "Metadata item was not found")
    refused(nova.http.delete(url(server, "tier")), 404, "Metadata item was not found")

    replaced = nova.http.put(url(server), json={"metadata": {"only": "this", "empty": ""}})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {"metadata": {"only": "this", "empty": ""}}
    assert nova.show(server, admin=False)["metadata"] == {"only": "this", "empty": ""}

    cleared = nova.http.put(url(server), json={"metadata": {}})
    assert cleared.status_code == 200 and cleared.json() == {"metadata": {}}
    assert nova.metadata(server) == {}


@pytest.fixture(scope="module")
def idle(stack: Stack) -> Iterator[tuple[NovaClient, str]]:
    """One server, in a project of its own, for requests that must all be refused."""
    client = NovaClient(stack.api_url, user="alice", project="p-metadata-refusals")
    server_id = client.create_ok(name="idle", metadata={"role": "web"})
    yield client, server_id
    client.delete_and_wait(server_id)  # nothing left in flight for the next module
    client.close()


def put(path: str, body: Any) -> tuple[str, str, Any]:
    return ("PUT", path, body)


def post(path: str, body: Any) -> tuple[str, str, Any]:
    return ("POST", path, body)


B = pytest.param
BAD_BODIES = [
    B(put("/metadata/a", {"meta": {"b": "1"}}), "meta", "Request body and URI mismatch", id="key"),
    B(put("/metadata/a", {"meta": {"a": "1", "b": "2"}}), "meta", "too many items", id="two"),
    B(put("/metadata/a", {"meta": {}}), "meta", "", id="meta-empty"),
    B(put("/metadata/a", {"meta": {"a": 1}}), "meta.a", "string", id="meta-value-int"),
    B(put("/metadata/a", {"metadata": {"a": "1"}}), "meta", "", id="meta-missing"),
    B(post("/metadata", {"metadata": {"k": 5}}), "metadata.k", "string", id="value-int"),
    B(post("/metadata", {"metadata": {"k": None}}), "metadata.k", "string", id="value-null"),
    B(post("/metadata", {"metadata": ["k"]}), "metadata", "dictionary", id="metadata-list"),
    B(put("/metadata", {"metadata": "k=v"}), "metadata", "dictionary", id="metadata-str"),
    B(post("/metadata", {"metadata": {"": "v"}}), "metadata", "1 to 255", id="key-empty"),
    B(post("/metadata", {"metadata": {"k" * 256: "v"}}), "metadata", "has 256", id="key-256"),
    B(post("/metadata", {"metadata": {"k": "v" * 256}}), "metadata.k", "255", id="value-256"),
    B(post("/metadata", {"metadata": {}, "x": 1}), "x", "not permitted", id="unknown-attribute"),
    B(post("/metadata", {}), "metadata", "required", id="no-metadata"),
    B(put("", {"server": {"name": ""}}), "server.name", "at least 1", id="name-empty"),
    B(put("", {"server": {"name": 5}}), "server.name", "string", id="name-int"),
    B(put("", {"server": {"name": None}}), "server.name", "string", id="name-null"),
    B(put("", {"server": {"name": " web"}}), "server.name", "whitespace", id="name-space"),
    B(put("", {"server": {"name": "x" * 256}}), "server.name", "255", id="name-256"),
    B(put("", {"server": {"accessIPv4": "10.1.1.1"}}), "accessIPv4", "", id="accessIPv4"),
    B(put("", {"name": "web"}), "server", "", id="no-server-wrapper"),
]


@pytest.mark.parametrize(("request_", "field", "reason"), BAD_BODIES)
def test_a_bad_body_is_400_naming_the_field_and_changes_nothing(
    idle: tuple[NovaClient, str], request_: tuple[str, str, Any], field: str, reason: str
) -> None:
    client, server_id = idle
    method, path, body = request_
    response = client.http.request(method, f"/v2.1/servers/{server_id}{path}", json=body)
    message = refused(response, 400, field)
    assert reason in message
    assert client.show(server_id)["name"] == "idle"
    assert client.metadata(server_id) == {"role": "web"}


def test_more_than_128_items_is_403_on_create_and_after(nova: NovaClient) -> None:
    items = {f"key-{i}": "v" for i in range(128)}
    refused(nova.create(metadata={**items, "one-more": "v"}), 403, "metadata_items", "128")
    assert nova.servers() == []

    server_id = nova.create_ok(metadata=items)  # 128 is allowed
    for response in (
        nova.http.post(url(server_id), json={"metadata": {"one-more": "v"}}),
        nova.http.put(url(server_id, "one-more"), json={"meta": {"one-more": "v"}}),
        nova.http.put(url(server_id), json={"metadata": {**items, "one-more": "v"}}),
    ):
        refused(response, 403, "Quota exceeded for metadata_items", "129")
    assert nova.metadata(server_id) == items

    # Changing a key the server has adds no item.
    overwrite = nova.http.put(url(server_id, "key-0"), json={"meta": {"key-0": "new"}})
    assert overwrite.status_code == 200, overwrite.text
    assert nova.metadata(server_id) == {**items, "key-0": "new"}
    nova.delete_and_wait(server_id)


def test_another_projects_server_or_an_unknown_one_is_404(
    nova: NovaClient, stack: Stack, server: str
) -> None:
    other = NovaClient(stack.api_url, user="bob", project="p-metadata-someone-else")
    unknown = "00000000-0000-4000-8000-000000000000"
    for client, server_id in ((other, server), (nova, unknown)):
        for method, path, body in (
            ("GET", url(server_id), None),
            ("POST", url(server_id), {"metadata": {"k": "v"}}),
            ("PUT", url(server_id), {"metadata": {"k": "v"}}),
            ("GET", url(server_id, "role"), None),
            ("PUT", url(server_id, "role"), {"meta": {"role": "x"}}),
            ("DELETE", url(server_id, "role"), None),
            ("PUT", f"/v2.1/servers/{server_id}", {"server": {"name": "stolen"}}),
        ):
            response = client.http.request(method, path, json=body)
            refused(response, 404, f"Instance {server_id} could not be found")
    other.close()
    assert nova.show(server)["name"] == "web-1"
    assert nova.metadata(server) == {"role": "web"}


def test_a_server_being_deleted_refuses_changes_with_409_then_is_404(
    nova: NovaClient, stack: Stack, server: str
) -> None:
    host = nova.show(server)["OS-EXT-SRV-ATTR:host"]
    set_fault(stack.host_state_dir(host), "undefine", "hold")
    nova.delete(server)
    wait_until(lambda: is_holding(stack.host_state_dir(host), "undefine"), "the undefine to start")

    def conflict(response: httpx.Response, action: str) -> None:
        refused(response, 409, f"Cannot '{action}' instance {server}", "task_state deleting")

    conflict(nova.http.post(url(server), json={"metadata": {"k": "v"}}), "update metadata")
    conflict(nova.http.put(url(server), json={"metadata": {}}), "update metadata")
    conflict(nova.http.put(url(server, "k"), json={"meta": {"k": "v"}}), "update metadata")
    conflict(nova.http.delete(url(server, "role")), "delete metadata")
    conflict(nova.rename(server, "too-late"), "update")
    # Reading is still fine, and nothing changed.
    assert nova.metadata(server) == {"role": "web"}
    assert nova.show(server)["name"] == "web-1"

    clear_faults(stack.host_state_dir(host))
    nova.wait_status(server, "GONE")
    refused(nova.http.get(url(server)), 404, "could not be found")
    refused(nova.http.post(url(server), json={"metadata": {"k": "v"}}), 404, "could not be found")
    refused(nova.rename(server, "too-late"), 404, "could not be found")


def test_concurrent_posts_of_distinct_keys_all_survive(nova: NovaClient, server: str) -> None:
    writers = 20

    def add_key(index: int) -> int:
        body = {"metadata": {f"key-{index}": str(index)}}
        return nova.http.post(url(server), json=body).status_code

    with ThreadPoolExecutor(writers) as pool:
        statuses = list(pool.map(add_key, range(writers)))
    assert statuses == [200] * writers
    expected = {"role": "web", **{f"key-{i}": str(i) for i in range(writers)}}
    assert nova.metadata(server) == expected
    assert nova.show(server)["metadata"] == expected
