"""os-services at 2.1 on the real stack: a nova-compute per hypervisor host, an operator's
disable that the scheduler obeys, and a delete that Nova's rules allow only for an empty host.
(The 2.11 and 2.53 forms: tests/unit/test_services_api.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from novaflow import hosts
from novaflow import services as domain
from novaflow.db import Database
from novaflow.models import Host, utcnow
from tests.integration.client import NovaClient, refused
from workers.devstack import DEFAULT_HOSTS, Stack

FIELDS_2_1 = {"id", "binary", "disabled_reason", "host", "state", "status", "updated_at", "zone"}


def services(nova: NovaClient, query: str = "") -> dict[str, dict[str, Any]]:
    response = nova.admin.get(f"/v2.1/os-services{query}")
    assert response.status_code == 200, response.text
    return {s["host"]: s for s in response.json()["services"]}


def put(nova: NovaClient, action: str, **body: Any) -> Any:
    return nova.admin.put(f"/v2.1/os-services/{action}", json=body)


@pytest.fixture
def retired(stack: Stack) -> Iterator[str]:
    """A host whose compute worker is gone: its row is there, its heartbeat long stale."""
    db = Database(str(stack.database_url))
    with db.write() as session:
        hosts.register_host(
            session,
            "host-retired",
            vcpus=2,
            memory_mb=2048,
            disk_gb=20,
            arch="x86_64",
            libvirt_uri="test:///default",
            hypervisor_type="test",
        )
        host = session.get(Host, "host-retired")
        assert host is not None
        host.last_heartbeat = utcnow() - timedelta(days=1)
    yield "host-retired"
    with db.write() as session:  # the test deletes it; this is for a test that failed before
        host = session.get(Host, "host-retired")
        if host is not None:
            domain.delete(session, host)
    db.dispose()


def test_a_compute_service_per_host(nova: NovaClient) -> None:
    listed = services(nova)
    assert {h.name for h in DEFAULT_HOSTS} <= set(listed)
    for host in DEFAULT_HOSTS:
        service = listed[host.name]
        assert set(service) == FIELDS_2_1  # no forced_down before 2.11
        assert isinstance(service["id"], int)
        assert service["binary"] == "nova-compute"
        assert (service["state"], service["status"]) == ("up", "enabled")
        assert service["zone"] == host.availability_zone
        assert service["disabled_reason"] is None
    # Filters, as Nova's: by host, by binary; novaflow runs no other binary.
    assert set(services(nova, "?host=host-b")) == {"host-b"}
    assert set(services(nova, "?binary=nova-compute&host=host-c")) == {"host-c"}
    assert services(nova, "?binary=nova-conductor") == {}
    assert services(nova, "?host=no-such-host") == {}
    # An admin's, as in Nova.
    refused(
        nova.http.get("/v2.1/os-services"),
        403,
        "Policy doesn't allow os_compute_api:os-services:list to be performed.",
    )


def test_a_disabled_host_gets_no_new_server(nova: NovaClient) -> None:
    others = [h.name for h in DEFAULT_HOSTS if h.name != "host-b"]
    try:
        answer = put(nova, "disable-log-reason", host="host-a", binary="nova-compute",
                     disabled_reason="maintenance")  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "service": {
                "host": "host-a",
                "binary": "nova-compute",
                "status": "disabled",
                "disabled_reason": "maintenance",
            }
        }
        answer = put(nova, "disable", host="host-c", binary="nova-compute")
        assert answer.json() == {
            "service": {"host": "host-c", "binary": "nova-compute", "status": "disabled"}
        }
        listed = services(nova)
        assert (listed["host-a"]["status"], listed["host-a"]["disabled_reason"]) == (
            "disabled",
            "maintenance",
        )
        assert listed["host-a"]["state"] == "up"  # disabled is no down: it still runs
        assert nova.hypervisors()["host-c"]["status"] == "disabled"

        created = [nova.create_ok(name=f"only-b-{i}") for i in range(2)]
        for server_id in created:
            shown = nova.wait_status(server_id, "ACTIVE")
            assert shown["OS-EXT-SRV-ATTR:host"] == "host-b"
        for server_id in created:
            nova.delete(server_id)
        for server_id in created:
            nova.wait_status(server_id, "GONE")
    finally:
        for name in others:
            answer = put(nova, "enable", host=name, binary="nova-compute")
            assert answer.json() == {
                "service": {"host": name, "binary": "nova-compute", "status": "enabled"}
            }
    listed = services(nova)
    assert all(listed[name]["status"] == "enabled" for name in others)
    assert listed["host-a"]["disabled_reason"] is None  # enabling forgets the reason


def test_updates_nova_refuses(nova: NovaClient) -> None:
    compute = {"host": "host-a", "binary": "nova-compute"}
    refused(put(nova, "reboot", **compute), 404, "Unknown action")
    refused(put(nova, "force-down", **compute, forced_down=True), 404, "Unknown action")  # 2.11
    refused(put(nova, "disable", **compute, forced_down=True), 400, "forced_down")
    refused(put(nova, "disable-log-reason", **compute), 400, "Missing disabled reason field")
    refused(put(nova, "disable", host="host-a"), 400, "binary")
    refused(put(nova, "disable", **compute, disabled_reason=""), 400, "disabled_reason")
    refused(put(nova, "disable", host="host-a", binary="nova-scheduler"), 400,
            "Updating a nova-scheduler service is not supported")  # fmt: skip
    refused(put(nova, "enable", host="host-z", binary="nova-compute"), 404, "host-z")
    refused(
        nova.http.put("/v2.1/os-services/disable", json=compute),
        403,
        "Policy doesn't allow os_compute_api:os-services:update to be performed.",
    )
    assert services(nova)["host-a"]["status"] == "enabled"  # none of them changed anything


def test_delete_only_an_empty_host(nova: NovaClient, server: str, retired: str) -> None:
    listed = services(nova)
    assert listed[retired]["state"] == "down"
    host = nova.show(server)["OS-EXT-SRV-ATTR:host"]
    refused(
        nova.admin.delete(f"/v2.1/os-services/{listed[host]['id']}"),
        409,
        "Unable to delete compute service that is hosting instances.",
    )
    refused(
        nova.http.delete(f"/v2.1/os-services/{listed[retired]['id']}"),
        403,
        "os_compute_api:os-services:delete",
    )
    refused(nova.admin.delete("/v2.1/os-services/one"), 400, "id must be an integer")

    answer = nova.admin.delete(f"/v2.1/os-services/{listed[retired]['id']}")
    assert answer.status_code == 204 and answer.content == b""
    assert retired not in services(nova)
    assert retired not in nova.hypervisors()
    refused(
        nova.admin.delete(f"/v2.1/os-services/{listed[retired]['id']}"),
        404,
        f"Service {listed[retired]['id']} not found.",
    )
