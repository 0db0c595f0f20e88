"""Rebuild on the real stack: RebuildServer re-creates the disk and the domain on the same host
with the same ports and IPs; a stopped server stays stopped; a bad image is a 400 that changes
nothing; a failure leaves ERROR with a fault, from which a rebuild recovers; a delete during a
rebuild leaves nothing behind."""

from __future__ import annotations

from typing import Any

from hypervisor.faults import clear_faults, is_holding, set_fault
from novaflow.seed import IMAGES
from tests.integration.client import NovaClient, refused, wait_until
from tests.integration.leaks import leaks
from tests.integration.test_moves import act, settled, where_defined, where_disks
from workers.devstack import Stack

CIRROS, DEBIAN = IMAGES[0].id, IMAGES[1].id  # debian-12 needs 2 GiB of disk


def rebuild(nova: NovaClient, server_id: str, **args: Any) -> dict[str, Any]:
    response = nova.server_action(server_id, {"rebuild": args})
    assert response.status_code == 202, response.text
    body = response.json()["server"]
    assert body["id"] == server_id and body["adminPass"]
    return dict(body)


def test_rebuild_with_another_image_keeps_host_ports_and_ips(
    nova: NovaClient, stack: Stack
) -> None:
    server_id = nova.create_ok(name="rebuild-me", flavor="2")
    try:
        before = nova.wait_status(server_id, "ACTIVE")
        answer = rebuild(nova, server_id, imageRef=DEBIAN, name="rebuilt", metadata={"k": "v"})
        assert answer["status"] == "REBUILD" and answer["image"]["id"] == DEBIAN
        after = settled(nova, server_id, "ACTIVE")
        assert after["name"] == "rebuilt" and after["metadata"] == {"k": "v"}
        assert after["image"]["id"] == DEBIAN
        assert after["OS-EXT-SRV-ATTR:host"] == before["OS-EXT-SRV-ATTR:host"]
        assert after["addresses"] == before["addresses"]  # same ports, MACs and IPs
        assert after["OS-EXT-STS:power_state"] == 1
        host = after["OS-EXT-SRV-ATTR:host"]
        assert where_defined(stack, server_id) == {host} == where_disks(stack, server_id)
        [action] = [a for a in nova.actions(server_id) if a["action"] == "rebuild"]
        events = {e["event"] for e in nova.action(server_id, action["request_id"])["events"]}
        assert {f"undefine_domain@{host}", f"delete_disk@{host}", f"prepare_disk@{host}",
                f"define_domain@{host}", f"start_domain@{host}"} <= events  # fmt: skip
    finally:
        nova.delete_and_wait(server_id)


def test_a_stopped_server_is_rebuilt_stopped(nova: NovaClient, server: str) -> None:
    act(nova, server, {"os-stop": None})
    settled(nova, server, "SHUTOFF")
    rebuild(nova, server, imageRef=CIRROS)
    shown = settled(nova, server, "SHUTOFF")
    assert shown["OS-EXT-STS:power_state"] == 4


def test_bad_rebuilds_are_refused_and_change_nothing(nova: NovaClient, server: str) -> None:
    before = nova.show(server)
    refused(nova.server_action(server, {"rebuild": {}}), 400, "imageRef")
    refused(nova.server_action(server, {"rebuild": {"imageRef": "nope"}}), 400, "imageRef", "nope")
    # m1.tiny has 1 GiB of disk; debian-12 needs 2.
    refused(nova.server_action(server, {"rebuild": {"imageRef": DEBIAN}}), 400, "imageRef", "disk")
    act(nova, server, {"lock": None}, admin=True)
    refused(nova.server_action(server, {"rebuild": {"imageRef": CIRROS}}), 409, "locked")
    act(nova, server, {"unlock": None}, admin=True)
    after = nova.show(server)
    assert (after["status"], after["image"], after["name"]) == (
        before["status"],
        before["image"],
        before["name"],
    )


def test_a_failed_rebuild_is_error_and_a_rebuild_recovers(
    nova: NovaClient, stack: Stack, server: str
) -> None:
    for host in stack.hosts:
        set_fault(stack.host_state_dir(host.name), "define", "fail", "injected: define failed")
    try:
        rebuild(nova, server, imageRef=CIRROS)
        shown = settled(nova, server, "ERROR")
    finally:
        for host in stack.hosts:
            clear_faults(stack.host_state_dir(host.name), "define")
    assert "define failed" in shown["fault"]["message"]
    assert rebuild(nova, server, imageRef=CIRROS)["status"] == "REBUILD"  # from ERROR, as Nova
    assert settled(nova, server, "ACTIVE")["OS-EXT-STS:power_state"] == 1


def test_a_delete_during_a_rebuild_leaves_nothing(nova: NovaClient, stack: Stack) -> None:
    server_id = nova.create_ok(name="rebuild-delete")
    nova.wait_status(server_id, "ACTIVE")
    for host in stack.hosts:
        set_fault(stack.host_state_dir(host.name), "define", "hold")
    try:
        rebuild(nova, server_id, imageRef=CIRROS)
        wait_until(
            lambda: any(is_holding(stack.host_state_dir(h.name), "define") for h in stack.hosts),
            "the rebuild to reach define",
        )
        nova.delete(server_id)
    finally:
        for host in stack.hosts:
            clear_faults(stack.host_state_dir(host.name), "define")
    nova.wait_status(server_id, "GONE")
    assert leaks(stack, [server_id]) == {}
