"""os-simple-tenant-usage's counting (novaflow/usage.py) and its 2.40 pages, on the app
without a stack (the servers are rows with the launch and delete times a test needs)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from novaflow.db import Database
from novaflow.models import Server, utcnow
from novaflow.usage import hours_in
from tests.dbs import add_server, fresh_database
from tests.unit import apps

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_hours_within_the_period() -> None:
    start, stop = T0, T0 + 10 * HOUR
    assert hours_in(T0 + HOUR, T0 + 3 * HOUR, start, stop) == 2  # wholly inside
    assert hours_in(T0 - HOUR, None, start, stop) == 10  # running all along
    assert hours_in(T0 - HOUR, T0 + HOUR, start, stop) == 1  # deleted in it
    assert hours_in(T0 + 9 * HOUR, T0 + 12 * HOUR, start, stop) == 1  # cut at its end
    assert hours_in(T0 - 2 * HOUR, T0 - HOUR, start, stop) == 0  # gone before it
    assert hours_in(T0 + 11 * HOUR, None, start, stop) == 0  # launched after it
    assert hours_in(None, None, start, stop) == 0  # never launched
    assert hours_in(T0, None, T0 + 2 * HOUR, T0 + HOUR) == 0  # a period ending before it starts


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = fresh_database("sqlite", tmp_path)
    yield database
    database.dispose()


def launched(db: Database, name: str, at: datetime, deleted_at: datetime | None = None) -> str:
    server_id = add_server(db, name)
    with db.write() as session:
        server = session.get(Server, server_id)
        assert server is not None
        server.created_at = server.launched_at = at
        server.terminated_at = deleted_at
        server.deleted = deleted_at is not None
        server.vm_state = "deleted" if deleted_at else "active"
    return server_id


@pytest.fixture
def api(db: Database, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    return apps.client(db, monkeypatch, (2, 40), "admin:p")


def at(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def test_a_period_ends_now_at_the_latest(api: TestClient, db: Database) -> None:
    launched(db, "a", T0)
    before = utcnow()
    body = api.get(
        "/v2.1/os-simple-tenant-usage/p?start=2026-11-01T00:00:00&end=2999-01-01T00:00:00"
    )
    stop = datetime.fromisoformat(body.json()["tenant_usage"]["stop"]).replace(tzinfo=UTC)
    assert before <= stop <= utcnow()  # nothing is charged ahead
    [server] = body.json()["tenant_usage"]["server_usages"]
    assert server["hours"] == pytest.approx((stop - T0) / HOUR)


def test_pages_from_2_40(api: TestClient, db: Database) -> None:
    ids = [launched(db, f"vm-{i}", T0 + i * HOUR, T0 + (i + 2) * HOUR) for i in range(3)]
    period = "start=2026-11-01T00:00:00&end=2026-11-02T00:00:00"
    url = f"/v2.1/os-simple-tenant-usage/p?{period}&limit=2"

    first = api.get(url, headers=at("2.40")).json()
    names = [u["name"] for u in first["tenant_usage"]["server_usages"]]
    assert names == ["vm-0", "vm-1"]
    assert first["tenant_usage"]["total_hours"] == 4  # the page's servers only, as Nova
    [link] = first["tenant_usage_links"]
    assert link["rel"] == "next"
    query = parse_qs(urlsplit(link["href"]).query)
    assert query["marker"] == [ids[1]] and query["limit"] == ["2"]
    assert query["start"] == ["2026-11-01T00:00:00"]  # the same period

    second = api.get(f"{url}&marker={ids[1]}", headers=at("2.40")).json()
    assert [u["name"] for u in second["tenant_usage"]["server_usages"]] == ["vm-2"]
    assert "tenant_usage_links" not in second

    listed = api.get(f"/v2.1/os-simple-tenant-usage?{period}&limit=1", headers=at("2.40")).json()
    assert listed["tenant_usages"][0]["total_hours"] == 2
    assert "marker=" + ids[0] in listed["tenant_usages_links"][0]["href"]
    # Before 2.40 they are ignored, as Nova.
    whole = api.get(url).json()
    assert len(whole["tenant_usage"]["server_usages"]) == 3
    assert "tenant_usage_links" not in whole

    refused = api.get(f"{url}&marker=nope", headers=at("2.40"))
    assert refused.status_code == 400 and "Marker nope could not be found." in refused.text
    refused = api.get(f"/v2.1/os-simple-tenant-usage?{period}&limit=-1", headers=at("2.40"))
    assert refused.status_code == 400 and "limit" in refused.text


def test_another_projects_server_is_no_marker(
    api: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member paging its own usage cannot learn whether another project's server exists: its
    id answers as an unknown marker does (400), not with a page (200)."""
    launched(db, "mine", T0)
    theirs = launched(db, "theirs", T0)
    with db.write() as session:
        server = session.get(Server, theirs)
        assert server is not None
        server.project_id = "q"
    member = apps.client(db, monkeypatch, (2, 40), "member:p")
    period = "start=2026-11-01T00:00:00&end=2026-11-02T00:00:00"
    url = f"/v2.1/os-simple-tenant-usage/p?{period}&limit=1"

    foreign = member.get(f"{url}&marker={theirs}", headers=at("2.40"))
    unknown = member.get(f"{url}&marker=00000000-0000-0000-0000-000000000000", headers=at("2.40"))
    assert (foreign.status_code, unknown.status_code) == (400, 400)
    assert foreign.json()["badRequest"]["message"] == unknown.json()["badRequest"][
        "message"
    ].replace("00000000-0000-0000-0000-000000000000", theirs)
