"""Create and delete end to end: HTTP API -> Temporal workflow -> workers -> libvirt."""

from __future__ import annotations

from novaflow.seed import PRIVATE_NETWORK_ID
from tests.integration.client import NovaClient
from tests.integration.leaks import domains_on_hosts, leaks
from workers.devstack import Stack


def test_create_goes_active_with_a_port_an_ip_and_an_audit_trail(
    nova: NovaClient, stack: Stack
) -> None:
    key_name = f"key-{nova.project}"  # keypairs belong to the user, shared by every test
    assert nova.create_keypair(key_name).status_code == 200
    server_id = nova.create_ok(name="web-1", metadata={"role": "web"}, key_name=key_name)
    server = nova.wait_status(server_id, "ACTIVE")

    assert server["OS-EXT-STS:vm_state"] == "active"
    assert server["links"][0]["href"] == f"{stack.api_url}/v2.1/servers/{server_id}"
    assert server["OS-EXT-STS:task_state"] is None
    assert server["OS-EXT-STS:power_state"] == 1
    assert server["metadata"] == {"role": "web"} and server["key_name"] == key_name
    host = server["OS-EXT-SRV-ATTR:host"]
    assert host in {h.name for h in stack.hosts}
    assert server_id in domains_on_hosts(stack)[host]
    [address] = server["addresses"]["private"]
    assert address["addr"].startswith("10.0.") and address["OS-EXT-IPS:type"] == "fixed"

    [interface] = nova.http.get(f"/v2.1/servers/{server_id}/os-interface").json()[
        "interfaceAttachments"
    ]
    assert interface["net_id"] == PRIVATE_NETWORK_ID
    assert interface["mac_addr"] == address["OS-EXT-IPS-MAC:mac_addr"]
    assert interface["fixed_ips"][0]["ip_address"] == address["addr"]

    [action] = nova.actions(server_id)
    assert action["action"] == "create" and action["message"] is None
    events = [e["event"] for e in nova.action(server_id, action["request_id"])["events"]]
    assert events == [
        "reserve_quota",
        "schedule_1",
        "allocate_network",
        f"prepare_disk@{host}",
        f"define_domain@{host}",
        f"start_domain@{host}",
        "finish_create",
    ]

    # A non-admin sees no host attributes.
    assert "OS-EXT-SRV-ATTR:host" not in nova.show(server_id, admin=False)
    assert nova.usage() == {"instances": 1, "cores": 1, "ram": 512, "ports": 1, "floating_ips": 0}

    nova.delete_and_wait(server_id)
    assert server_id not in {s["id"] for s in nova.servers()}
    assert nova.usage() == {"instances": 0, "cores": 0, "ram": 0, "ports": 0, "floating_ips": 0}
    assert leaks(stack, [server_id]) == {}
    assert [a["action"] for a in nova.actions_after_delete(server_id)] == ["delete", "create"]


def test_floating_ip_and_user_port(nova: NovaClient, stack: Stack) -> None:
    port = nova.http.post("/v2.1/ports", json={"port": {"network_id": PRIVATE_NETWORK_ID}})
    assert port.status_code == 201, port.text
    port_id = port.json()["port"]["id"]

    server_id = nova.create_ok(
        networks=[{"port": port_id}, {"uuid": PRIVATE_NETWORK_ID, "floating_ip": True}]
    )
    server = nova.wait_status(server_id, "ACTIVE")
    kinds = sorted(a["OS-EXT-IPS:type"] for a in server["addresses"]["private"])
    assert kinds == ["fixed", "fixed", "floating"]
    assert nova.usage()["floating_ips"] == 1
    assert nova.http.get(f"/v2.1/ports/{port_id}").json()["port"]["device_id"] == server_id

    nova.delete_and_wait(server_id)
    # The user's port survives its server, unbound; the port the create made is gone.
    assert nova.http.get(f"/v2.1/ports/{port_id}").json()["port"]["device_id"] == ""
    assert nova.usage()["floating_ips"] == 0 and nova.usage()["ports"] == 1
    assert leaks(stack, [server_id]) == {}


def test_multi_create_makes_each_server_its_own_operation(nova: NovaClient) -> None:
    response = nova.create(name="batch", min_count=3, max_count=3)
    assert response.status_code == 202, response.text
    servers = nova.servers()
    assert sorted(s["name"] for s in servers) == ["batch-1", "batch-2", "batch-3"]
    for server in servers:
        nova.wait_status(server["id"], "ACTIVE")
    assert nova.usage()["instances"] == 3
    for server in servers:
        nova.delete(server["id"])
    for server in servers:
        nova.wait_status(server["id"], "GONE")
    assert nova.usage()["instances"] == 0


def test_anti_affinity_group_spreads_and_affinity_packs(nova: NovaClient) -> None:
    def group(policy: str) -> str:
        response = nova.http.post(
            "/v2.1/os-server-groups", json={"server_group": {"name": policy, "policy": policy}}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["server_group"]["id"])

    anti, affine = group("anti-affinity"), group("affinity")
    spread = [
        nova.http.post(
            "/v2.1/servers",
            json={**nova.server_body(name=f"anti-{i}"), "os:scheduler_hints": {"group": anti}},
        ).json()["server"]["id"]
        for i in range(3)
    ]
    packed = [
        nova.http.post(
            "/v2.1/servers",
            json={**nova.server_body(name=f"aff-{i}"), "os:scheduler_hints": {"group": affine}},
        ).json()["server"]["id"]
        for i in range(3)
    ]
    spread_hosts = {nova.wait_status(s, "ACTIVE")["OS-EXT-SRV-ATTR:host"] for s in spread}
    packed_hosts = {nova.wait_status(s, "ACTIVE")["OS-EXT-SRV-ATTR:host"] for s in packed}
    assert len(spread_hosts) == 3
    assert len(packed_hosts) == 1
    # A 4th anti-affinity member has nowhere to go: ERROR with Nova's fault.
    fourth = nova.http.post(
        "/v2.1/servers",
        json={**nova.server_body(name="anti-3"), "os:scheduler_hints": {"group": anti}},
    ).json()
    server = nova.wait_status(fourth["server"]["id"], "ERROR")
    assert "No valid host was found" in server["fault"]["message"]
    every = [*spread, *packed, fourth["server"]["id"]]
    for server_id in every:
        nova.delete(server_id)
    for server_id in every:
        nova.wait_status(server_id, "GONE")


def test_availability_zone_and_image_architecture_steer_placement(nova: NovaClient) -> None:
    zoned = nova.create_ok(availability_zone="az-2")
    assert nova.wait_status(zoned, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "host-c"
    arm = nova.create_ok(image="6b7c0e4a-2f44-4b8e-9b1a-0c1f1d9e5a03", flavor="2")
    server = nova.wait_status(arm, "ERROR")
    assert "ImagePropertiesFilter" in server["fault"].get("details", server["fault"]["message"])
    assert nova.usage()["instances"] == 1  # the failed build gave its quota back
    nova.delete_and_wait(zoned)
    nova.delete_and_wait(arm)
