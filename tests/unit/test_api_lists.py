"""Bodies and pages of the API's lists, on the app without a stack: Glance's and Neutron's
`limit=0`, host_status (2.16) in Nova's order, the instance actions' pages (2.58)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.compute import MAX_PAGE
from novaflow.db import Database
from novaflow.models import Host, InstanceAction, Server, ServerTag, utcnow
from tests.dbs import add_server
from tests.unit import apps
from tests.unit.apps import at

ADMIN = "admin:p"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = apps.database_with_hosts(tmp_path, "host-a")
    yield database
    database.dispose()


@pytest.fixture
def api(db: Database, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    return apps.client(db, monkeypatch, (2, 62), ADMIN)


@pytest.mark.parametrize(
    ("path", "key", "link"),
    [("/image/v2/images", "images", "next"), ("/network/v2.0/networks", "networks", None)],
)
def test_limit_0_is_no_limit(api: TestClient, path: str, key: str, link: str | None) -> None:
    """Glance's and Neutron's `limit=0`: the whole list, and no next page (it was a 500)."""
    whole = api.get(path).json()[key]
    assert whole, "the seed has some"
    answer = api.get(f"{path}?limit=0")
    assert answer.status_code == 200, answer.text
    assert answer.json()[key] == whole
    assert (link or f"{key}_links") not in answer.json()


def test_a_page_links_the_next_with_the_same_query(api: TestClient, db: Database) -> None:
    images = api.get("/image/v2/images").json()["images"]
    networks = api.get("/network/v2.0/networks").json()["networks"]
    if len(images) < 2 or len(networks) < 2:
        pytest.skip("the seed has fewer than two images or networks")
    first = api.get("/image/v2/images?limit=1&status=active").json()
    assert first["next"] == f"/v2/images?limit=1&status=active&marker={first['images'][0]['id']}"
    page = api.get("/network/v2.0/networks?limit=1").json()
    [link] = page["networks_links"]
    assert link == {
        "rel": "next",
        "href": "http://127.0.0.1/network/v2.0/networks?limit=1&marker="
        + page["networks"][0]["id"],
    }


def _server_on(db: Database, **host: object) -> str:
    server_id = add_server(db)
    with db.write() as session:
        server = session.get(Server, server_id)
        row = session.get(Host, "host-a")
        assert server is not None and row is not None
        server.host = "host-a"
        for name, value in host.items():
            setattr(row, name, value)
    return server_id


# A heartbeat's age, turned into a time when the test runs (not when it is collected).
HEARD = {"now": timedelta(0), "a day ago": timedelta(days=1), "never": None}


@pytest.mark.parametrize(
    ("host", "heard", "status"),
    [
        # Forced down wins over disabled and over a fresh heartbeat.
        ({"forced_down": True, "enabled": False}, "now", "DOWN"),
        # Disabled wins over a missing heartbeat.
        ({"enabled": False}, "never", "MAINTENANCE"),
        ({}, "now", "UP"),
        # Enabled, not forced down, no heartbeat heard lately: Nova cannot tell.
        ({}, "a day ago", "UNKNOWN"),
    ],
)
def test_host_status_in_novas_order(
    api: TestClient, db: Database, host: dict[str, object], heard: str, status: str
) -> None:
    age = HEARD[heard]
    server_id = _server_on(db, **host, last_heartbeat=None if age is None else utcnow() - age)
    shown = api.get(f"/v2.1/servers/{server_id}", headers=at("2.16")).json()["server"]
    assert shown["host_status"] == status
    [listed] = api.get("/v2.1/servers/detail", headers=at("2.16")).json()["servers"]
    assert listed["host_status"] == status


def _actions(db: Database, server_id: str, count: int) -> None:
    start = utcnow() - timedelta(days=1)
    with db.write() as session:
        for i in range(count):
            session.add(
                InstanceAction(
                    server_id=server_id,
                    request_id=f"req-{uuid.UUID(int=i)}",
                    action="reboot",
                    project_id="p",
                    user_id="u",
                    workflow_id=f"wf-{i}",
                    start_time=start + timedelta(seconds=i),
                )
            )


def test_instance_actions_page_beyond_the_maximum(
    api: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A limit above the maximum is clamped, and the clamped page still links to the next."""
    monkeypatch.setattr("api.routers.instance_actions.MAX_PAGE", 2)
    server_id = add_server(db, "vm")
    _actions(db, server_id, 3)
    url = f"/v2.1/servers/{server_id}/os-instance-actions"
    page = api.get(f"{url}?limit=5", headers=at("2.58")).json()
    assert len(page["instanceActions"]) == 2
    [link] = page["links"]
    assert link["rel"] == "next"
    assert link["href"].endswith(f"limit=5&marker={page['instanceActions'][-1]['request_id']}")
    rest = api.get(link["href"], headers=at("2.58")).json()
    assert len(rest["instanceActions"]) == 1 and "links" not in rest


def test_instance_actions_limit_0_is_an_empty_page(api: TestClient, db: Database) -> None:
    """Nova's actions_get answers `limit=0` with no actions, before looking at the marker."""
    server_id = add_server(db, "vm")
    _actions(db, server_id, 2)
    url = f"/v2.1/servers/{server_id}/os-instance-actions"
    for query in ("limit=0", "limit=0&marker=req-unknown"):
        answer = api.get(f"{url}?{query}", headers=at("2.58"))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"instanceActions": []}
    assert MAX_PAGE == 1000  # Nova's default osapi_max_limit


def _statements(db: Database, api: TestClient, url: str, version: str) -> list[str]:
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert api.get(url, headers=at(version)).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen


def test_detail_reads_tags_images_and_hosts_once_per_page(api: TestClient, db: Database) -> None:
    """/servers/detail reads a page's tags, images and hosts in one query each, however many
    servers the page holds (not one query per server)."""
    ids = [_server_on(db, last_heartbeat=utcnow()) for _ in range(3)]
    with db.write() as session:
        for i, server_id in enumerate(ids):
            session.add(ServerTag(server_id=server_id, tag=f"t{i}"))
    statements = _statements(db, api, "/v2.1/servers/detail", "2.26")
    for table in ("servertag", "image", "host"):
        reads = [s for s in statements if re.search(rf"\bFROM {table}\b", s)]
        assert len(reads) == 1, (table, reads)
    servers = api.get("/v2.1/servers/detail", headers=at("2.26")).json()["servers"]
    assert sorted(s["tags"] for s in servers) == [["t0"], ["t1"], ["t2"]]
    assert {s["host_status"] for s in servers} == {"UP"}
    assert {s["OS-EXT-SRV-ATTR:kernel_id"] for s in servers} == {""}
