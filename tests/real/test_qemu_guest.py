"""Create and delete with a real guest: HTTP API -> Temporal -> compute worker -> libvirtd ->
QEMU (TCG). The guest must really boot (its /init prints a marker on the serial console, which
os-getConsoleOutput shows too), and after the delete no domain, QEMU process, disk, console
log, claim, port or quota is left."""

from __future__ import annotations

import time

import pytest

from novaflow.virt.domain_xml import domain_name
from tests.integration.client import NovaClient, wait_until
from tests.integration.leaks import leaks
from tests.real.hypervisor import Hypervisor, qemu_processes
from workers.devstack import RealHost, Stack

# The first run on a fresh machine installs libvirt and QEMU and fetches a kernel package.
pytestmark = pytest.mark.timeout(900)


def test_a_server_boots_a_real_guest_and_delete_leaves_nothing(
    nova: NovaClient,
    real_stack: Stack,
    real_host: RealHost,
    hypervisor: Hypervisor,
    guest_image: str,
) -> None:
    started = time.monotonic()
    server_id = nova.create_ok(name="real-1", image=guest_image)
    server = nova.wait_status(server_id, "ACTIVE", timeout=120)
    active_after = time.monotonic() - started
    assert server["OS-EXT-SRV-ATTR:host"] == real_host.name
    assert server["OS-EXT-STS:power_state"] == 1

    # It booted: the guest's own /init wrote the marker to its serial console.
    host_state = real_stack.host_state_dir(real_host.name)
    console = host_state / "console" / f"{server_id}.log"

    def booted() -> bool:
        return console.exists() and hypervisor.marker in console.read_text(errors="replace")

    wait_until(booted, f"{hypervisor.marker} in {console}", timeout=90)
    booted_after = time.monotonic() - started
    assert "NOVAFLOW-INSMOD-FAILED" not in console.read_text(errors="replace")
    assert len(qemu_processes(server_id)) == 1
    assert domain_name(server_id) in hypervisor.virsh("list", "--name")
    # The daemon keeps its domains itself: nothing is mirrored under the host's state dir.
    assert not (host_state / "domains").exists()

    # The same log through the API (os-getConsoleOutput, read on the host), whole and its end.
    last_two = nova.console_output(server_id, length=2)
    output = nova.console_output(server_id)  # the log only grows: it holds those two lines
    assert hypervisor.marker in output and "\r" not in output
    assert 0 < len(last_two.splitlines()) <= 2 and last_two in output

    diagnostics = nova.admin.get(  # (Nova's standard format, from microversion 2.48)
        f"/v2.1/servers/{server_id}/diagnostics", headers={"OpenStack-API-Version": "compute 2.48"}
    )
    assert diagnostics.status_code == 200, diagnostics.text
    diag = diagnostics.json()
    [address] = server["addresses"]["private"]
    assert diag["state"] == "running" and diag["num_cpus"] == 1
    assert diag["memory_details"]["maximum"] == 512
    assert diag["cpu_details"][0]["time"] > 0  # QEMU really ran it
    assert [n["mac_address"] for n in diag["nic_details"]] == [address["OS-EXT-IPS-MAC:mac_addr"]]

    nova.delete_and_wait(server_id, timeout=60)
    assert domain_name(server_id) not in hypervisor.virsh("list", "--all", "--name")
    assert qemu_processes(server_id) == []
    assert f"{server_id}.qcow2" not in hypervisor.virsh("vol-list", hypervisor.pool)
    assert not console.exists()
    assert leaks(real_stack, [server_id]) == {}
    assert nova.usage() == {"instances": 0, "cores": 0, "ram": 0, "ports": 0, "floating_ips": 0}
    print(
        f"\nreal guest: ACTIVE after {active_after:.1f}s, booted after {booted_after:.1f}s, "
        f"gone after {time.monotonic() - started:.1f}s"
    )


def test_stop_start_and_reboot_a_real_guest(
    nova: NovaClient, real_stack: Stack, hypervisor: Hypervisor, guest_image: str
) -> None:
    """Each boot appends the guest's marker to its console log (append='on'), so the count of
    markers tells the boots apart; the power state is what libvirt reads."""
    server_id = nova.create_ok(name="real-power", image=guest_image)
    nova.wait_status(server_id, "ACTIVE", timeout=120)
    console = real_stack.host_state_dir(real_stack.hosts[0].name) / "console" / f"{server_id}.log"

    def boots() -> int:
        return (
            console.read_text(errors="replace").count(hypervisor.marker) if console.exists() else 0
        )

    def booted(count: int) -> None:
        wait_until(lambda: boots() >= count, f"boot {count} of {server_id}", timeout=90)

    def act(body: dict[str, object], status: str) -> dict[str, object]:
        response = nova.server_action(server_id, body)
        assert response.status_code == 202, response.text

        def settled() -> dict[str, object] | None:
            shown = nova.show(server_id)
            return (
                shown if shown["status"] == status and not shown["OS-EXT-STS:task_state"] else None
            )

        return wait_until(settled, f"{body} -> {status}", timeout=90)

    booted(1)
    stopped = act({"os-stop": None}, "SHUTOFF")
    assert stopped["OS-EXT-STS:power_state"] == 4
    assert hypervisor.virsh("domstate", domain_name(server_id)) == ["shut", "off"]
    assert qemu_processes(server_id) == []

    started = act({"os-start": None}, "ACTIVE")
    assert started["OS-EXT-STS:power_state"] == 1
    booted(2)
    assert len(qemu_processes(server_id)) == 1

    # A soft reboot: the guest ignores ACPI, so the power is cut after the shutdown timeout.
    act({"reboot": {"type": "SOFT"}}, "ACTIVE")
    booted(3)
    assert hypervisor.virsh("domstate", domain_name(server_id)) == ["running"]

    nova.delete_and_wait(server_id, timeout=60)
    assert qemu_processes(server_id) == []
    assert leaks(real_stack, [server_id]) == {}
