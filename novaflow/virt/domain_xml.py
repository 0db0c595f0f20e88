"""Build a libvirt domain definition for one server (pure: no libvirt connection needed).

The XML is assembled with ElementTree, never by string formatting, so user-supplied text (the
server's display name, ...) is escaped. Our own facts about the server (display name, project,
flavor, image) live in <metadata> under the novaflow namespace, where libvirt keeps them verbatim
and `virsh dumpxml` shows them to an operator.
"""

from __future__ import annotations

import re
import uuid as uuid_mod
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from novaflow.resources import Resources

METADATA_NS = "https://novaflow.dev/xmlns/instance/1.0"
METADATA_PREFIX = "novaflow"

DOMAIN_TYPES = frozenset({"test", "qemu", "kvm"})
DISK_FORMATS = frozenset({"qcow2", "raw"})
# How a NIC reaches the outside: "network" plugs it into a libvirt network of the host (a
# bridge); "user" is QEMU's user-mode networking (SLIRP): no bridge, no root, outbound only.
INTERFACE_TYPES = frozenset({"network", "user"})
MIN_MEMORY_MB = 16

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
# Characters XML 1.0 cannot carry at all (ElementTree would emit them unescaped and unparseable).
_XML_INVALID_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

ET.register_namespace(METADATA_PREFIX, METADATA_NS)


@dataclass(frozen=True)
class NicSpec:
    mac: str
    network: str  # libvirt network name on the host, e.g. "default" (type "network" only)
    port_id: str
    interface_type: str = "network"  # one of INTERFACE_TYPES


@dataclass(frozen=True)
class DomainSpec:
    uuid: str  # the server id; the domain's <uuid>
    name: str  # libvirt domain name, see domain_name()
    display_name: str  # the user's server name; only ever lands in <metadata>
    resources: Resources  # the flavor's: vCPUs and memory here (the disk is made apart)
    disk_path: str
    disk_format: str = "qcow2"
    nics: tuple[NicSpec, ...] = ()
    arch: str = "x86_64"
    domain_type: str = "test"  # "test" (libvirt's test driver), "qemu" (TCG) or "kvm"
    kernel: str | None = None  # direct kernel boot for real QEMU guests
    initrd: str | None = None
    cmdline: str | None = None
    serial_log: str | None = None  # serial console appended to this file
    project_id: str = ""
    flavor_name: str = ""
    image_id: str = ""


def domain_name(server_id: str) -> str:
    """The libvirt domain name of a server (Nova's `instance-...` convention, keyed by the id)."""
    return f"instance-{server_id}"


def _clean_text(value: str) -> str:
    """User text made storable in XML: drop the characters XML 1.0 forbids (escaping is ET's)."""
    return _XML_INVALID_RE.sub("", value)


def _validate(spec: DomainSpec) -> None:
    try:
        uuid_mod.UUID(spec.uuid)
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"uuid: not a UUID: {spec.uuid!r}") from None
    if not spec.name or "/" in spec.name:
        raise ValueError(f"name: must be non-empty and contain no '/': {spec.name!r}")
    if spec.resources.vcpus < 1:
        raise ValueError(f"vcpus: must be >= 1 (got {spec.resources.vcpus})")
    if spec.resources.memory_mb < MIN_MEMORY_MB:
        raise ValueError(f"memory_mb: must be >= {MIN_MEMORY_MB} (got {spec.resources.memory_mb})")
    if not spec.disk_path:
        raise ValueError("disk_path: must be non-empty")
    if spec.disk_format not in DISK_FORMATS:
        raise ValueError(f"disk_format: must be one of {sorted(DISK_FORMATS)}")
    if spec.domain_type not in DOMAIN_TYPES:
        raise ValueError(f"domain_type: must be one of {sorted(DOMAIN_TYPES)}")
    if not spec.arch:
        raise ValueError("arch: must be non-empty")
    if spec.kernel is None and (spec.initrd is not None or spec.cmdline is not None):
        raise ValueError("kernel: initrd/cmdline need a kernel (direct kernel boot)")
    for index, nic in enumerate(spec.nics):
        if not _MAC_RE.match(nic.mac):
            raise ValueError(f"nics[{index}].mac: expected xx:xx:xx:xx:xx:xx, got {nic.mac!r}")
        if int(nic.mac[:2], 16) & 1:
            raise ValueError(f"nics[{index}].mac: must be unicast (got {nic.mac!r})")
        if nic.interface_type not in INTERFACE_TYPES:
            raise ValueError(
                f"nics[{index}].interface_type: must be one of {sorted(INTERFACE_TYPES)}"
            )
        if nic.interface_type == "network" and not nic.network:
            raise ValueError(f"nics[{index}].network: must be non-empty")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _metadata(root: ET.Element, spec: DomainSpec) -> None:
    def ns(tag: str) -> str:
        return f"{{{METADATA_NS}}}{tag}"

    instance = _sub(_sub(root, "metadata"), ns("instance"))
    _sub(instance, ns("display_name"), _clean_text(spec.display_name))
    _sub(instance, ns("project"), id=_clean_text(spec.project_id))
    _sub(
        instance,
        ns("flavor"),
        name=_clean_text(spec.flavor_name),
        vcpus=str(spec.resources.vcpus),
        memory_mb=str(spec.resources.memory_mb),
    )
    _sub(instance, ns("image"), id=_clean_text(spec.image_id))
    ports = _sub(instance, ns("ports"))
    for nic in spec.nics:
        _sub(ports, ns("port"), id=_clean_text(nic.port_id), mac=nic.mac.lower())


def build_domain_xml(spec: DomainSpec) -> str:
    """The domain XML for `spec`; raises ValueError naming the offending field."""
    _validate(spec)
    real_hypervisor = spec.domain_type != "test"

    root = ET.Element("domain", {"type": spec.domain_type})
    _sub(root, "name", spec.name)
    _sub(root, "uuid", spec.uuid)
    _metadata(root, spec)
    _sub(root, "memory", str(spec.resources.memory_mb), unit="MiB")
    _sub(root, "currentMemory", str(spec.resources.memory_mb), unit="MiB")
    _sub(root, "vcpu", str(spec.resources.vcpus), placement="static")

    os_el = _sub(root, "os")
    _sub(os_el, "type", "hvm", arch=spec.arch)
    if spec.kernel is not None:
        _sub(os_el, "kernel", spec.kernel)
        if spec.initrd is not None:
            _sub(os_el, "initrd", spec.initrd)
        if spec.cmdline is not None:
            _sub(os_el, "cmdline", spec.cmdline)
    else:
        _sub(os_el, "boot", dev="hd")

    if real_hypervisor and spec.arch in {"x86_64", "i686"}:
        features = _sub(root, "features")
        _sub(features, "acpi")
        _sub(features, "apic")
    if spec.domain_type == "kvm":
        _sub(root, "cpu", mode="host-passthrough")
    _sub(root, "clock", offset="utc")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")

    devices = _sub(root, "devices")
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type=spec.disk_format)
    _sub(disk, "source", file=spec.disk_path)
    _sub(disk, "target", dev="vda", bus="virtio")
    for nic in spec.nics:
        interface = _sub(devices, "interface", type=nic.interface_type)
        _sub(interface, "mac", address=nic.mac.lower())
        if nic.interface_type == "network":
            _sub(interface, "source", network=nic.network)
        _sub(interface, "model", type="virtio")
    if spec.serial_log is not None:
        serial = _sub(devices, "serial", type="file")
        _sub(serial, "source", path=spec.serial_log, append="on")
        _sub(serial, "target", port="0")
    # No <graphics>: guests are headless; the serial log is the console.
    _sub(devices, "memballoon", model="none")

    ET.indent(root)
    return ET.tostring(root, encoding="unicode")
