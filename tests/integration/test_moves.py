"""Resize and cold migration on the real stack (Temporal, worker processes, libvirt's test
driver, the API over HTTP): ResizeServer from its gate to VERIFY_RESIZE, then confirmResize or
revertResize, through the API and as Temporal updates; both hosts claimed while it moves and
nothing left on either once it ends; os-migrations tells each move's story."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import select
from temporalio.client import Client

from api import operations
from hypervisor.faults import clear_faults, is_holding, set_fault
from novaflow.db import Database
from novaflow.models import Claim
from tests.integration.client import NovaClient, refused, wait_until
from tests.integration.leaks import disks_on_hosts, domains_on_hosts, leaks
from workers.devstack import Stack
from workflows.contracts import BeginInput, MoveInput, ResizeDecision, StepContext

TINY, SMALL, MEDIUM = "1", "2", "3"  # 512 MiB / 2 GiB / 4 GiB of RAM; 1 / 20 / 40 GiB of disk


def act(
    nova: NovaClient,
    server_id: str,
    body: dict[str, Any],
    admin: bool = False,
    version: str | None = None,
) -> str:
    response = nova.server_action(server_id, body, admin=admin, version=version)
    assert response.status_code in (202, 204), (body, response.text)
    assert response.content == b""
    return response.headers["x-openstack-request-id"]


def settled(nova: NovaClient, server_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        shown = nova.show(server_id)
        if shown["status"] == "ERROR" and status != "ERROR" and not shown["OS-EXT-STS:task_state"]:
            raise AssertionError(f"{server_id} went to ERROR: {shown.get('fault')}")
        over = shown["status"] == status and shown["OS-EXT-STS:task_state"] is None
        return shown if over else None

    return wait_until(done, f"{server_id} to settle in {status}", timeout=timeout)


def host_of(nova: NovaClient, server_id: str) -> str:
    return str(nova.show(server_id)["OS-EXT-SRV-ATTR:host"])


def claims(stack: Stack, server_id: str) -> dict[str, str]:
    """The server's active claims: claim id -> host."""
    db = Database(str(stack.database_url))
    try:
        with db.read() as session:
            rows = session.exec(
                select(Claim).where(Claim.server_id == server_id).where(Claim.state == "active")
            ).all()
            return {row.id: row.host for row in rows}
    finally:
        db.dispose()


def where_defined(stack: Stack, server_id: str) -> set[str]:
    return {host for host, ids in domains_on_hosts(stack).items() if server_id in ids}


def where_disks(stack: Stack, server_id: str) -> set[str]:
    return {host for host, ids in disks_on_hosts(stack).items() if server_id in ids}


def migrations(nova: NovaClient, **filters: str) -> list[dict[str, Any]]:
    response = nova.admin.get("/v2.1/os-migrations", params=filters)
    assert response.status_code == 200, response.text
    return list(response.json()["migrations"])


def hold(stack: Stack, step: str) -> None:
    for host in stack.hosts:
        set_fault(stack.host_state_dir(host.name), step, "hold")


def release(stack: Stack, step: str) -> None:
    for host in stack.hosts:
        clear_faults(stack.host_state_dir(host.name), step)


def holding(stack: Stack, step: str) -> bool:
    return any(is_holding(stack.host_state_dir(h.name), step) for h in stack.hosts)


# ------------------------------------------------------------ resize, confirm, revert


def test_resize_then_confirm(nova: NovaClient, stack: Stack, server: str) -> None:
    source = host_of(nova, server)
    before = nova.usage()
    request_id = act(nova, server, {"resize": {"flavorRef": SMALL}})

    shown = settled(nova, server, "VERIFY_RESIZE")
    dest = shown["OS-EXT-SRV-ATTR:host"]
    assert dest != source
    assert shown["flavor"]["id"] == SMALL and shown["flavor"]["ram"] == 2048
    assert shown["OS-EXT-STS:power_state"] == 1
    # Both hosts hold the server while it waits: a claim and a domain on each.
    assert sorted(claims(stack, server).values()) == sorted([source, dest])
    assert where_defined(stack, server) == {source, dest}
    # The growth is counted from the start (1536 MiB more), the cores did not change.
    assert nova.usage()["ram"] == before["ram"] + 1536
    assert nova.usage()["cores"] == before["cores"]
    [move] = migrations(nova, instance_uuid=server)
    assert move["status"] == "finished"  # (migration_type is Nova 2.23's: not shown at 2.1)
    assert (move["source_compute"], move["dest_compute"]) == (source, dest)
    assert (move["old_instance_type_id"], move["new_instance_type_id"]) == (1, 2)
    assert nova.action(server, request_id)["action"] == "resize"

    confirm_id = act(nova, server, {"confirmResize": None})
    shown = settled(nova, server, "ACTIVE")
    assert shown["OS-EXT-SRV-ATTR:host"] == dest and shown["flavor"]["id"] == SMALL
    assert list(claims(stack, server).values()) == [dest]
    assert where_defined(stack, server) == {dest} and where_disks(stack, server) == {dest}
    assert nova.usage()["ram"] == before["ram"] + 1536
    assert migrations(nova, instance_uuid=server)[0]["status"] == "confirmed"
    confirmed = nova.action(server, confirm_id)
    assert confirmed["action"] == "confirmResize" and confirmed["message"] is None
    # A second confirm finds nothing waiting.
    refused(nova.server_action(server, {"confirmResize": None}), 409, "confirmResize")


def test_resize_then_revert(nova: NovaClient, stack: Stack, server: str) -> None:
    source = host_of(nova, server)
    before = nova.usage()
    original_claims = claims(stack, server)
    act(nova, server, {"resize": {"flavorRef": MEDIUM}})
    dest = settled(nova, server, "VERIFY_RESIZE")["OS-EXT-SRV-ATTR:host"]
    assert nova.usage()["cores"] == before["cores"] + 1

    revert_id = act(nova, server, {"revertResize": None})
    shown = settled(nova, server, "ACTIVE")
    assert shown["OS-EXT-SRV-ATTR:host"] == source
    assert shown["flavor"]["id"] == TINY and shown["flavor"]["vcpus"] == 1
    assert shown["OS-EXT-STS:power_state"] == 1
    assert claims(stack, server) == original_claims  # the source's own claim, as before
    assert where_defined(stack, server) == {source} and dest not in where_disks(stack, server)
    assert nova.usage() == before
    assert migrations(nova, instance_uuid=server)[0]["status"] == "reverted"
    assert nova.action(server, revert_id)["action"] == "revertResize"


def test_a_stopped_server_moves_stopped(nova: NovaClient, stack: Stack, server: str) -> None:
    act(nova, server, {"os-stop": None})
    settled(nova, server, "SHUTOFF")
    act(nova, server, {"resize": {"flavorRef": SMALL}})
    shown = settled(nova, server, "VERIFY_RESIZE")
    assert shown["OS-EXT-STS:power_state"] == 4  # defined there, not started
    act(nova, server, {"confirmResize": None})
    shown = settled(nova, server, "SHUTOFF")
    assert shown["OS-EXT-STS:power_state"] == 4


# ------------------------------------------------------------ cold migration


def to(host: str) -> dict[str, Any]:
    """A migrate naming its host (Nova 2.56)."""
    return {"migrate": {"host": host}}


def test_cold_migration_is_admin_only_and_never_stays(
    nova: NovaClient, stack: Stack, server: str
) -> None:
    source = host_of(nova, server)
    refused(nova.server_action(server, {"migrate": None}), 403, "migrate")
    refused(nova.server_action(server, to(source), admin=True, version="2.56"), 400, "same")
    refused(
        nova.server_action(server, to("no-such-host"), admin=True, version="2.56"),
        400,
        "no-such-host",
    )
    refused(nova.server_action(server, to(source), admin=True), 400, "host")  # (from 2.56)
    assert migrations(nova, instance_uuid=server) == []

    act(nova, server, {"migrate": None}, admin=True)
    shown = settled(nova, server, "VERIFY_RESIZE")
    dest = shown["OS-EXT-SRV-ATTR:host"]
    assert dest != source and shown["flavor"]["id"] == TINY
    [move] = migrations(nova, instance_uuid=server, migration_type="migration")
    assert move["status"] == "finished"
    assert [m["instance_uuid"] for m in migrations(nova, host=dest)].count(server) == 1
    # The owner confirms a migration as a resize (Nova's policy).
    act(nova, server, {"confirmResize": None})
    assert settled(nova, server, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == dest
    assert where_defined(stack, server) == {dest}


def test_migrate_to_a_named_host(nova: NovaClient, stack: Stack, server: str) -> None:
    source = host_of(nova, server)
    target = next(h.name for h in stack.hosts if h.name != source)
    act(nova, server, to(target), admin=True, version="2.56")
    assert settled(nova, server, "VERIFY_RESIZE")["OS-EXT-SRV-ATTR:host"] == target
    act(nova, server, {"revertResize": None})
    assert settled(nova, server, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == source
    assert where_defined(stack, server) == {source}


def test_os_migrations_is_admin_only_and_filters(nova: NovaClient) -> None:
    refused(nova.http.get("/v2.1/os-migrations"), 403)
    assert migrations(nova, instance_uuid="no-such-server") == []
    response = nova.admin.get("/v2.1/os-migrations", params={"limit": "-1"})
    refused(response, 400, "limit")


# ------------------------------------------------------------ refused, with nothing changed


def test_bad_resizes_are_refused_and_change_nothing(
    nova: NovaClient, stack: Stack, server: str
) -> None:
    before, held = nova.usage(), claims(stack, server)
    refused(nova.server_action(server, {"resize": {}}), 400, "flavorRef")
    refused(nova.server_action(server, {"resize": {"flavorRef": "999"}}), 400, "flavorRef", "999")
    refused(nova.server_action(server, {"resize": {"flavorRef": TINY}}), 400, "flavorRef", "change")
    refused(nova.server_action(server, {"confirmResize": None}), 409, "confirmResize")
    refused(nova.server_action(server, {"revertResize": None}), 409, "revertResize")
    nova.set_quota(ram=before["ram"] + 1000)
    message = refused(nova.server_action(server, {"resize": {"flavorRef": SMALL}}), 403)
    assert "ram" in message
    shown = nova.show(server)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:task_state"] is None
    assert shown["flavor"]["id"] == TINY
    assert nova.usage() == before and claims(stack, server) == held
    assert migrations(nova, instance_uuid=server) == []


def test_a_smaller_disk_is_refused(nova: NovaClient) -> None:
    server_id = nova.create_ok(name="small-disk", flavor=SMALL)
    try:
        nova.wait_status(server_id, "ACTIVE")
        refused(
            nova.server_action(server_id, {"resize": {"flavorRef": TINY}}),
            400,
            "flavorRef",
            "smaller disk",
        )
    finally:
        nova.delete_and_wait(server_id)


# ------------------------------------------------------------ failures and deletes


def test_a_failed_copy_rolls_back(nova: NovaClient, stack: Stack, server: str) -> None:
    source, held, before = host_of(nova, server), claims(stack, server), nova.usage()
    for host in stack.hosts:
        set_fault(stack.host_state_dir(host.name), "receive_disk", "fail", "injected: copy failed")
    try:
        request_id = act(nova, server, {"resize": {"flavorRef": SMALL}})
        shown = settled(nova, server, "ACTIVE")
    finally:
        release(stack, "receive_disk")
    assert shown["OS-EXT-SRV-ATTR:host"] == source and shown["flavor"]["id"] == TINY
    assert shown["OS-EXT-STS:power_state"] == 1  # started again on the source
    assert claims(stack, server) == held and where_defined(stack, server) == {source}
    assert where_disks(stack, server) == {source}
    assert nova.usage() == before
    assert migrations(nova, instance_uuid=server)[0]["status"] == "error"
    action = nova.action(server, request_id)
    assert action["message"] == "Error"
    failed = [e for e in action["events"] if e["result"] == "Error"]
    assert failed, action["events"]


def test_delete_while_waiting_for_a_decision(nova: NovaClient, stack: Stack) -> None:
    server_id = nova.create_ok(name="verify-delete")
    nova.wait_status(server_id, "ACTIVE")
    act(nova, server_id, {"resize": {"flavorRef": SMALL}})
    settled(nova, server_id, "VERIFY_RESIZE")
    nova.delete_and_wait(server_id)
    assert leaks(stack, [server_id]) == {}
    assert migrations(nova, instance_uuid=server_id)[0]["status"] == "confirmed"


def test_delete_in_the_middle_of_the_copy(nova: NovaClient, stack: Stack) -> None:
    server_id = nova.create_ok(name="copy-delete")
    nova.wait_status(server_id, "ACTIVE")
    hold(stack, "receive_disk")
    try:
        act(nova, server_id, {"resize": {"flavorRef": SMALL}})
        wait_until(lambda: holding(stack, "receive_disk"), "the copy to start")
        assert nova.show(server_id)["status"] == "RESIZE"
        # Not waiting for a decision yet: the workflow's validator refuses it.
        refused(nova.server_action(server_id, {"confirmResize": None}), 409)
        nova.delete(server_id)
    finally:
        release(stack, "receive_disk")
    nova.wait_status(server_id, "GONE")
    assert leaks(stack, [server_id]) == {}
    assert migrations(nova, instance_uuid=server_id)[0]["status"] == "error"


# ------------------------------------------------------------ Temporal updates, the window


def test_confirm_as_a_temporal_update_with_no_argument(nova: NovaClient, stack: Stack) -> None:
    """What the Temporal UI and `temporal workflow update execute --name confirm` send: {}."""
    server_id = nova.create_ok(name="ui-confirm")
    try:
        nova.wait_status(server_id, "ACTIVE")
        request_id = act(nova, server_id, {"resize": {"flavorRef": SMALL}})
        settled(nova, server_id, "VERIFY_RESIZE")
        workflow_id = nova.action(server_id, request_id)["workflow_id"]

        async def confirm() -> None:
            client = await Client.connect(
                f"127.0.0.1:{stack.temporal_port}", data_converter=stack.data_converter()
            )
            await client.get_workflow_handle(workflow_id).execute_update("confirm", {})

        asyncio.run(confirm())
        settled(nova, server_id, "ACTIVE")
        [decision] = [a for a in nova.actions(server_id) if a["action"] == "confirmResize"]
        assert decision["user_id"] == "operator"
    finally:
        nova.delete_and_wait(server_id)


def test_the_confirm_window_confirms_by_itself(nova: NovaClient, stack: Stack) -> None:
    """resize_confirm_window: started as the API does, with a window of one second."""
    server_id = nova.create_ok(name="window")
    try:
        nova.wait_status(server_id, "ACTIVE")

        async def resize() -> None:
            client = await Client.connect(
                f"127.0.0.1:{stack.temporal_port}", data_converter=stack.data_converter()
            )
            begin = BeginInput(
                ctx=StepContext(server_id, "req-window-0000", "begin_resize"),
                action="resize",
                project_id=nova.project,
                user_id=nova.user,
                options={"flavor_id": SMALL},
            )
            move = MoveInput(server_id, "resize", confirm_window_seconds=1.0)
            await operations.start_move(client, begin, move, nova.project)

        asyncio.run(resize())
        shown = settled(nova, server_id, "ACTIVE")
        assert shown["flavor"]["id"] == SMALL
        [decision] = [a for a in nova.actions(server_id) if a["action"] == "confirmResize"]
        assert decision["user_id"] == "resize_confirm_window"
        assert migrations(nova, instance_uuid=server_id)[0]["status"] == "confirmed"
    finally:
        nova.delete_and_wait(server_id)


@pytest.mark.parametrize("decision", ["confirm", "revert"])
def test_a_decision_only_while_waiting(nova: NovaClient, stack: Stack, decision: str) -> None:
    """The updates' validators refuse a decision before VERIFY_RESIZE, as the API does."""
    server_id = nova.create_ok(name=f"early-{decision}")
    nova.wait_status(server_id, "ACTIVE")
    hold(stack, "receive_disk")
    try:
        request_id = act(nova, server_id, {"resize": {"flavorRef": SMALL}})
        wait_until(lambda: holding(stack, "receive_disk"), "the copy to start")
        workflow_id = nova.action(server_id, request_id)["workflow_id"]

        async def early() -> str:
            client = await Client.connect(
                f"127.0.0.1:{stack.temporal_port}", data_converter=stack.data_converter()
            )
            try:
                await client.get_workflow_handle(workflow_id).execute_update(
                    decision, ResizeDecision()
                )
            except Exception as error:  # noqa: BLE001  (the rejection's text is checked)
                return str(error.__cause__ or error)
            return "accepted"

        assert "not waiting for a confirm or a revert" in asyncio.run(early())
    finally:
        release(stack, "receive_disk")
    settled(nova, server_id, "VERIFY_RESIZE")
    nova.delete_and_wait(server_id)
    assert leaks(stack, [server_id]) == {}
