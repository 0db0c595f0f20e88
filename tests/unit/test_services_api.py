"""os-services' microversioned forms (force-down from 2.11, uuid ids from 2.53) and the rules
behind them, on the app without a stack: the API's maximum is raised for these tests only,
since the bodies they check are the ones a client negotiating 2.11 or 2.53 gets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tempest.lib.api_schema.response.compute.v2_11 import services as v2_11
from tempest.lib.api_schema.response.compute.v2_53 import services as v2_53
from tempest.lib.common.rest_client import RestClient

from novaflow import hosts, placement
from novaflow.db import Database
from novaflow.models import Host, Server, utcnow
from tests.dbs import add_server
from tests.unit import apps
from tests.unit.apps import at

ADMIN = "admin:p-admin"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = apps.database_with_hosts(tmp_path, "host-a", "host-b")
    yield database
    database.dispose()


@pytest.fixture
def api(db: Database, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    return apps.client(db, monkeypatch, (2, 53), ADMIN)


class Resp(dict[str, str]):
    def __init__(self, response: Any) -> None:
        super().__init__({k.lower(): v for k, v in response.headers.items()})
        self.status = response.status_code


def valid(schema: dict[str, Any], response: Any) -> dict[str, Any]:
    assert response.status_code < 400, response.text
    RestClient.validate_response(schema, Resp(response), response.json())
    return dict(response.json())


def by_host(api: TestClient, version: str) -> dict[str, dict[str, Any]]:
    body = api.get("/v2.1/os-services", headers=at(version)).json()
    return {s["host"]: s for s in body["services"]}


def test_force_down_from_2_11(api: TestClient, db: Database) -> None:
    listed = valid(v2_11.list_services, api.get("/v2.1/os-services", headers=at("2.11")))
    assert {s["forced_down"] for s in listed["services"]} == {False}
    assert "forced_down" not in by_host(api, "2.1")["host-a"]

    body = {"host": "host-a", "binary": "nova-compute", "forced_down": True}
    answer = api.put("/v2.1/os-services/force-down", json=body, headers=at("2.11"))
    assert valid(v2_11.update_forced_down, answer) == {
        "service": {"host": "host-a", "binary": "nova-compute", "forced_down": True}
    }
    # Down at once (its heartbeat is fresh), for os-services and for the scheduler.
    assert by_host(api, "2.11")["host-a"]["state"] == "down"
    with db.read() as session:
        states = {h.name: h.up for h in placement.host_states(session, utcnow(), timedelta(60))}
    assert states == {"host-a": False, "host-b": True}

    # Before 2.11 there is no such action, and no such field.
    assert api.put("/v2.1/os-services/force-down", json=body).status_code == 404
    body["forced_down"] = "no"  # Nova's boolean words
    assert api.put("/v2.1/os-services/force-down", json=body, headers=at("2.11")).status_code == 200
    assert by_host(api, "2.11")["host-a"]["state"] == "up"
    body["forced_down"] = "maybe"
    refused = api.put("/v2.1/os-services/force-down", json=body, headers=at("2.11"))
    assert refused.status_code == 400 and "forced_down" in refused.text
    del body["forced_down"]
    refused = api.put("/v2.1/os-services/disable", json={**body, "forced_down": True})
    assert refused.status_code == 400 and "forced_down" in refused.text


def test_update_by_uuid_from_2_53(api: TestClient, db: Database) -> None:
    listed = valid(v2_53.list_services, api.get("/v2.1/os-services", headers=at("2.53")))
    uuid = {s["host"]: s["id"] for s in listed["services"]}["host-b"]
    url = f"/v2.1/os-services/{uuid}"

    answer = api.put(
        url, json={"status": "disabled", "disabled_reason": "rack"}, headers=at("2.53")
    )
    service = valid(v2_53.update_service, answer)["service"]
    assert (service["id"], service["status"], service["disabled_reason"]) == (
        uuid,
        "disabled",
        "rack",
    )
    with db.read() as session:
        host = session.get(Host, "host-b")
        assert host is not None and not host.enabled

    answer = api.put(url, json={"status": "enabled", "forced_down": True}, headers=at("2.53"))
    service = valid(v2_53.update_service, answer)["service"]
    assert (service["status"], service["disabled_reason"], service["forced_down"]) == (
        "enabled",
        None,
        True,
    )
    assert service["state"] == "down"

    for body, words in (
        ({}, "No updates were requested"),
        ({"disabled_reason": "x"}, "No updates were requested"),
        ({"status": "enabled", "disabled_reason": "x"}, "with status 'enabled' is invalid"),
        ({"status": "off"}, "status"),
        ({"status": None}, "status"),
        ({"host": "host-b"}, "host"),
    ):
        refused = api.put(url, json=body, headers=at("2.53"))
        assert refused.status_code == 400, (body, refused.text)
        assert words in refused.json()["badRequest"]["message"], refused.text
    refused = api.put("/v2.1/os-services/disable", json={"status": "x"}, headers=at("2.53"))
    assert refused.status_code == 400 and "Invalid uuid disable" in refused.text
    missing = api.put(
        "/v2.1/os-services/00000000-0000-0000-0000-000000000000",
        json={"status": "enabled"},
        headers=at("2.53"),
    )
    assert missing.status_code == 404


def test_delete_by_integer_then_uuid(api: TestClient, db: Database) -> None:
    numbers = {s["host"]: s["id"] for s in by_host(api, "2.1").values()}
    assert sorted(numbers.values()) == [1, 2]  # in the order the hosts first registered
    uuids = {s["host"]: s["id"] for s in by_host(api, "2.53").values()}

    server_id = add_server(db)
    with db.write() as session:
        server = session.get(Server, server_id)
        assert server is not None
        server.host = "host-a"
    refused = api.delete(f"/v2.1/os-services/{numbers['host-a']}")
    assert refused.status_code == 409 and "hosting instances" in refused.text

    assert (
        api.delete(f"/v2.1/os-services/{numbers['host-b']}", headers=at("2.53")).status_code == 400
    )
    assert api.delete(f"/v2.1/os-services/{uuids['host-b']}").status_code == 400  # 2.1: integer
    assert api.delete(f"/v2.1/os-services/{uuids['host-b']}", headers=at("2.53")).status_code == 204
    assert set(by_host(api, "2.1")) == {"host-a"}
    gone = api.delete(f"/v2.1/os-services/{numbers['host-b']}")
    assert gone.status_code == 404 and f"Service {numbers['host-b']} not found." in gone.text
    assert api.delete("/v2.1/os-services/99999999999999999999").status_code == 404

    # A host that registers again gets a new id: ids are never reused.
    with db.write() as session:
        hosts.register_host(
            session,
            "host-b",
            vcpus=4,
            memory_mb=4096,
            disk_gb=40,
            arch="x86_64",
            libvirt_uri="test:///default",
            hypervisor_type="test",
        )
    assert by_host(api, "2.1")["host-b"]["id"] == 3
