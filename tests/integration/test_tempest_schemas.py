"""What novaflow serves at microversion 2.1 validates against tempest's own copies of Nova's
2.1 response schemas (tempest.lib.api_schema.response.compute.v2_1), checked with tempest's
validator (status code, body, headers): fields Nova's 2.1 does not have are absent, the ones it
requires are there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tempest.lib.api_schema.response.compute.v2_1 import availability_zone as az_schema
from tempest.lib.api_schema.response.compute.v2_1 import flavors as flavors_schema
from tempest.lib.api_schema.response.compute.v2_1 import hypervisors as hypervisors_schema
from tempest.lib.api_schema.response.compute.v2_1 import images as images_schema
from tempest.lib.api_schema.response.compute.v2_1 import interfaces as interfaces_schema
from tempest.lib.api_schema.response.compute.v2_1 import keypairs as keypairs_schema
from tempest.lib.api_schema.response.compute.v2_1 import limits as limits_schema
from tempest.lib.api_schema.response.compute.v2_1 import migrations as migrations_schema
from tempest.lib.api_schema.response.compute.v2_1 import quotas as quotas_schema
from tempest.lib.api_schema.response.compute.v2_1 import server_groups as groups_schema
from tempest.lib.api_schema.response.compute.v2_1 import servers as servers_schema
from tempest.lib.api_schema.response.compute.v2_1 import versions as versions_schema
from tempest.lib.common.rest_client import RestClient

from tests.integration.client import CIRROS, NovaClient, wait_until
from workers.devstack import Stack


class Resp(dict[str, str]):
    """What tempest's validator takes as a response: the headers (lower-case names), and
    `.status`."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__({k.lower(): v for k, v in response.headers.items()})
        self.status = response.status_code


def valid(schema: dict[str, Any], response: httpx.Response) -> dict[str, Any]:
    """The response validates against `schema` (its status code too); returns its body."""
    assert response.status_code < 400, response.text
    body = response.json() if response.content else ""
    RestClient.validate_response(schema, Resp(response), body)
    return body if isinstance(body, dict) else {}


@pytest.fixture(scope="module")
def nova(stack: Stack) -> Iterator[NovaClient]:
    client = NovaClient(stack.api_url, user="alice", project="p-tempest-schemas")
    yield client
    client.close()


@pytest.fixture(scope="module")
def created(nova: NovaClient) -> Iterator[tuple[str, httpx.Response]]:
    """An ACTIVE server and the answer to the POST that created it."""
    response = nova.create(name="tempest-vm")
    assert response.status_code == 202, response.text
    server_id = response.json()["server"]["id"]
    nova.wait_status(server_id, "ACTIVE")
    yield server_id, response
    if nova.status(server_id) != "GONE":
        nova.admin.delete(f"/v2.1/servers/{server_id}")
        nova.wait_status(server_id, "GONE")


@pytest.fixture(scope="module")
def server(created: tuple[str, httpx.Response]) -> str:
    return created[0]


def test_versions(nova: NovaClient) -> None:
    valid(versions_schema.list_versions, nova.http.get("/"))
    valid(versions_schema.get_one_version, nova.http.get("/v2.1"))
    valid(versions_schema.get_one_version, nova.http.get("/v2.1/"))


def test_server_create_list_show(nova: NovaClient, created: tuple[str, httpx.Response]) -> None:
    server_id, answer = created
    valid(servers_schema.create_server_with_admin_pass, answer)
    valid(servers_schema.list_servers, nova.http.get("/v2.1/servers"))
    for client in (nova.http, nova.admin):
        body = valid(servers_schema.list_servers_detail, client.get("/v2.1/servers/detail"))
        assert server_id in [s["id"] for s in body["servers"]]
        valid(servers_schema.get_server, client.get(f"/v2.1/servers/{server_id}"))
    valid(
        servers_schema.update_server,
        nova.http.put(f"/v2.1/servers/{server_id}", json={"server": {"name": "tempest-vm"}}),
    )


def test_server_metadata(nova: NovaClient, server: str) -> None:
    base = f"/v2.1/servers/{server}/metadata"
    valid(servers_schema.set_server_metadata, nova.http.put(base, json={"metadata": {"a": "1"}}))
    valid(
        servers_schema.update_server_metadata, nova.http.post(base, json={"metadata": {"b": "2"}})
    )
    valid(servers_schema.list_server_metadata, nova.http.get(base))
    valid(
        servers_schema.set_show_server_metadata_item,
        nova.http.put(f"{base}/c", json={"meta": {"c": "3"}}),
    )
    valid(servers_schema.set_show_server_metadata_item, nova.http.get(f"{base}/c"))
    valid(servers_schema.delete_server_metadata_item, nova.http.delete(f"{base}/c"))


def test_console_output_and_interfaces(nova: NovaClient, server: str) -> None:
    valid(
        servers_schema.get_console_output,
        nova.server_action(server, {"os-getConsoleOutput": {"length": 5}}),
    )
    valid(interfaces_schema.list_interfaces, nova.http.get(f"/v2.1/servers/{server}/os-interface"))


def test_instance_actions(nova: NovaClient, server: str) -> None:
    for client in (nova.http, nova.admin):
        body = valid(
            servers_schema.list_instance_actions,
            client.get(f"/v2.1/servers/{server}/os-instance-actions"),
        )
        for action in body["instanceActions"]:
            valid(
                servers_schema.show_instance_action,
                client.get(f"/v2.1/servers/{server}/os-instance-actions/{action['request_id']}"),
            )


def test_flavors(nova: NovaClient) -> None:
    valid(flavors_schema.list_flavors, nova.http.get("/v2.1/flavors"))
    valid(flavors_schema.list_flavors_details, nova.http.get("/v2.1/flavors/detail"))
    valid(flavors_schema.create_update_get_flavor_details, nova.http.get("/v2.1/flavors/1"))


def test_images(nova: NovaClient) -> None:
    valid(images_schema.list_images, nova.http.get("/v2.1/images"))
    valid(images_schema.list_images_details, nova.http.get("/v2.1/images/detail"))
    valid(images_schema.get_image, nova.http.get(f"/v2.1/images/{CIRROS}"))


def test_limits_and_quotas(nova: NovaClient, server: str) -> None:
    project = nova.project
    valid(limits_schema.get_limit, nova.http.get("/v2.1/limits"))
    valid(quotas_schema.get_quota_set, nova.http.get(f"/v2.1/os-quota-sets/{project}"))
    valid(
        quotas_schema.get_quota_set_details,
        nova.http.get(f"/v2.1/os-quota-sets/{project}/detail"),
    )
    valid(quotas_schema.get_quota_set, nova.http.get(f"/v2.1/os-quota-sets/{project}/defaults"))
    valid(
        quotas_schema.update_quota_set,
        nova.admin.put(f"/v2.1/os-quota-sets/{project}", json={"quota_set": {"instances": 20}}),
    )


def test_keypairs(nova: NovaClient) -> None:
    created = valid(
        keypairs_schema.create_keypair,
        nova.http.post("/v2.1/os-keypairs", json={"keypair": {"name": "tempest-key"}}),
    )
    assert created["keypair"]["private_key"]
    valid(keypairs_schema.list_keypairs, nova.http.get("/v2.1/os-keypairs"))
    valid(keypairs_schema.get_keypair, nova.http.get("/v2.1/os-keypairs/tempest-key"))
    valid(keypairs_schema.delete_keypair, nova.http.delete("/v2.1/os-keypairs/tempest-key"))


def test_server_groups(nova: NovaClient) -> None:
    body = valid(
        groups_schema.create_show_server_group,
        nova.http.post(
            "/v2.1/os-server-groups",
            json={"server_group": {"name": "tempest-group", "policy": "anti-affinity"}},
        ),
    )
    group_id = body["server_group"]["id"]
    assert body["server_group"]["policies"] == ["anti-affinity"]
    valid(groups_schema.list_server_groups, nova.http.get("/v2.1/os-server-groups"))
    valid(
        groups_schema.create_show_server_group, nova.http.get(f"/v2.1/os-server-groups/{group_id}")
    )
    valid(groups_schema.delete_server_group, nova.http.delete(f"/v2.1/os-server-groups/{group_id}"))


def test_hypervisors(nova: NovaClient) -> None:
    body = valid(hypervisors_schema.list_search_hypervisors, nova.admin.get("/v2.1/os-hypervisors"))
    valid(hypervisors_schema.list_hypervisors_detail, nova.admin.get("/v2.1/os-hypervisors/detail"))
    for row in body["hypervisors"]:
        valid(
            hypervisors_schema.get_hypervisor, nova.admin.get(f"/v2.1/os-hypervisors/{row['id']}")
        )


def test_availability_zones(nova: NovaClient) -> None:
    valid(az_schema.list_availability_zone_list, nova.http.get("/v2.1/os-availability-zone"))
    valid(
        az_schema.list_availability_zone_list_detail,
        nova.admin.get("/v2.1/os-availability-zone/detail"),
    )


def test_migrations(nova: NovaClient) -> None:
    """A server resized and confirmed, so the list has a record to check."""
    server_id = nova.create_ok(name="tempest-resized", image=CIRROS)
    nova.wait_status(server_id, "ACTIVE")
    response = nova.server_action(server_id, {"resize": {"flavorRef": "2"}})
    assert response.status_code == 202, response.text
    nova.wait_status(server_id, "VERIFY_RESIZE")
    body = valid(migrations_schema.list_migrations, nova.admin.get("/v2.1/os-migrations"))
    assert server_id in [m["instance_uuid"] for m in body["migrations"]]
    confirmed = nova.server_action(server_id, {"confirmResize": None})
    assert confirmed.status_code == 204, confirmed.text
    wait_until(lambda: nova.status(server_id) == "ACTIVE", "the resize confirmed")
    valid(migrations_schema.list_migrations, nova.admin.get("/v2.1/os-migrations"))
    nova.delete_and_wait(server_id)


def test_novaflow_extensions_carry_what_nova_21_does_not(nova: NovaClient, server: str) -> None:
    """What the 2.1 bodies leave out is in novaflow's own resources (api/routers/extensions.py)."""
    shown = nova.http.get(f"/v2.1/os-novaflow-servers/{server}").json()["server"]
    assert shown["locked"] is False and shown["locked_reason"] is None
    assert shown["flavor"]["id"] == "1" and shown["flavor"]["ram"] == 512
    listed = nova.http.get("/v2.1/os-novaflow-servers").json()["servers"]
    assert server in [s["id"] for s in listed]

    hypervisors = nova.admin.get("/v2.1/os-novaflow-hypervisors").json()["hypervisors"]
    one = nova.admin.get(f"/v2.1/os-novaflow-hypervisors/{hypervisors[0]['id']}").json()
    assert one["hypervisor"]["id"] == hypervisors[0]["id"]
    assert {"cpu_allocation_ratio", "libvirt_uri", "last_heartbeat"} <= set(one["hypervisor"])
    assert nova.http.get("/v2.1/os-novaflow-hypervisors").status_code == 403

    quota = nova.http.get(f"/v2.1/os-novaflow-quota-sets/{nova.project}/detail").json()
    assert quota["quota_set"]["ports"]["in_use"] >= 1

    [action] = [a for a in nova.actions(server) if a["action"] == "create"]
    assert nova.action(server, action["request_id"])["workflow_id"]
    refused = nova.http.get(f"/v2.1/os-novaflow-servers/{server}/actions/{action['request_id']}")
    assert refused.status_code == 403
