"""Listing servers as Nova does: filters, paging with limit/marker, project isolation."""

from __future__ import annotations

from tests.integration.client import NovaClient
from workers.devstack import Stack


def test_filters_paging_and_isolation(nova: NovaClient, stack: Stack) -> None:
    ids = [nova.create_ok(name=f"web-{i}") for i in range(3)]
    other = NovaClient(stack.api_url, user="eve", project=nova.project + "-other")
    try:
        theirs = other.create_ok(name="web-theirs")
        for server_id in ids:
            nova.wait_status(server_id, "ACTIVE")

        def names(client: NovaClient, query: str, admin: bool = False) -> list[str]:
            http = client.admin if admin else client.http
            response = http.get(f"/v2.1/servers?{query}")
            assert response.status_code == 200, response.text
            return [s["name"] for s in response.json()["servers"]]

        assert names(nova, "") == ["web-2", "web-1", "web-0"]  # newest first
        first_page = nova.http.get("/v2.1/servers?limit=2").json()["servers"]
        assert [s["name"] for s in first_page] == ["web-2", "web-1"]
        assert names(nova, f"limit=2&marker={first_page[-1]['id']}") == ["web-0"]
        assert names(nova, "name=web-1") == ["web-1"]
        assert names(nova, "status=ACTIVE") == ["web-2", "web-1", "web-0"]
        assert names(nova, "status=ERROR") == []
        # Another project's server is invisible, even by id, and all_tenants is admin-only.
        assert nova.http.get(f"/v2.1/servers/{theirs}").status_code == 404
        assert "web-theirs" not in names(nova, "all_tenants=1")
        assert "web-theirs" in names(nova, "all_tenants=1", admin=True)
        # host is an admin's filter: a non-admin's is ignored (it would tell which hosts exist).
        host = nova.show(ids[0])["OS-EXT-SRV-ATTR:host"]
        on_host = {
            s["id"] for s in nova.servers() if nova.show(s["id"])["OS-EXT-SRV-ATTR:host"] == host
        }
        assert names(nova, "host=no-such-host") == ["web-2", "web-1", "web-0"]
        assert names(nova, "host=no-such-host", admin=True) == []
        admin_view = nova.admin.get(f"/v2.1/servers?host={host}").json()["servers"]
        assert {s["id"] for s in admin_view} == on_host

        bad = nova.http.get("/v2.1/servers?marker=nope")
        assert bad.status_code == 400 and "marker" in bad.json()["badRequest"]["message"]
        bad = nova.http.get("/v2.1/servers?limit=-1")
        assert bad.status_code == 400 and "limit" in bad.json()["badRequest"]["message"]
    finally:
        for server_id in ids:
            nova.delete(server_id)
        other.delete_and_wait(theirs)
        for server_id in ids:
            nova.wait_status(server_id, "GONE")
        other.close()


def test_availability_zones_list_the_hosts_zones(nova: NovaClient) -> None:
    zones = nova.http.get("/v2.1/os-availability-zone").json()["availabilityZoneInfo"]
    assert {z["zoneName"]: z["zoneState"]["available"] for z in zones} == {
        "nova": True,
        "az-2": True,
    }
    detail = nova.admin.get("/v2.1/os-availability-zone/detail").json()["availabilityZoneInfo"]
    hosts = {z["zoneName"]: sorted(z["hosts"]) for z in detail}
    assert hosts == {"nova": ["host-a", "host-b"], "az-2": ["host-c"]}
    assert nova.http.get("/v2.1/os-availability-zone/detail").status_code == 403
