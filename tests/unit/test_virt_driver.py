"""LibvirtHost (and TestDriverHost, which remembers what the test driver forgets) against the
real libvirt test driver (a node file per test, in tmp_path)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest

from hypervisor.faults import FaultInjector, clear_faults, set_fault
from hypervisor.libvirt_host import (
    GIB,
    DomainDefinitionError,
    DomainNotFoundError,
    HostFailure,
    HypervisorError,
    LibvirtHost,
)
from hypervisor.test_driver import TestDriverHost
from novaflow.resources import Resources
from novaflow.virt.domain_xml import DomainSpec, NicSpec, build_domain_xml, domain_name
from novaflow.virt.host_xml import build_host_xml

RUNNING = libvirt.VIR_DOMAIN_RUNNING
SHUTOFF = libvirt.VIR_DOMAIN_SHUTOFF


@pytest.fixture
def uri(tmp_path: Path) -> str:
    path = tmp_path / "host.xml"
    path.write_text(
        build_host_xml(cpus=8, memory_mb=16384, disk_gb=500, images_dir=str(tmp_path / "images"))
    )
    return f"test://{path}"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def host(uri: str, state_dir: Path) -> Iterator[LibvirtHost]:
    host = TestDriverHost(uri, state_dir, faults=FaultInjector(state_dir))
    host.connect()
    yield host
    host.close()


def domain_xml(host: LibvirtHost, server_id: str | None = None, disk_gb: int = 10) -> str:
    server_id = server_id or str(uuid.uuid4())
    disk = host.prepare_disk(server_id, disk_gb, "img-1")
    spec = DomainSpec(
        uuid=server_id,
        name=domain_name(server_id),
        display_name="vm",
        resources=Resources(1, 64, disk_gb),
        disk_path=disk,
        nics=(NicSpec(mac="fa:16:3e:00:00:01", network="default", port_id="p1"),),
    )
    return build_domain_xml(spec)


def new_server(host: LibvirtHost, *, start: bool = True) -> str:
    server_id = str(uuid.uuid4())
    host.define(domain_xml(host, server_id))
    if start:
        host.start(server_id)
    return server_id


def run_in_thread(target: Callable[[], None]) -> tuple[threading.Thread, dict[str, object]]:
    outcome: dict[str, object] = {}

    def runner() -> None:
        try:
            target()
            outcome["ok"] = True
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=runner, daemon=True)
    thread.start()
    return thread, outcome


# -- host and disks ----------------------------------------------------------------------------


def test_node_info(host: LibvirtHost) -> None:
    info = host.node_info()
    assert info.arch == "x86_64"
    assert info.vcpus == 8
    assert info.memory_mb == 16384
    assert info.disk_gb == 500  # from the node file: the test driver itself says 100
    assert info.hostname


def test_node_info_without_pool(tmp_path: Path) -> None:
    path = tmp_path / "bare.xml"
    path.write_text(
        "<node><cpu><mhz>2000</mhz><model>x86_64</model><active>2</active><nodes>1</nodes>"
        "<sockets>1</sockets><cores>2</cores><threads>1</threads></cpu>"
        "<memory>2097152</memory></node>"
    )
    with LibvirtHost(f"test://{path}") as bare:
        info = bare.node_info()
    assert (info.vcpus, info.memory_mb, info.disk_gb) == (2, 2048, 0)


def test_prepare_disk_is_idempotent(host: LibvirtHost, tmp_path: Path) -> None:
    server_id = str(uuid.uuid4())
    path = host.prepare_disk(server_id, 20, "img-1")
    assert path == str(tmp_path / "images" / f"{server_id}.qcow2")
    assert host.prepare_disk(server_id, 20, "img-1") == path
    host.delete_disk(server_id)
    host.delete_disk(server_id)  # missing = done
    assert host.prepare_disk(server_id, 20, "img-1") == path


def test_disks_are_thin_so_the_fixed_test_pool_does_not_fill(host: LibvirtHost) -> None:
    for _ in range(3):
        host.prepare_disk(str(uuid.uuid4()), 80, "img-1")  # 240 GiB > the driver's 100 GiB


def test_disks_go_to_the_named_pool(uri: str) -> None:
    # A real host names its own pool (e.g. `--pool novaflow`); one it lacks: try another host.
    with LibvirtHost(uri, pool="novaflow") as elsewhere:
        assert elsewhere.node_info().disk_gb == 0
        with pytest.raises(HostFailure, match="no storage pool 'novaflow'"):
            elsewhere.prepare_disk(str(uuid.uuid4()), 1, "img-1")


def test_prepare_disk_rejects_negative_size(host: LibvirtHost) -> None:
    with pytest.raises(ValueError, match="size_gb"):
        host.prepare_disk(str(uuid.uuid4()), -1, "img-1")


# -- domain lifecycle --------------------------------------------------------------------------


def test_lifecycle_and_idempotency(host: LibvirtHost) -> None:
    server_id = str(uuid.uuid4())
    xml = domain_xml(host, server_id)
    assert host.power_state(server_id) is None

    host.define(xml)
    host.define(xml)  # same uuid again: redefined
    assert host.power_state(server_id) == SHUTOFF
    assert server_id in host.list_domains()

    polls: list[int] = []
    host.start(server_id, on_wait=lambda: polls.append(1))
    host.start(server_id)  # already running: fine
    assert host.power_state(server_id) == RUNNING

    host.stop(server_id)
    host.stop(server_id)
    assert host.power_state(server_id) == SHUTOFF

    host.start(server_id)
    host.undefine(server_id)  # running: destroyed first
    host.undefine(server_id)  # missing = done
    assert host.power_state(server_id) is None
    assert server_id not in host.list_domains()
    host.stop(server_id)  # missing = done


def test_list_domains_ignores_foreign_domains(uri: str) -> None:
    with LibvirtHost(uri) as host:
        foreign = str(uuid.uuid4())
        host.define(
            f"<domain type='test'><name>other</name><uuid>{foreign}</uuid>"
            "<memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>"
        )
        ours = new_server(host)
        assert host.list_domains() == [ours]


def test_start_unknown_domain(host: LibvirtHost) -> None:
    with pytest.raises(DomainNotFoundError):
        host.start(str(uuid.uuid4()))


def test_bad_xml_is_a_definition_error(host: LibvirtHost) -> None:
    with pytest.raises(DomainDefinitionError):
        host.define("<domain type='test'><name>x</name></dom>")
    with pytest.raises(DomainDefinitionError):
        host.define("<domain type='test'><memory>1024</memory></domain>")  # no name


def test_uuid_under_another_name_is_a_definition_error(host: LibvirtHost) -> None:
    server_id = new_server(host, start=False)
    clash = domain_xml(host, server_id).replace(domain_name(server_id), "someone-else")
    with pytest.raises(DomainDefinitionError):
        host.define(clash)


def test_lost_connection_is_reopened(host: LibvirtHost) -> None:
    server_id = new_server(host)
    host._conn.close()  # type: ignore[union-attr]  # the daemon went away, say
    # The next call notices, reconnects, and (test driver + state_dir) replays the state.
    assert host.power_state(server_id) == RUNNING


def test_unreachable_uri_is_a_hypervisor_error(tmp_path: Path) -> None:
    host = LibvirtHost(f"test://{tmp_path}/missing.xml")
    with pytest.raises(HypervisorError):
        host.connect()


# -- persistence for the test driver -----------------------------------------------------------


def test_restart_restores_domains(uri: str, state_dir: Path) -> None:
    first = TestDriverHost(uri, state_dir)
    first.connect()
    running = new_server(first)
    stopped = new_server(first)
    first.stop(stopped)
    gone = new_server(first)
    first.undefine(gone)
    first.delete_disk(gone)
    disk = first.prepare_disk(running, 10, "img-1")
    first.close()
    domains = state_dir / "domains"
    assert sorted(p.name for p in domains.iterdir()) == sorted(
        [f"{running}.xml", f"{running}.running", f"{stopped}.xml"]
    )

    # A fresh connection to the same node file starts empty...
    plain = LibvirtHost(uri)
    plain.connect()
    assert plain.list_domains() == []
    plain.close()

    # ...but one given the state_dir replays what the first one did.
    second = TestDriverHost(uri, state_dir)
    second.connect()
    try:
        assert second.power_state(running) == RUNNING
        assert second.power_state(stopped) == SHUTOFF
        assert second.power_state(gone) is None
        assert sorted(second.list_domains()) == sorted([running, stopped])
        volumes = second._connection().storagePoolLookupByName("default").listVolumes()
        assert sorted(volumes) == sorted([f"{running}.qcow2", f"{stopped}.qcow2"])
        assert second.prepare_disk(running, 10, "img-1") == disk
    finally:
        second.close()


def test_no_persistence_without_state_dir(uri: str, tmp_path: Path) -> None:
    host = LibvirtHost(uri)
    host.connect()
    new_server(host)
    host.close()
    assert not (tmp_path / "state").exists()


# -- fault injection ---------------------------------------------------------------------------


def test_fault_fail_is_a_host_failure(host: LibvirtHost, state_dir: Path) -> None:
    set_fault(state_dir, "define", "fail", "injected: define failed")
    with pytest.raises(HostFailure, match="injected: define failed"):
        host.define(domain_xml(host))
    clear_faults(state_dir, "define")
    host.define(domain_xml(host))


def test_fault_transient_is_a_hypervisor_error(host: LibvirtHost, state_dir: Path) -> None:
    set_fault(state_dir, "prepare_disk", "transient")
    with pytest.raises(HypervisorError, match="injected"):
        host.prepare_disk(str(uuid.uuid4()), 1, "img-1")
    clear_faults(state_dir)
    host.prepare_disk(str(uuid.uuid4()), 1, "img-1")


def test_fault_hold_blocks_until_cleared(host: LibvirtHost, state_dir: Path) -> None:
    server_id = new_server(host, start=False)
    set_fault(state_dir, "start", "hold")
    waited = threading.Condition()
    polls = 0

    def on_wait() -> None:
        nonlocal polls
        with waited:
            polls += 1
            waited.notify_all()

    thread, outcome = run_in_thread(lambda: host.start(server_id, on_wait=on_wait))
    with waited:
        assert waited.wait_for(lambda: polls >= 2, timeout=2.0), "start never held"
    assert host.power_state(server_id) == SHUTOFF  # still held before doing anything
    assert thread.is_alive()

    clear_faults(state_dir, "start")
    thread.join(timeout=2.0)
    assert not thread.is_alive()
    assert outcome == {"ok": True}
    assert host.power_state(server_id) == RUNNING


def test_fault_hold_then_fail(host: LibvirtHost, state_dir: Path) -> None:
    server_id = new_server(host, start=False)
    set_fault(state_dir, "undefine", "hold")
    held = threading.Event()
    thread, outcome = run_in_thread(lambda: host.undefine(server_id, on_wait=held.set))
    assert held.wait(timeout=2.0)
    set_fault(state_dir, "undefine", "fail", "injected: undefine failed")
    thread.join(timeout=2.0)
    assert isinstance(outcome.get("error"), HostFailure)
    assert host.power_state(server_id) == SHUTOFF


def test_fault_helpers_validate(state_dir: Path) -> None:
    with pytest.raises(ValueError, match="step"):
        set_fault(state_dir, "reboot", "fail")
    with pytest.raises(ValueError, match="mode"):
        set_fault(state_dir, "start", "explode")
    clear_faults(state_dir)  # nothing to clear: fine
    clear_faults(state_dir, "start")


def test_injector_is_inert_without_file(tmp_path: Path) -> None:
    injector = FaultInjector(tmp_path)
    started = time.monotonic()
    injector.check("start")
    assert time.monotonic() - started < 5  # returned at once, no hold


def test_power_actions_are_idempotent_and_report_the_state(host: LibvirtHost) -> None:
    server_id = new_server(host)
    steps = [
        ("pause", libvirt.VIR_DOMAIN_PAUSED),
        ("pause", libvirt.VIR_DOMAIN_PAUSED),
        ("unpause", RUNNING),
        ("unpause", RUNNING),
        ("stop", SHUTOFF),
        ("stop", SHUTOFF),
        ("start", RUNNING),
        ("start", RUNNING),
        ("reboot-soft", RUNNING),
        ("reboot-hard", RUNNING),
        ("suspend", SHUTOFF),
        ("suspend", SHUTOFF),
        ("resume", RUNNING),
        ("suspend", SHUTOFF),
        ("reboot-hard", RUNNING),  # boots afresh: the saved memory image is dropped
    ]
    for action, state in steps:
        assert host.power_action(server_id, action, shutdown_timeout=1) == state, action
    domain = host._connection().lookupByUUIDString(server_id)
    assert domain.hasManagedSaveImage(0) == 0  # the hard reboot dropped the saved image
    host.power_action(server_id, "suspend")
    host.undefine(server_id)  # a saved memory image does not stop the undefine
    assert host.power_state(server_id) is None


def test_a_power_action_on_a_missing_domain_or_an_unknown_action_fails(host: LibvirtHost) -> None:
    with pytest.raises(DomainNotFoundError):
        host.power_action(str(uuid.uuid4()), "stop")
    with pytest.raises(ValueError, match="action"):
        host.power_action(new_server(host), "hibernate")


def test_a_same_host_resize_keeps_the_disk_as_it_was_for_a_revert(host: LibvirtHost) -> None:
    """keep, grow (the resize), restore (the revert): the old size again; keep, grow, drop
    (the confirm): the grown disk stays; each step twice, as a retry would run it."""

    def size_gb(server_id: str) -> int:
        pool = host._connection().storagePoolLookupByName("default")
        return int(pool.storageVolLookupByName(f"{server_id}.qcow2").info()[1] // GIB)

    reverted, confirmed = str(uuid.uuid4()), str(uuid.uuid4())
    for server_id in (reverted, confirmed):
        host.prepare_disk(server_id, 1, "img-1")
        for _ in range(2):
            host.keep_original_disk(server_id)
            host.prepare_disk(server_id, 20, "img-1")
        assert size_gb(server_id) == 20
    for _ in range(2):
        host.restore_original_disk(reverted)
        host.drop_original_disk(confirmed)
    assert host.prepare_disk(reverted, 1, "img-1")
    assert (size_gb(reverted), size_gb(confirmed)) == (1, 20)
    host.restore_original_disk(confirmed)  # nothing kept any more: nothing changes
    assert size_gb(confirmed) == 20


def test_a_deleted_disk_takes_the_copy_kept_for_a_revert_with_it(
    host: LibvirtHost, state_dir: Path
) -> None:
    server_id = str(uuid.uuid4())
    host.prepare_disk(server_id, 1, "img-1")
    host.keep_original_disk(server_id)
    host.delete_disk(server_id)
    assert not list(state_dir.rglob(f"{server_id}*"))
    with pytest.raises(HostFailure, match="no disk"):
        host.keep_original_disk(server_id)
