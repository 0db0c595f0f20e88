"""build_domain_xml / build_host_xml: parse the XML back, and let libvirt's test driver judge it."""

from __future__ import annotations

import dataclasses
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from novaflow.resources import Resources
from novaflow.virt.domain_xml import (
    METADATA_NS,
    DomainSpec,
    NicSpec,
    build_domain_xml,
    domain_name,
)
from novaflow.virt.host_xml import build_host_xml

NS = {"nf": METADATA_NS}
EVIL = '<evil & "x">'


def make_spec(**overrides: object) -> DomainSpec:
    server_id = str(overrides.pop("uuid", uuid.uuid4()))
    vcpus = int(overrides.pop("vcpus", 2))  # type: ignore[call-overload]
    memory_mb = int(overrides.pop("memory_mb", 512))  # type: ignore[call-overload]
    fields: dict[str, object] = {
        "uuid": server_id,
        "name": domain_name(server_id),
        "display_name": "web-1",
        "resources": Resources(vcpus, memory_mb, 10),
        "disk_path": f"/var/lib/libvirt/images/{server_id}.qcow2",
        "nics": (NicSpec(mac="fa:16:3e:00:00:01", network="default", port_id="port-1"),),
        "project_id": "proj-1",
        "flavor_name": "m1.small",
        "image_id": "img-1",
    }
    fields.update(overrides)
    return DomainSpec(**fields)  # type: ignore[arg-type]


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)


@pytest.fixture
def libvirt_quiet() -> None:
    libvirt.registerErrorHandler(lambda *_: None, None)


def test_domain_name_convention() -> None:
    assert domain_name("abc") == "instance-abc"


def test_fields_round_trip() -> None:
    spec = make_spec()
    root = parse(build_domain_xml(spec))
    assert root.tag == "domain"
    assert root.get("type") == "test"
    assert root.findtext("name") == f"instance-{spec.uuid}"
    assert root.findtext("uuid") == spec.uuid
    assert root.findtext("vcpu") == "2"
    memory = root.find("memory")
    assert memory is not None and memory.text == "512" and memory.get("unit") == "MiB"
    os_type = root.find("os/type")
    assert os_type is not None and os_type.text == "hvm" and os_type.get("arch") == "x86_64"

    disk = root.find("devices/disk")
    assert disk is not None and disk.get("device") == "disk"
    assert disk.find("source").get("file") == spec.disk_path  # type: ignore[union-attr]
    assert disk.find("driver").get("type") == "qcow2"  # type: ignore[union-attr]
    target = disk.find("target")
    assert target is not None and target.get("dev") == "vda" and target.get("bus") == "virtio"

    interfaces = root.findall("devices/interface")
    assert len(interfaces) == 1
    assert interfaces[0].get("type") == "network"
    assert interfaces[0].find("mac").get("address") == "fa:16:3e:00:00:01"  # type: ignore[union-attr]
    assert interfaces[0].find("source").get("network") == "default"  # type: ignore[union-attr]
    assert root.find("devices/graphics") is None

    instance = root.find("metadata/nf:instance", NS)
    assert instance is not None
    assert instance.findtext("nf:display_name", namespaces=NS) == "web-1"
    assert instance.find("nf:project", NS).get("id") == "proj-1"  # type: ignore[union-attr]
    assert instance.find("nf:flavor", NS).get("name") == "m1.small"  # type: ignore[union-attr]
    assert instance.find("nf:image", NS).get("id") == "img-1"  # type: ignore[union-attr]
    port = instance.find("nf:ports/nf:port", NS)
    assert port is not None and port.get("id") == "port-1"


def test_user_text_is_escaped() -> None:
    spec = make_spec(display_name=EVIL, flavor_name=EVIL, project_id="p\x00\x07q")
    xml = build_domain_xml(spec)
    assert EVIL not in xml
    assert "&lt;evil &amp;" in xml
    instance = parse(xml).find("metadata/nf:instance", NS)
    assert instance is not None
    assert instance.findtext("nf:display_name", namespaces=NS) == EVIL
    assert instance.find("nf:flavor", NS).get("name") == EVIL  # type: ignore[union-attr]
    # Characters XML cannot carry are dropped rather than breaking the document.
    assert instance.find("nf:project", NS).get("id") == "pq"  # type: ignore[union-attr]


def test_qemu_type_pieces() -> None:
    spec = make_spec(
        domain_type="qemu",
        kernel="/boot/vmlinuz",
        initrd="/boot/initrd.img",
        cmdline="console=ttyS0 root=/dev/vda",
        serial_log="/var/log/novaflow/console.log",
    )
    root = parse(build_domain_xml(spec))
    assert root.get("type") == "qemu"
    assert root.findtext("os/kernel") == "/boot/vmlinuz"
    assert root.findtext("os/initrd") == "/boot/initrd.img"
    assert root.findtext("os/cmdline") == "console=ttyS0 root=/dev/vda"
    assert root.find("os/boot") is None
    assert root.find("features/acpi") is not None
    serial = root.find("devices/serial")
    assert serial is not None and serial.get("type") == "file"
    source = serial.find("source")
    assert source is not None
    assert source.get("path") == "/var/log/novaflow/console.log"
    assert source.get("append") == "on"
    balloon = root.find("devices/memballoon")
    assert balloon is not None and balloon.get("model") == "none"
    assert root.find("devices/graphics") is None
    assert root.find("devices/disk/target").get("dev") == "vda"  # type: ignore[union-attr]


def test_user_mode_nic_needs_no_network(libvirt_quiet: None) -> None:
    # SLIRP: the NIC keeps its MAC and model but names no libvirt network (no bridge needed).
    nic = NicSpec(mac="FA:16:3E:00:00:02", network="", port_id="p-2", interface_type="user")
    spec = make_spec(domain_type="qemu", nics=(nic,))
    [interface] = parse(build_domain_xml(spec)).findall("devices/interface")
    assert interface.get("type") == "user"
    assert interface.find("mac").get("address") == "fa:16:3e:00:00:02"  # type: ignore[union-attr]
    assert interface.find("model").get("type") == "virtio"  # type: ignore[union-attr]
    assert interface.find("source") is None
    conn = libvirt.open("test:///default")  # libvirt parses it as a user-mode interface
    try:
        domain = conn.defineXML(build_domain_xml(spec))
        try:
            [stored] = parse(domain.XMLDesc(0)).findall("devices/interface")
            assert stored.get("type") == "user"
        finally:
            domain.undefine()
    finally:
        conn.close()


def test_kvm_uses_host_cpu() -> None:
    root = parse(build_domain_xml(make_spec(domain_type="kvm")))
    assert root.find("cpu").get("mode") == "host-passthrough"  # type: ignore[union-attr]
    assert root.find("os/boot").get("dev") == "hd"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"vcpus": 0}, "vcpus"),
        ({"memory_mb": 8}, "memory_mb"),
        ({"uuid": "not-a-uuid", "name": "x"}, "uuid"),
        ({"name": ""}, "name"),
        ({"disk_path": ""}, "disk_path"),
        ({"disk_format": "vmdk"}, "disk_format"),
        ({"domain_type": "xen"}, "domain_type"),
        ({"cmdline": "console=ttyS0"}, "kernel"),
        ({"nics": (NicSpec(mac="fa:16:3e:00:00", network="default", port_id="p"),)}, "mac"),
        ({"nics": (NicSpec(mac="zz:16:3e:00:00:01", network="default", port_id="p"),)}, "mac"),
        ({"nics": (NicSpec(mac="01:16:3e:00:00:01", network="default", port_id="p"),)}, "mac"),
        ({"nics": (NicSpec(mac="fa:16:3e:00:00:01", network="", port_id="p"),)}, "network"),
        (
            {"nics": (NicSpec("fa:16:3e:00:00:01", "default", "p", interface_type="tap"),)},
            "interface_type",
        ),
    ],
)
def test_invalid_input_names_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build_domain_xml(make_spec(**overrides))


def test_test_driver_accepts_the_xml(libvirt_quiet: None) -> None:
    spec = make_spec(display_name=EVIL, serial_log="/tmp/console.log")
    conn = libvirt.open("test:///default")
    try:
        domain = conn.defineXML(build_domain_xml(spec))
        try:
            assert domain.UUIDString() == spec.uuid
            assert domain.name() == spec.name
            stored = parse(domain.XMLDesc(0))
            instance = stored.find("metadata/nf:instance", NS)
            assert instance is not None
            assert instance.findtext("nf:display_name", namespaces=NS) == EVIL
            domain.create()
            assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
            domain.destroy()
        finally:
            domain.undefine()
    finally:
        conn.close()


def test_qemu_xml_is_well_formed_for_libvirt(libvirt_quiet: None) -> None:
    # The test driver does not run QEMU, but it does parse a qemu-type definition fully.
    spec = make_spec(domain_type="qemu", kernel="/boot/vmlinuz", serial_log="/tmp/c.log")
    conn = libvirt.open("test:///default")
    try:
        domain = conn.defineXML(build_domain_xml(spec))
        try:
            stored = parse(domain.XMLDesc(0))
            assert stored.findtext("os/kernel") == "/boot/vmlinuz"
            assert stored.find("devices/memballoon").get("model") == "none"  # type: ignore[union-attr]
        finally:
            domain.undefine()
    finally:
        conn.close()


def test_host_xml(tmp_path: Path, libvirt_quiet: None) -> None:
    xml = build_host_xml(cpus=6, memory_mb=12288, disk_gb=250, images_dir=str(tmp_path / "img"))
    root = parse(xml)
    cpu = root.find("cpu")
    assert cpu is not None and cpu.findtext("active") == "6"
    sockets, cores, threads, nodes = (
        int(cpu.findtext(t) or 0) for t in ("sockets", "cores", "threads", "nodes")
    )
    assert sockets * cores * threads * nodes == 6
    assert root.findtext("memory") == str(12288 * 1024)
    assert root.find("pool/capacity").text == "250"  # type: ignore[union-attr]
    assert root.findtext("network/name") == "default"

    path = tmp_path / "host.xml"
    path.write_text(xml)
    conn = libvirt.open(f"test://{path}")
    try:
        assert conn.getInfo()[:3] == ["x86_64", 12288, 6]
        pool = conn.storagePoolLookupByName("default")
        assert pool.isActive()
        assert conn.networkLookupByName("default").isActive()
    finally:
        conn.close()


def test_host_xml_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="cpus"):
        build_host_xml(cpus=0, memory_mb=1024, disk_gb=10, images_dir="/x")


def test_spec_is_frozen() -> None:
    spec = make_spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.vcpus = 4  # type: ignore[misc]
