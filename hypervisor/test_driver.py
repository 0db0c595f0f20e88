"""libvirt's test driver as a host that survives its worker's restarts.

The test driver (`test:///path/host.xml`) keeps its domains in the memory of the connection that
opened it: a restarted compute worker would find its host empty. TestDriverHost remembers what
it did under its state directory (domain XML, a `.running` marker, created volumes) and replays
it whenever it (re)opens the connection. It is still the real libvirt test driver; only this
save and restore lives here, apart from the production driver.
"""

from __future__ import annotations

import contextlib
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlparse

import libvirt

from hypervisor.disk_transfer import DiskSource
from hypervisor.errors import DomainDefinitionError, HostFailure, HypervisorError
from hypervisor.faults import FaultInjector, write_atomic
from hypervisor.libvirt_host import DEFAULT_POOL, GIB, LibvirtHost, volume_name

log = logging.getLogger(__name__)

_UNITS = {
    "b": 1,
    "bytes": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}


def _to_bytes(value: str, unit: str | None) -> int:
    factor = _UNITS.get((unit or "bytes").lower())
    if factor is None:
        raise ValueError(f"unknown unit {unit!r}")
    return int(value) * factor


def _node_file_disk_gb(uri: str, pool_name: str) -> int | None:
    """The pool's capacity declared in a test-driver node file, if there is one."""
    path = Path(urlparse(uri).path)
    if not path.is_file():
        return None
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    for pool in root.iter("pool"):
        if pool.findtext("name") != pool_name:
            continue
        capacity = pool.find("capacity")
        text = (capacity.text or "").strip() if capacity is not None else ""
        if capacity is None or not text:
            return None
        try:
            return _to_bytes(text, capacity.get("unit")) // GIB
        except ValueError:
            return None
    return None


class TestDriverHost(LibvirtHost):
    """A host on libvirt's test driver whose domains and volumes outlive the connection."""

    __test__ = False  # not a pytest class, whatever its name

    def __init__(
        self,
        uri: str,
        state_dir: Path,
        faults: FaultInjector | None = None,
        pool: str = DEFAULT_POOL,
    ) -> None:
        super().__init__(uri, faults=faults, pool=pool)
        self._state_dir = Path(state_dir)

    def _opened(self, conn: libvirt.virConnect) -> None:
        self._restore(conn)

    def _declared_disk_gb(self) -> int | None:
        # The test driver reports 100 GiB for every pool whatever the node file says.
        return _node_file_disk_gb(self.uri, self.pool_name)

    # The test driver can neither resize a volume nor copy one between hosts (it runs no disk
    # server: hypervisor/disk_transfer.py), and its volumes hold no content: here (and only
    # here) a move's disk is made anew on the destination at its size, and a growth is a new
    # volume of the new size. The real tier (tests/real) copies and grows real disks.

    def _grow_volume(
        self, pool: libvirt.virStoragePool, volume: libvirt.virStorageVol, size_gb: int
    ) -> str:
        name = volume.name()
        volume.delete(0)
        return self._ensure_volume(pool, name, size_gb)

    def receive_disk(
        self,
        server_id: str,
        source: DiskSource,
        size_gb: int,
        image_id: str,
        *,
        on_wait: Callable[[], None] | None = None,
    ) -> str:
        self._check_fault("receive_disk", on_wait)
        return self.prepare_disk(server_id, size_gb, image_id, on_wait=on_wait)

    # Nor has it files to keep for a same-host revert: the volume's record (its size) is kept,
    # and a restore makes a volume of that size again.

    def keep_original_disk(self, server_id: str) -> None:
        original, volume = self._original_file(server_id), self._volume_file(server_id)
        if not volume.exists():
            raise HostFailure(f"no disk for server {server_id} on {self.uri}")
        if not original.exists():
            write_atomic(original, volume.read_text(encoding="utf-8"))

    def restore_original_disk(self, server_id: str) -> None:
        original = self._original_file(server_id)
        if not original.exists():
            return
        record = json.loads(original.read_text(encoding="utf-8"))
        self._replace_volume(server_id, record["size_gb"])
        self._remember_volume(server_id, record["size_gb"], record["image_id"])
        original.unlink()

    def drop_original_disk(self, server_id: str) -> None:
        self._original_file(server_id).unlink(missing_ok=True)

    def _replace_volume(self, server_id: str, size_gb: int) -> None:
        pool = self._pool(self._connection())
        name = volume_name(server_id)
        with contextlib.suppress(libvirt.libvirtError):
            pool.storageVolLookupByName(name).delete(0)
        self._ensure_volume(pool, name, size_gb)

    def _original_file(self, server_id: str) -> Path:
        return self._state_dir / "originals" / f"{server_id}.json"

    # Nor can it take an upload: an image's cached copy is a record here (its bytes were
    # read and checked by the image cache all the same), and a disk is never an overlay.

    def prepare_disk(
        self,
        server_id: str,
        size_gb: int,
        image_id: str,
        *,
        backing: str | None = None,
        backing_format: str = "qcow2",
        on_wait: Callable[[], None] | None = None,
    ) -> str:
        return super().prepare_disk(server_id, size_gb, image_id, on_wait=on_wait)

    def store_base_image(
        self,
        image_id: str,
        size: int,
        chunks: Iterable[bytes],
        *,
        on_wait: Callable[[], None] | None = None,
    ) -> str:
        self._check_fault("fetch_image", on_wait)
        received = 0
        for chunk in chunks:
            received += len(chunk)
            if on_wait is not None:
                on_wait()
        record = self._base_file(image_id)
        write_atomic(record, json.dumps({"image_id": image_id, "size": received}) + "\n")
        return str(record)

    def base_image_path(self, image_id: str) -> str | None:
        record = self._base_file(image_id)
        return str(record) if record.exists() else None

    def delete_base_image(self, image_id: str) -> None:
        self._base_file(image_id).unlink(missing_ok=True)

    def _base_file(self, image_id: str) -> Path:
        return self._state_dir / "base-images" / f"{image_id}.json"

    def _remember_volume(self, server_id: str, size_gb: int, image_id: str) -> None:
        record = {"server_id": server_id, "size_gb": size_gb, "image_id": image_id}
        write_atomic(self._volume_file(server_id), json.dumps(record) + "\n")

    def _forget_volume(self, server_id: str) -> None:
        self._volume_file(server_id).unlink(missing_ok=True)

    def _remember_domain(self, domain: libvirt.virDomain) -> None:
        try:
            server_id = domain.UUIDString()
            persistent_xml = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"define: {exc}") from exc
        write_atomic(self._domain_file(server_id), persistent_xml)

    def _forget_domain(self, server_id: str) -> None:
        self._domain_file(server_id).unlink(missing_ok=True)

    def _domains_dir(self) -> Path:
        return self._state_dir / "domains"

    def _volumes_dir(self) -> Path:
        return self._state_dir / "volumes"

    def _domain_file(self, server_id: str) -> Path:
        return self._domains_dir() / f"{server_id}.xml"

    def _running_file(self, server_id: str) -> Path:
        return self._domains_dir() / f"{server_id}.running"

    def _volume_file(self, server_id: str) -> Path:
        return self._volumes_dir() / f"{server_id}.json"

    def _mark_running(self, server_id: str, running: bool) -> None:
        if running:
            write_atomic(self._running_file(server_id), "")
        else:
            self._running_file(server_id).unlink(missing_ok=True)

    def _restore(self, conn: libvirt.virConnect) -> None:
        """Replay persisted volumes and domains onto a fresh test-driver connection."""
        restored = started = 0
        volumes_dir = self._volumes_dir()
        if volumes_dir.is_dir():
            pool = self._pool_or_none(conn)
            for path in sorted(volumes_dir.glob("*.json")):
                try:
                    record = json.loads(path.read_text(encoding="utf-8"))
                    if pool is None:
                        raise HostFailure(f"no storage pool {self.pool_name!r}")
                    self._ensure_volume(pool, volume_name(record["server_id"]), record["size_gb"])
                except (
                    OSError,
                    ValueError,
                    KeyError,
                    TypeError,
                    HostFailure,
                    HypervisorError,
                    DomainDefinitionError,
                ) as exc:
                    log.error("cannot restore volume from %s: %s", path, exc)
        domains_dir = self._domains_dir()
        if not domains_dir.is_dir():
            return
        for path in sorted(domains_dir.glob("*.xml")):
            server_id = path.stem
            try:
                domain = conn.defineXML(path.read_text(encoding="utf-8"))
                restored += 1
                if self._running_file(server_id).exists() and not domain.isActive():
                    domain.create()
                    started += 1
            except (OSError, libvirt.libvirtError) as exc:
                log.error("cannot restore domain %s from %s: %s", server_id, path, exc)
        for marker in domains_dir.glob("*.running"):
            if not self._domain_file(marker.stem).exists():
                marker.unlink(missing_ok=True)  # stale: its domain was undefined
        if restored:
            log.info("restored %d domains (%d running) on %s", restored, started, self.uri)
