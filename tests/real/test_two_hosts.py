"""Resize, cold migration, revert and rebuild between two real hosts: two libvirt daemons in
two network namespaces (scripts/two-hosts.sh), one compute worker each, QEMU guests under TCG.
The guest boots from images served by the image API (a kernel, a ramdisk and a root disk,
Nova's kernel_id/ramdisk_id), fetched into each host's cache. The root disk really travels:
the guest writes a mark on it at its first boot and prints it (and the disk's size) at every
boot, so a boot on the other host shows the copied disk, and a rebuild a fresh one."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import codec
from hypervisor.disk_transfer import DiskSource, fetch_disk, make_token, transfer_keys
from hypervisor.errors import HypervisorError
from hypervisor.faults import BEFORE, around, clear_faults, is_holding, set_fault
from hypervisor.libvirt_host import LibvirtHost
from novaflow import hosts as hosts_table
from novaflow.db import Database
from novaflow.virt.domain_xml import domain_name
from tests.integration.client import NovaClient, wait_until
from tests.integration.leaks import leaks
from tests.real.hypervisor import Hypervisor, TwoHosts, remove_guests_left_by, virsh
from tests.stacks import running_stack
from workers.devstack import RealHost, Stack

pytestmark = pytest.mark.timeout(900)

TINY, SMALL = "1", "2"  # 512 MiB / 2 GiB of RAM; 1 / 20 GiB of disk
SECTORS_PER_GIB = 2 * 1024 * 1024
IMAGES = "/image/v2/images"
BOOT = 150  # seconds for a TCG boot on a busy 2-core machine (measured: 6-11 s idle)


@pytest.fixture(scope="module")
def hosts(two_hosts: TwoHosts) -> tuple[RealHost, RealHost]:
    """Each compute worker runs on its host (in its namespaces), as nova-compute does: it
    reaches its libvirt, its own disks, the other host's worker (the disk copy) and, over the
    bridge, Temporal and the API."""
    return (
        RealHost(
            "real-a",
            uri=two_hosts.uri_a,
            pool=two_hosts.pool,
            nic_mode="user",
            enter=two_hosts.enter("a"),
        ),
        RealHost(
            "real-b",
            uri=two_hosts.uri_b,
            pool=two_hosts.pool,
            nic_mode="user",
            enter=two_hosts.enter("b"),
        ),
    )


@pytest.fixture(scope="module")
def stack(
    hosts: tuple[RealHost, RealHost],
    two_hosts: TwoHosts,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("two-hosts"),
        env={
            # The bridge joins only this machine's namespaces: no network beyond it sees it.
            "NOVAFLOW_ALLOW_NOAUTH_ON_NETWORK": "1",
            # (The scheduler still prefers the emptier host: a resize moves unless the other
            # host is disabled, as one test does.)
            "NOVAFLOW_ALLOW_RESIZE_TO_SAME_HOST": "1",
        },
        hosts=hosts,
        listen_ip=two_hosts.bridge_ip,
    ) as stack:
        try:
            yield stack
        finally:
            for host in hosts:
                remove_guests_left_by(stack, host)


@pytest.fixture
def nova(stack: Stack) -> Iterator[NovaClient]:
    client = NovaClient(stack.api_url, user="alice", project="p-two-hosts")
    yield client
    client.close()


def uploaded(nova: NovaClient, name: str, data: bytes, disk_format: str, **props: str) -> str:
    container = disk_format if disk_format in ("aki", "ari") else "bare"
    response = nova.admin.post(
        IMAGES,
        json={"name": name, "disk_format": disk_format, "container_format": container, **props},
    )
    assert response.status_code == 201, response.text
    image_id = str(response.json()["id"])
    put = nova.admin.put(
        f"{IMAGES}/{image_id}/file",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert put.status_code == 204, put.text
    return image_id


@pytest.fixture(scope="module")
def images(
    stack: Stack, hypervisor: Hypervisor, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    """Two images sharing a kernel and a blank root disk, each with its own ramdisk."""
    nova = NovaClient(stack.api_url, user="admin", project="admin")
    try:
        disk = tmp_path_factory.mktemp("disk") / "root.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
        kernel = uploaded(nova, "vmlinuz", Path(hypervisor.kernel).read_bytes(), "aki")
        made = []
        for number, initrd in ((1, hypervisor.initrd), (2, hypervisor.initrd2)):
            ramdisk = uploaded(nova, f"initrd-{number}", Path(initrd).read_bytes(), "ari")
            made.append(
                uploaded(
                    nova,
                    f"busybox-{number}",
                    disk.read_bytes(),
                    "qcow2",
                    kernel_id=kernel,
                    ramdisk_id=ramdisk,
                )
            )
        return made[0], made[1]
    finally:
        nova.close()


# ------------------------------------------------------------ what the hosts really hold


def console(stack: Stack, host: str, server_id: str) -> str:
    log = stack.host_state_dir(host) / "console" / f"{server_id}.log"
    return log.read_text(errors="replace") if log.exists() else ""


def booted(stack: Stack, host: str, server_id: str, marker: str, times: int) -> str:
    """Wait for the guest's `times`-th boot on `host` (its marker, once per boot, in the
    host's console log); returns the log."""

    def log_with_enough_boots() -> str | None:
        log = console(stack, host, server_id)
        return log if log.count(marker) >= times else None

    return wait_until(
        log_with_enough_boots, f"boot {times} of {server_id} on {host} ({marker})", timeout=BOOT
    )


def root_disk(stack: Stack, host: str, server_id: str, boot: int = 0) -> tuple[str, int]:
    """The mark on the root disk and its size in sectors, as the guest's `boot`-th boot in
    the host's console log printed them (0: its latest so far)."""

    def printed() -> list[tuple[str, str]] | None:
        lines = re.findall(r"NOVAFLOW-ROOT-DISK (\S+) (\d+)", console(stack, host, server_id))
        return lines if lines and len(lines) >= boot else None

    found = wait_until(
        printed, f"the root disk line of boot {boot or 'any'} of {server_id} on {host}", BOOT
    )
    mark, sectors = found[boot - 1]
    return mark, int(sectors)


def on_host(host: RealHost, server_id: str) -> set[str]:
    """What the host's libvirt daemon holds of the server: its domain, its disk."""
    held = set()
    if domain_name(server_id) in virsh(host.uri, "list", "--all", "--name"):
        held.add("domain")
    if f"{server_id}.qcow2" in virsh(host.uri, "vol-list", host.pool):
        held.add("disk")
    return held


def cached_images(host: RealHost) -> list[str]:
    return [v for v in virsh(host.uri, "vol-list", host.pool) if v.startswith("base-")]


def memory_mb(host: RealHost, server_id: str) -> int:
    with LibvirtHost(host.uri, pool=host.pool) as driver:
        info = driver.describe(server_id)
    assert info is not None, f"{server_id} is not on {host.name}"
    return info.memory_mb


def act(nova: NovaClient, server_id: str, body: dict[str, Any], admin: bool = False) -> None:
    # (a cold migration names its host from microversion 2.56)
    response = nova.server_action(server_id, body, admin=admin, version="2.56")
    assert response.status_code in (202, 204), (body, response.text)


def settled(nova: NovaClient, server_id: str, status: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        shown = nova.show(server_id)
        if shown["status"] == "ERROR" and not shown["OS-EXT-STS:task_state"]:
            raise AssertionError(f"{server_id} went to ERROR: {shown.get('fault')}")
        return shown if shown["status"] == status and not shown["OS-EXT-STS:task_state"] else None

    return wait_until(done, f"{server_id} to settle in {status}", timeout=BOOT)


def test_resize_migrate_revert_and_rebuild_between_two_real_hosts(
    nova: NovaClient,
    stack: Stack,
    hosts: tuple[RealHost, RealHost],
    hypervisor: Hypervisor,
    images: tuple[str, str],
) -> None:
    by_name = {host.name: host for host in hosts}
    first_image, second_image = images
    marker = hypervisor.marker
    timings: dict[str, float] = {}
    started = time.monotonic()

    def lap(name: str) -> None:
        nonlocal started
        timings[name] = time.monotonic() - started
        started = time.monotonic()

    server_id = nova.create_ok(name="mover", image=first_image, flavor=TINY)
    shown = settled(nova, server_id, "ACTIVE")
    here = shown["OS-EXT-SRV-ATTR:host"]
    [there] = set(by_name) - {here}
    addresses = shown["addresses"]
    booted(stack, here, server_id, marker, 1)
    mark, sectors = root_disk(stack, here, server_id)
    assert sectors == 1 * SECTORS_PER_GIB
    assert memory_mb(by_name[here], server_id) == 512
    lap("create")

    # Resize: the guest runs on the other host with the new flavor, its disk copied and grown.
    act(nova, server_id, {"resize": {"flavorRef": SMALL}})
    shown = settled(nova, server_id, "VERIFY_RESIZE")
    assert shown["OS-EXT-SRV-ATTR:host"] == there
    assert memory_mb(by_name[there], server_id) == 2048
    booted(stack, there, server_id, marker, 1)
    assert root_disk(stack, there, server_id) == (mark, 20 * SECTORS_PER_GIB)
    assert virsh(by_name[here].uri, "domstate", domain_name(server_id)) == ["shut", "off"]
    lap("resize")

    act(nova, server_id, {"confirmResize": None})
    settled(nova, server_id, "ACTIVE")
    assert on_host(by_name[here], server_id) == set()
    assert console(stack, here, server_id) == ""
    assert on_host(by_name[there], server_id) == {"domain", "disk"}
    lap("confirm")

    # Migrate back, then revert: the guest runs where it was before the migration.
    act(nova, server_id, {"migrate": {"host": here}}, admin=True)
    shown = settled(nova, server_id, "VERIFY_RESIZE")
    assert shown["OS-EXT-SRV-ATTR:host"] == here
    booted(stack, here, server_id, marker, 1)
    assert root_disk(stack, here, server_id) == (mark, 20 * SECTORS_PER_GIB)
    assert memory_mb(by_name[here], server_id) == 2048
    lap("migrate")

    act(nova, server_id, {"revertResize": None})
    shown = settled(nova, server_id, "ACTIVE")
    assert shown["OS-EXT-SRV-ATTR:host"] == there
    assert on_host(by_name[here], server_id) == set()
    booted(stack, there, server_id, marker, 2)  # restarted on its own disk
    assert root_disk(stack, there, server_id) == (mark, 20 * SECTORS_PER_GIB)
    lap("revert")

    # Rebuild with the second image: a fresh disk, the second guest, the same addresses.
    act(nova, server_id, {"rebuild": {"imageRef": second_image}})
    shown = settled(nova, server_id, "ACTIVE")
    assert shown["image"]["id"] == second_image and shown["addresses"] == addresses
    booted(stack, there, server_id, hypervisor.marker2, 1)
    new_mark, sectors = root_disk(stack, there, server_id)
    assert new_mark != mark and sectors == 20 * SECTORS_PER_GIB
    lap("rebuild")

    # (migration_type is Nova 2.23's, not shown at 2.1: the flavors tell a resize apart.)
    moves = nova.admin.get("/v2.1/os-migrations", params={"instance_uuid": server_id}).json()
    told = {
        (m["old_instance_type_id"], m["new_instance_type_id"], m["status"])
        for m in moves["migrations"]
    }
    assert told == {(1, 2, "confirmed"), (2, 2, "reverted")}

    nova.delete_and_wait(server_id, timeout=BOOT)
    for host in hosts:
        assert on_host(host, server_id) == set()
        assert console(stack, host.name, server_id) == ""
    assert leaks(stack, [server_id]) == {}
    assert nova.usage() == {"instances": 0, "cores": 0, "ram": 0, "ports": 0, "floating_ips": 0}
    # No image is in use any more: each host's cache drops them once they are old enough.
    wait_until(
        lambda: not any(cached_images(host) for host in hosts),
        "the hosts' image caches to empty",
        timeout=60,
    )
    lap("delete")
    print("\ntwo real hosts: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


def disk_url(stack: Stack, host: str) -> str | None:
    db = Database(str(stack.database_url))
    try:
        with db.read() as session:
            return hosts_table.disk_transfer_url(session, host)
    finally:
        db.dispose()


def test_a_migration_survives_both_workers_killed_around_its_disk_copy(
    nova: NovaClient,
    stack: Stack,
    hosts: tuple[RealHost, RealHost],
    hypervisor: Hypervisor,
    images: tuple[str, str],
) -> None:
    """The disk copy between the hosts' own workers (hypervisor/disk_transfer.py), crashed:
    the source's worker refuses a running guest's disk; then, while the destination is about to
    copy, both workers are killed (-9) and started again, the source's serving at a new
    address. The copy is made again from there and the migration completes with the disk whole
    (the guest finds the mark it wrote at its first boot); a confirm leaves nothing behind."""
    by_name = {host.name: host for host in hosts}
    server_id = nova.create_ok(name="crashed-copy", image=images[0], flavor=TINY)
    here = settled(nova, server_id, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    [there] = set(by_name) - {here}
    booted(stack, here, server_id, hypervisor.marker, 1)
    mark, _ = root_disk(stack, here, server_id)

    # The disk of a running guest is not served (its copy would be torn), even with a token.
    keys = transfer_keys(codec.load_keys(None, stack.state_dir, create=False))
    served_at = disk_url(stack, here)
    running = DiskSource(here, served_at, make_token(keys, server_id, here))
    with pytest.raises(HypervisorError, match=f"409.*{server_id} is running"):
        fetch_disk(running, server_id, str(stack.state_dir / "stolen.qcow2"))

    dest_state, copy = stack.host_state_dir(there), around("receive_disk_on_host", BEFORE)
    set_fault(dest_state, copy, "hold", scope=server_id)
    try:
        act(nova, server_id, {"migrate": {"host": there}}, admin=True)
        wait_until(
            lambda: is_holding(dest_state, copy, scope=server_id),
            "the destination to start the copy",
            timeout=BOOT,
        )
        stack.kill(f"compute-{here}")
        stack.kill(f"compute-{there}")
        stack.ensure_running()
        assert disk_url(stack, here) not in (None, served_at)  # its new address
    finally:
        clear_faults(dest_state, copy, scope=server_id)

    shown = settled(nova, server_id, "VERIFY_RESIZE")
    assert shown["OS-EXT-SRV-ATTR:host"] == there
    booted(stack, there, server_id, hypervisor.marker, 1)
    assert root_disk(stack, there, server_id) == (mark, 1 * SECTORS_PER_GIB)
    act(nova, server_id, {"confirmResize": None})
    settled(nova, server_id, "ACTIVE")
    assert on_host(by_name[here], server_id) == set()
    assert on_host(by_name[there], server_id) == {"domain", "disk"}

    nova.delete_and_wait(server_id, timeout=BOOT)
    for host in hosts:
        assert on_host(host, server_id) == set()
    assert leaks(stack, [server_id]) == {}


def test_a_resize_on_the_same_host_reverts_to_the_disk_as_it_was(
    nova: NovaClient,
    stack: Stack,
    hosts: tuple[RealHost, RealHost],
    two_hosts: TwoHosts,
    hypervisor: Hypervisor,
    images: tuple[str, str],
) -> None:
    """allow_resize_to_same_host, the other host disabled: the resize grows the disk where it
    is, a copy of it as it was kept beside it (Nova's `<instance>_resize`); the revert gives
    the guest that disk back (its old size, the mark it wrote) and keeps no copy; a second
    resize, confirmed, keeps none either."""
    by_name = {host.name: host for host in hosts}
    pool_dirs = {hosts[0].name: Path(two_hosts.dir_a), hosts[1].name: Path(two_hosts.dir_b)}
    server_id = nova.create_ok(name="stays", image=images[0], flavor=TINY)
    here = settled(nova, server_id, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    [there] = set(by_name) - {here}
    kept = pool_dirs[here] / f"{server_id}.qcow2.before-resize"
    booted(stack, here, server_id, hypervisor.marker, 1)
    mark, _ = root_disk(stack, here, server_id)

    def services(action: str) -> None:
        body = {"host": there, "binary": "nova-compute"}
        response = nova.admin.put(f"/v2.1/os-services/{action}", json=body)
        assert response.status_code == 200, response.text

    services("disable")
    try:
        act(nova, server_id, {"resize": {"flavorRef": SMALL}})
        assert settled(nova, server_id, "VERIFY_RESIZE")["OS-EXT-SRV-ATTR:host"] == here
        booted(stack, here, server_id, hypervisor.marker, 2)
        assert root_disk(stack, here, server_id, boot=2) == (mark, 20 * SECTORS_PER_GIB)
        assert memory_mb(by_name[here], server_id) == 2048
        assert kept.exists()

        act(nova, server_id, {"revertResize": None})
        settled(nova, server_id, "ACTIVE")
        booted(stack, here, server_id, hypervisor.marker, 3)
        assert root_disk(stack, here, server_id, boot=3) == (mark, 1 * SECTORS_PER_GIB)
        assert memory_mb(by_name[here], server_id) == 512
        assert not kept.exists()

        act(nova, server_id, {"resize": {"flavorRef": SMALL}})
        settled(nova, server_id, "VERIFY_RESIZE")
        assert kept.exists()
        act(nova, server_id, {"confirmResize": None})
        settled(nova, server_id, "ACTIVE")
        assert not kept.exists()
    finally:
        services("enable")

    nova.delete_and_wait(server_id, timeout=BOOT)
    for host in hosts:
        assert on_host(host, server_id) == set()
    assert not list(pool_dirs[here].glob(f"{server_id}*"))
    assert leaks(stack, [server_id]) == {}
