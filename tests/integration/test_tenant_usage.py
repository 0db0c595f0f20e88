"""os-simple-tenant-usage on the real stack: a project's servers charged from their launch to
their delete (or the period's end), a deleted one included, in Nova's shapes and rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.client import NovaClient, refused
from workers.devstack import Stack

FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


def when(text: str) -> datetime:
    return datetime.strptime(text, FORMAT).replace(tzinfo=UTC)


def param(moment: datetime) -> str:
    return moment.strftime(FORMAT)


def usage_of(client: Any, project: str, start: datetime, end: datetime) -> dict[str, Any]:
    response = client.get(
        f"/v2.1/os-simple-tenant-usage/{project}?start={param(start)}&end={param(end)}"
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["tenant_usage"])


def test_a_projects_usage_counts_deleted_servers(nova: NovaClient, stack: Stack) -> None:
    before = datetime.now(UTC) - timedelta(minutes=1)
    kept = nova.create_ok(name="kept")
    gone = nova.create_ok(name="gone")
    nova.wait_status(kept, "ACTIVE")
    nova.wait_status(gone, "ACTIVE")
    nova.delete_and_wait(gone)
    after = datetime.now(UTC) + timedelta(minutes=1)
    try:
        usage = usage_of(nova.http, nova.project, before, after)
        assert usage["tenant_id"] == nova.project
        # The period ends now at the latest: nothing is charged ahead (Nova's).
        stop = when(usage["stop"])
        assert when(usage["start"]) == before and stop < after
        assert stop <= datetime.now(UTC)
        by_name = {u["name"]: u for u in usage["server_usages"]}
        assert set(by_name) == {"kept", "gone"}

        ended = by_name["gone"]
        assert (ended["instance_id"], ended["state"], ended["flavor"]) == (gone, "terminated",
                                                                           "m1.tiny")  # fmt: skip
        assert (ended["vcpus"], ended["memory_mb"], ended["local_gb"]) == (1, 512, 1)
        lived = when(ended["ended_at"]) - when(ended["started_at"])
        assert ended["hours"] == pytest.approx(lived.total_seconds() / 3600)
        assert ended["uptime"] == int(lived.total_seconds())

        running = by_name["kept"]
        assert (running["state"], running["ended_at"]) == ("active", None)
        assert running["hours"] == pytest.approx(
            (stop - when(running["started_at"])).total_seconds() / 3600
        )
        hours = [u["hours"] for u in usage["server_usages"]]
        assert usage["total_hours"] == pytest.approx(sum(hours))
        assert usage["total_vcpus_usage"] == pytest.approx(sum(hours))  # 1 vCPU each
        assert usage["total_memory_mb_usage"] == pytest.approx(512 * sum(hours))
        assert usage["total_local_gb_usage"] == pytest.approx(sum(hours))

        # A period that ends before the delete charges "gone" only up to its end.
        cut = when(ended["ended_at"]) - (lived / 2)
        part = usage_of(nova.http, nova.project, before, cut)
        halved = {u["name"]: u for u in part["server_usages"]}["gone"]
        charged = cut - when(ended["started_at"])
        assert halved["hours"] == pytest.approx(charged.total_seconds() / 3600)
        # One after the delete no longer lists it; one before any launch has nothing: {}.
        deleted_at = when(ended["ended_at"])
        later = usage_of(nova.http, nova.project, deleted_at + timedelta(seconds=1), after)
        assert [u["name"] for u in later["server_usages"]] == ["kept"]
        assert usage_of(nova.http, nova.project, before - timedelta(days=1), before) == {}

        # Another project's usage is an admin's; the list of all projects too.
        other = NovaClient(stack.api_url, user="eve", project=nova.project + "-other")
        try:
            refused(
                other.http.get(f"/v2.1/os-simple-tenant-usage/{nova.project}"),
                403,
                "Policy doesn't allow os_compute_api:os-simple-tenant-usage:show",
            )
            refused(other.http.get("/v2.1/os-simple-tenant-usage"), 403, "simple-tenant-usage:list")
        finally:
            other.close()
        assert usage_of(nova.admin, nova.project, before, after)["total_hours"] > 0

        period = f"start={param(before)}&end={param(after)}"
        listed = nova.admin.get(f"/v2.1/os-simple-tenant-usage?{period}").json()["tenant_usages"]
        mine = {u["tenant_id"]: u for u in listed}[nova.project]
        assert "server_usages" not in mine
        # The running server's hours go on growing, until now: at least what was seen before.
        assert mine["total_hours"] >= usage["total_hours"]
        detailed = nova.admin.get(f"/v2.1/os-simple-tenant-usage?{period}&detailed=1").json()
        mine = {u["tenant_id"]: u for u in detailed["tenant_usages"]}[nova.project]
        assert {u["name"] for u in mine["server_usages"]} == {"kept", "gone"}
        hours = [u["hours"] for u in mine["server_usages"]]
        assert mine["total_hours"] == pytest.approx(sum(hours))
    finally:
        nova.delete_and_wait(kept)


def test_periods_nova_refuses(nova: NovaClient) -> None:
    url = f"/v2.1/os-simple-tenant-usage/{nova.project}"
    refused(
        nova.http.get(f"{url}?start=2026-11-02T00:00:00&end=2026-11-01T00:00:00"),
        400,
        "The start time cannot occur after the end time.",
    )
    refused(nova.http.get(f"{url}?start=yesterday"), 400, "Datetime is in invalid format")
    refused(nova.http.get(f"{url}?end=2026-11-01T00:00:00Z"), 400, "Datetime is in invalid format")
    # The forms Nova takes: with or without microseconds, a space instead of the T.
    for start in ("2026-11-01T00:00:00", "2026-11-01T00:00:00.5", "2026-11-01 00:00:00.000001"):
        response = nova.http.get(f"{url}?start={start}")
        assert response.status_code == 200, response.text
        assert response.json() == {"tenant_usage": {}}  # nothing ran in this new project
