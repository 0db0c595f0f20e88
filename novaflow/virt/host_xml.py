"""A node file for libvirt's test driver: one simulated hypervisor host.

Open it as `test:///ABS/PATH/host.xml`. The file describes the host's CPUs and memory, a dir
storage pool named `default` and a network named `default`.

Note: the test driver ignores the pool's <capacity> (every pool reports 100 GiB), so
LibvirtHost.node_info() reads the disk size back from this file for `test:` URIs.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

CPU_MHZ = 2000


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def build_host_xml(
    cpus: int, memory_mb: int, disk_gb: int, images_dir: str, arch: str = "x86_64"
) -> str:
    """The test-driver node XML for a host with `cpus` CPUs, `memory_mb` RAM, `disk_gb` disk."""
    if cpus < 1:
        raise ValueError(f"cpus: must be >= 1 (got {cpus})")
    if memory_mb < 1:
        raise ValueError(f"memory_mb: must be >= 1 (got {memory_mb})")
    if disk_gb < 0:
        raise ValueError(f"disk_gb: must be >= 0 (got {disk_gb})")
    if not images_dir:
        raise ValueError("images_dir: must be non-empty")

    node = ET.Element("node")
    cpu = _sub(node, "cpu")
    _sub(cpu, "mhz", str(CPU_MHZ))
    _sub(cpu, "model", arch)
    _sub(cpu, "active", str(cpus))
    # nodes * sockets * cores * threads must equal the active count.
    _sub(cpu, "nodes", "1")
    _sub(cpu, "sockets", "1")
    _sub(cpu, "cores", str(cpus))
    _sub(cpu, "threads", "1")
    _sub(node, "memory", str(memory_mb * 1024))  # KiB

    pool = _sub(node, "pool", type="dir")
    _sub(pool, "name", "default")
    _sub(_sub(pool, "target"), "path", images_dir)
    _sub(pool, "capacity", str(disk_gb), unit="GiB")
    _sub(pool, "allocation", "0")
    _sub(pool, "available", str(disk_gb), unit="GiB")

    network = _sub(node, "network")
    _sub(network, "name", "default")
    _sub(network, "bridge", name="virbr0")
    _sub(network, "forward")
    _sub(network, "ip", address="192.168.122.1", netmask="255.255.255.0")

    ET.indent(node)
    return ET.tostring(node, encoding="unicode") + "\n"
