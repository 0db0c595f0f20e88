"""One host's hypervisor, as the compute worker sees it: a thin, idempotent layer over libvirt.

Every operation may be retried by the caller (a Temporal activity), so each one is idempotent:
defining an already-defined domain redefines it, starting a running domain is a no-op, deleting
something missing is done. libvirt errors are mapped onto three exceptions that tell the caller
what to do next:

  HypervisorError        transient (connection lost, RPC failure, timeout)  -> retry here
  DomainDefinitionError  permanent (libvirt rejected the XML or an argument) -> do not retry
  HostFailure            this host cannot build now (injected fault, no disk space, no
                         such network/pool here, guest died while starting) -> reschedule

libvirt's test driver (`test:///path/host.xml`) keeps its domains in the memory of the
connection that opened it. So for `test:` URIs with a state_dir, LibvirtHost persists what it
did under state_dir (domain XML, a `.running` marker, created volumes) and replays it whenever it
(re)opens the connection: a restarted compute worker gets its host's servers back.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import libvirt
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from novaflow.virt.domain_xml import METADATA_NS
from novaflow.virt.faults import FaultInjector, write_atomic

log = logging.getLogger(__name__)

DEFAULT_POOL = "default"  # the storage pool a host's root disks go to unless told otherwise
CONNECT_ATTEMPTS = 3
START_POLL_SECONDS = 0.05
GIB = 1024**3

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


@dataclass(frozen=True)
class DomainInfo:
    state: int  # libvirt's virDomainState
    vcpus: int
    memory_mb: int
    cpu_time_ns: int
    mac_addresses: tuple[str, ...]


class HypervisorError(Exception):
    """Transient: the connection was lost, an RPC failed, a wait timed out. Retry."""


class DomainDefinitionError(Exception):
    """Permanent: libvirt rejected the domain XML or an argument. Do not retry."""


class DomainNotFoundError(DomainDefinitionError):
    """The domain an operation needs (e.g. start) is not defined on this host."""


class HostFailure(Exception):
    """This host cannot build right now (injected fault, out of resources). Reschedule."""


@dataclass(frozen=True)
class NodeInfo:
    arch: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    hostname: str


_DEFINITION_ERRORS = frozenset(
    {
        libvirt.VIR_ERR_XML_ERROR,
        libvirt.VIR_ERR_XML_DETAIL,
        libvirt.VIR_ERR_INVALID_ARG,
        libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
        libvirt.VIR_ERR_XML_INVALID_SCHEMA,
        libvirt.VIR_ERR_NO_NAME,
        libvirt.VIR_ERR_NO_OS,
        libvirt.VIR_ERR_NO_KERNEL,
        libvirt.VIR_ERR_NO_ROOT,
        libvirt.VIR_ERR_NO_SOURCE,
        libvirt.VIR_ERR_NO_TARGET,
        libvirt.VIR_ERR_NO_DEVICE,
        libvirt.VIR_ERR_INVALID_MAC,
        libvirt.VIR_ERR_NO_SUPPORT,
    }
)
# What the domain needs from the host is missing here (its network, its pool): try elsewhere.
_HOST_ERRORS = frozenset({libvirt.VIR_ERR_NO_NETWORK, libvirt.VIR_ERR_NO_STORAGE_POOL})
# Listed for the record: anything not recognised is treated as transient too.
_TRANSIENT_ERRORS = frozenset(
    {
        libvirt.VIR_ERR_SYSTEM_ERROR,
        libvirt.VIR_ERR_RPC,
        libvirt.VIR_ERR_NO_CONNECT,
        libvirt.VIR_ERR_INTERNAL_ERROR,
        libvirt.VIR_ERR_INVALID_CONN,
        libvirt.VIR_ERR_OPERATION_TIMEOUT,
    }
)


def _code(exc: libvirt.libvirtError) -> int:
    return exc.get_error_code() or 0


def _message(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


def _translate(exc: libvirt.libvirtError, what: str) -> Exception:
    code = _code(exc)
    message = f"{what}: {_message(exc)}"
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return DomainNotFoundError(message)
    if code in _DEFINITION_ERRORS:
        return DomainDefinitionError(message)
    if code in _HOST_ERRORS:
        return HostFailure(message)
    return HypervisorError(message)


@contextmanager
def _libvirt_errors(what: str) -> Iterator[None]:
    """Re-raise libvirt errors as our exceptions (see the module docstring)."""
    try:
        yield
    except libvirt.libvirtError as exc:
        raise _translate(exc, what) from exc


def _ignore_libvirt_error(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; we raise them instead."""


def volume_name(server_id: str) -> str:
    return f"{server_id}.qcow2"


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


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
        if capacity is None or not (capacity.text or "").strip():
            return None
        try:
            return _to_bytes(capacity.text.strip(), capacity.get("unit")) // GIB
        except ValueError:
            return None
    return None


class LibvirtHost:
    """One hypervisor host, reached through libvirt at `uri`. Safe to share between threads.

    Root disks are volumes of the storage pool `pool` (a real host names its own, e.g. a dir
    pool on the disk meant for guests; the test driver's node files declare `default`)."""

    def __init__(
        self,
        uri: str,
        state_dir: Path | None = None,
        faults: FaultInjector | None = None,
        pool: str = DEFAULT_POOL,
    ) -> None:
        self.uri = uri
        self.pool_name = pool
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self._faults = faults
        self._conn: libvirt.virConnect | None = None
        self._lock = threading.RLock()
        # A real daemon (qemu:///system) keeps its own state; only the test driver forgets.
        self._persist = self._state_dir is not None and uri.startswith("test:")

    # -- connection ---------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection (and, for a test: URI with a state_dir, restore its domains)."""
        self._connection()

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except libvirt.libvirtError as exc:
                log.debug("closing %s: %s", self.uri, exc)

    def __enter__(self) -> LibvirtHost:
        self.connect()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @staticmethod
    def _alive(conn: libvirt.virConnect) -> bool:
        try:
            return conn.isAlive() == 1
        except libvirt.libvirtError:
            return False

    def _connection(self) -> libvirt.virConnect:
        """The open connection; reopened (a few quick attempts) when missing or dead."""
        with self._lock:
            if self._conn is not None:
                if self._alive(self._conn):
                    return self._conn
                log.warning("libvirt connection to %s lost; reconnecting", self.uri)
                self.close()
            libvirt.registerErrorHandler(_ignore_libvirt_error, None)
            conn = self._open()
            self._conn = conn
            if self._persist:
                self._restore(conn)
            return conn

    def _open(self) -> libvirt.virConnect:
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(CONNECT_ATTEMPTS),
                wait=wait_exponential(multiplier=0.05, max=0.5),
                retry=retry_if_exception_type(libvirt.libvirtError),
                reraise=True,
            ):
                with attempt:
                    conn = libvirt.open(self.uri)
                    if conn is None:  # very old bindings returned None instead of raising
                        raise libvirt.libvirtError(f"cannot open {self.uri}")
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"connect {self.uri}: {_message(exc)}") from exc
        return conn

    # -- host ---------------------------------------------------------------------------------

    def node_info(self) -> NodeInfo:
        conn = self._connection()
        with _libvirt_errors("node info"):
            arch, memory_mb, cpus = conn.getInfo()[:3]
            hostname = conn.getHostname()
            pool = self._pool_or_none(conn)
            disk_gb = pool.info()[1] // GIB if pool is not None else 0
        if self.uri.startswith("test:") and pool is not None:
            # The test driver reports 100 GiB for every pool whatever the node file says.
            declared = _node_file_disk_gb(self.uri, self.pool_name)
            if declared is not None:
                disk_gb = declared
        return NodeInfo(
            arch=str(arch),
            vcpus=int(cpus),
            memory_mb=int(memory_mb),
            disk_gb=int(disk_gb),
            hostname=str(hostname),
        )

    def _pool_or_none(self, conn: libvirt.virConnect) -> libvirt.virStoragePool | None:
        try:
            return conn.storagePoolLookupByName(self.pool_name)
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_STORAGE_POOL:
                return None
            raise

    def _pool(self, conn: libvirt.virConnect) -> libvirt.virStoragePool:
        with _libvirt_errors("storage pool"):
            pool = self._pool_or_none(conn)
            if pool is None:
                raise HostFailure(f"no storage pool {self.pool_name!r} on {self.uri}")
            if not pool.isActive():
                raise HostFailure(f"storage pool {self.pool_name!r} on {self.uri} is not active")
        return pool

    # -- disks --------------------------------------------------------------------------------

    def prepare_disk(
        self,
        server_id: str,
        size_gb: int,
        image_id: str,
        *,
        on_wait: Callable[[], None] | None = None,
    ) -> str:
        """Create the server's root volume (thin qcow2, at least 1 GiB); returns its path.

        Idempotent: an existing volume is kept and its path returned. The image is recorded but
        not copied in (there is no image store yet): the disk starts blank.
        """
        if size_gb < 0:
            raise ValueError(f"size_gb: must be >= 0 (got {size_gb})")
        self._check_fault("prepare_disk", on_wait)
        conn = self._connection()
        pool = self._pool(conn)
        path = self._ensure_volume(pool, volume_name(server_id), max(size_gb, 1))
        if self._persist:
            record = {"server_id": server_id, "size_gb": max(size_gb, 1), "image_id": image_id}
            write_atomic(self._volume_file(server_id), json.dumps(record) + "\n")
        return path

    @staticmethod
    def _volume_xml(name: str, size_gb: int) -> str:
        volume = ET.Element("volume")
        ET.SubElement(volume, "name").text = name
        ET.SubElement(volume, "capacity", unit="GiB").text = str(size_gb)
        # Thin: qcow2 grows on demand (and the test driver would otherwise count the full size
        # against its fixed 100 GiB pool).
        ET.SubElement(volume, "allocation").text = "0"
        ET.SubElement(ET.SubElement(volume, "target"), "format", type="qcow2")
        return ET.tostring(volume, encoding="unicode")

    def _ensure_volume(self, pool: libvirt.virStoragePool, name: str, size_gb: int) -> str:
        with _libvirt_errors(f"volume {name}"):
            try:
                return pool.storageVolLookupByName(name).path()
            except libvirt.libvirtError as exc:
                if _code(exc) != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise
            try:
                return pool.createXML(self._volume_xml(name, size_gb), 0).path()
            except libvirt.libvirtError as exc:
                text = _message(exc).lower()
                if "free space" in text or "no space left" in text:
                    raise HostFailure(f"volume {name}: {_message(exc)}") from exc
                if "already exists" in text:  # created concurrently: fine
                    return pool.storageVolLookupByName(name).path()
                raise

    def delete_disk(self, server_id: str) -> None:
        """Delete the server's root volume; a missing volume (or pool) counts as deleted."""
        conn = self._connection()
        name = volume_name(server_id)
        with _libvirt_errors(f"delete volume {name}"):
            pool = self._pool_or_none(conn)
            if pool is not None:
                try:
                    pool.storageVolLookupByName(name).delete(0)
                except libvirt.libvirtError as exc:
                    if _code(exc) != libvirt.VIR_ERR_NO_STORAGE_VOL:
                        raise
        if self._persist:
            self._volume_file(server_id).unlink(missing_ok=True)

    # -- domains ------------------------------------------------------------------------------

    def define(self, xml: str, *, on_wait: Callable[[], None] | None = None) -> None:
        """Define (or redefine, same uuid and name) a persistent domain from `xml`."""
        self._check_fault("define", on_wait)
        conn = self._connection()
        try:
            domain = conn.defineXML(xml)
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_OPERATION_FAILED:
                # e.g. the uuid is already defined under another name: retrying cannot help.
                raise DomainDefinitionError(f"define: {_message(exc)}") from exc
            raise _translate(exc, "define") from exc
        if self._persist:
            with _libvirt_errors("define"):
                server_id = domain.UUIDString()
                persistent_xml = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            write_atomic(self._domain_file(server_id), persistent_xml)

    def start(
        self,
        server_id: str,
        timeout_s: float = 30.0,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        """Power the domain on (a running domain is left alone) and wait until it runs.

        Polls until libvirt reports VIR_DOMAIN_RUNNING, calling `on_wait` between polls (so an
        activity can heartbeat). A guest that stops or crashes meanwhile is a HostFailure; not
        running by the deadline is a HypervisorError.
        """
        self._check_fault("start", on_wait)
        conn = self._connection()
        domain = self._lookup(conn, server_id)
        with _libvirt_errors(f"start {server_id}"):
            if not domain.isActive():
                try:
                    domain.create()
                except libvirt.libvirtError:
                    if not domain.isActive():  # not a lost race with another start
                        raise
        self._mark_running(server_id, True)
        self._wait_running(domain, server_id, timeout_s, on_wait)

    def _wait_running(
        self,
        domain: libvirt.virDomain,
        server_id: str,
        timeout_s: float,
        on_wait: Callable[[], None] | None,
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            with _libvirt_errors(f"state of {server_id}"):
                state = domain.state()[0]
            if state == libvirt.VIR_DOMAIN_RUNNING:
                return
            if state in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED):
                self._mark_running(server_id, False)
                raise HostFailure(f"domain {server_id} stopped while starting (state {state})")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HypervisorError(
                    f"domain {server_id} not running after {timeout_s:.1f}s (state {state})"
                )
            if on_wait is not None:
                on_wait()
            time.sleep(min(START_POLL_SECONDS, remaining))

    def stop(self, server_id: str) -> None:
        """Hard power-off (virDomainDestroy). Stopped or missing counts as done."""
        conn = self._connection()
        self._mark_running(server_id, False)
        domain = self._lookup_or_none(conn, server_id)
        if domain is not None:
            self._destroy(domain, server_id)

    def undefine(self, server_id: str, *, on_wait: Callable[[], None] | None = None) -> None:
        """Power off if running, then undefine. A missing domain counts as done."""
        self._check_fault("undefine", on_wait)
        conn = self._connection()
        self._mark_running(server_id, False)
        domain = self._lookup_or_none(conn, server_id)
        if domain is not None:
            self._destroy(domain, server_id)
            with _libvirt_errors(f"undefine {server_id}"):
                try:
                    self._undefine(domain)
                except libvirt.libvirtError as exc:
                    if _code(exc) != libvirt.VIR_ERR_NO_DOMAIN:
                        raise
        if self._persist:
            self._domain_file(server_id).unlink(missing_ok=True)

    @staticmethod
    def _undefine(domain: libvirt.virDomain) -> None:
        flags = (
            libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        )
        try:
            domain.undefineFlags(flags)
        except libvirt.libvirtError as exc:
            # Drivers without NVRAM (the test driver among them) reject that flag.
            if _code(exc) not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT):
                raise
            domain.undefine()

    @staticmethod
    def _destroy(domain: libvirt.virDomain, server_id: str) -> None:
        with _libvirt_errors(f"destroy {server_id}"):
            try:
                if domain.isActive():
                    domain.destroy()
            except libvirt.libvirtError as exc:
                if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                    return
                if _code(exc) == libvirt.VIR_ERR_OPERATION_INVALID and not domain.isActive():
                    return  # stopped meanwhile
                raise

    def power_state(self, server_id: str) -> int | None:
        """libvirt's virDomainState for the domain, or None if it is not defined here."""
        conn = self._connection()
        domain = self._lookup_or_none(conn, server_id)
        if domain is None:
            return None
        try:
            return int(domain.state()[0])
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise _translate(exc, f"state of {server_id}") from exc

    def describe(self, server_id: str) -> DomainInfo | None:
        """What libvirt reports of the domain (Nova's server diagnostics), None if undefined."""
        conn = self._connection()
        domain = self._lookup_or_none(conn, server_id)
        if domain is None:
            return None
        try:
            state, max_kib, _, vcpus, cpu_time = domain.info()
            root = ET.fromstring(domain.XMLDesc(0))
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise _translate(exc, f"info of {server_id}") from exc
        macs = tuple(m.get("address", "") for m in root.iterfind("./devices/interface/mac"))
        return DomainInfo(
            state=int(state),
            vcpus=int(vcpus),
            memory_mb=int(max_kib) // 1024,
            cpu_time_ns=int(cpu_time),
            mac_addresses=macs,
        )

    def list_domains(self) -> list[str]:
        """Server ids (uuids) of the defined domains that carry novaflow metadata.

        Domains without our metadata (an operator's own VMs, the test driver's stock `test`
        domain) are not ours to report, let alone reap.
        """
        conn = self._connection()
        with _libvirt_errors("list domains"):
            domains = conn.listAllDomains(0)
        return sorted(domain.UUIDString() for domain in domains if self._is_ours(domain))

    def list_disks(self) -> list[str]:
        """Server ids whose root volume is in the pool (a build can die between the disk and
        the domain: such a disk has no domain to find it by)."""
        conn = self._connection()
        with _libvirt_errors("list volumes"):
            pool = self._pool_or_none(conn)
            names = pool.listVolumes() if pool is not None and pool.isActive() else []
        found = []
        for name in names:
            stem = name.removesuffix(".qcow2")
            if name != stem and _is_uuid(stem):
                found.append(stem)
        return sorted(found)

    @staticmethod
    def _is_ours(domain: libvirt.virDomain) -> bool:
        try:
            domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)
        except libvirt.libvirtError:
            return False  # no metadata of ours (or gone meanwhile)
        return True

    # -- helpers ------------------------------------------------------------------------------

    def _check_fault(self, step: str, on_wait: Callable[[], None] | None) -> None:
        if self._faults is not None:
            self._faults.check(step, on_wait)

    @staticmethod
    def _lookup_or_none(conn: libvirt.virConnect, server_id: str) -> libvirt.virDomain | None:
        try:
            return conn.lookupByUUIDString(server_id)
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            if _code(exc) == libvirt.VIR_ERR_INVALID_ARG:
                raise ValueError(f"server_id: not a UUID: {server_id!r}") from exc
            raise _translate(exc, f"lookup {server_id}") from exc

    def _lookup(self, conn: libvirt.virConnect, server_id: str) -> libvirt.virDomain:
        domain = self._lookup_or_none(conn, server_id)
        if domain is None:
            raise DomainNotFoundError(f"no domain {server_id} on {self.uri}")
        return domain

    # -- persistence for the test driver -------------------------------------------------------

    def _domains_dir(self) -> Path:
        assert self._state_dir is not None
        return self._state_dir / "domains"

    def _volumes_dir(self) -> Path:
        assert self._state_dir is not None
        return self._state_dir / "volumes"

    def _domain_file(self, server_id: str) -> Path:
        return self._domains_dir() / f"{server_id}.xml"

    def _running_file(self, server_id: str) -> Path:
        return self._domains_dir() / f"{server_id}.running"

    def _volume_file(self, server_id: str) -> Path:
        return self._volumes_dir() / f"{server_id}.json"

    def _mark_running(self, server_id: str, running: bool) -> None:
        if not self._persist:
            return
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
