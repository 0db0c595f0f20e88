"""Host-side steps, run by the compute worker of the host that owns the domain (its own task
queue `compute@<host>`). Each is idempotent: a step that already happened is a no-op."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from pathlib import Path
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.base import StepRecorder
from activities.image_cache import ImageCache, ImageUnavailable
from activities.registry import implements
from hypervisor.disk_transfer import DiskSource, make_token
from hypervisor.errors import DomainDefinitionError, HostFailure, HypervisorError
from hypervisor.libvirt_host import LibvirtHost
from novaflow import hosts
from novaflow.db import Database
from novaflow.images import KERNEL_ID, RAMDISK_ID
from novaflow.models import utcnow
from novaflow.states import LIBVIRT_POWER_STATE, PowerState
from novaflow.virt.console import read_tail
from novaflow.virt.domain_xml import DomainSpec, NicSpec, build_domain_xml, domain_name
from workflows import catalog
from workflows.contracts import (
    BUILD_ABORTED,
    HOST_FAILURE,
    KEEP_ORIGINAL_DISK,
    AllocatedPort,
    ConsoleOutput,
    ConsoleOutputInput,
    DiagnosticsInput,
    DiskTransferInput,
    DomainDiagnostics,
    HostPowerInput,
    ImageContent,
    PowerResult,
    ServerRef,
    SpawnInput,
    StepContext,
)

T = TypeVar("T")
HOST_NETWORK = "default"  # the libvirt network every port is plugged into on a host
# How a host plugs ports into guests: into HOST_NETWORK (a bridge), QEMU's user-mode networking
# (no bridge needed: a host without one can still run guests), or not at all.
NIC_MODES = ("network", "user", "none")

# Image properties for direct kernel boot: a kernel and a ramdisk as files on the host, named
# by path; or, as Nova's AMI-style images, as images of the image service (kernel_id and
# ramdisk_id, which win: see novaflow.images), fetched into the host's cache like the disk's
# image. And Nova's own property for the kernel command line.
KERNEL_PATH = "kernel_path"
INITRD_PATH = "initrd_path"
COMMAND_LINE = "os_command_line"
# The kernel writes to the serial console (the server's console log); a panic reboots at once.
DEFAULT_COMMAND_LINE = "console=ttyS0 panic=-1"


def _raise(error: Exception) -> None:
    raise error


def _heartbeat() -> None:
    activity.heartbeat()


def _heartbeating(work: Callable[[], T], every: float = 1.0) -> T:
    """Run a blocking hypervisor call (a managed save, a restore: seconds on a real guest)
    while this activity keeps heartbeating, so its heartbeat timeout means "the worker is
    gone", never "libvirt is busy"."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        future = pool.submit(work)
        while True:
            try:
                return future.result(timeout=every)
            except FutureTimeout:
                activity.heartbeat()  # raises here when the activity is cancelled
    finally:
        pool.shutdown(wait=False)  # a cancel does not wait for libvirt to return


class StepCancelled(Exception):
    """Raised inside a long host step at its next checkpoint once its activity is cancelled."""


# How long a cancelled step waits for its work to reach a checkpoint and stop.
STOP_WITHIN_SECONDS = 30.0


def _heartbeating_until_stopped(work: Callable[[Callable[[], None]], T], every: float = 1.0) -> T:
    """As _heartbeating, for work that must not go on once its activity is cancelled (a disk
    copy: its undo would otherwise run while it still writes). The work gets a checkpoint to
    call in its loops, which raises once the activity is cancelled; the cancel is reported
    only after the work stopped (or STOP_WITHIN_SECONDS passed)."""
    stopped = threading.Event()

    def checkpoint() -> None:
        if stopped.is_set():
            raise StepCancelled("the step was cancelled")

    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(work, checkpoint)
    try:
        while True:
            try:
                return future.result(timeout=every)
            except FutureTimeout:
                activity.heartbeat()
    except BaseException:
        stopped.set()
        with contextlib.suppress(BaseException):
            future.result(timeout=STOP_WITHIN_SECONDS)
        raise
    finally:
        pool.shutdown(wait=False)


class ComputeActivities:
    def __init__(
        self,
        host: str,
        driver: LibvirtHost,
        db: Database,
        domain_type: str = "test",
        nic_mode: str = "network",
        console_dir: Path | None = None,
        check_boot_files: bool = True,
        images: ImageCache | None = None,
        disk_keys: Sequence[bytes] = (),
    ) -> None:
        """`console_dir`: where each guest's serial console is logged (`<server id>.log`);
        None for none (the test driver runs no guest that could write one). `disk_keys`: what
        this host makes the tokens of the disk copies it pulls from other hosts with (see
        hypervisor/disk_transfer.py)."""
        if nic_mode not in NIC_MODES:
            raise ValueError(f"nic_mode: must be one of {NIC_MODES} (got {nic_mode!r})")
        self.host = host
        self.driver = driver
        self.domain_type = domain_type
        self.nic_mode = nic_mode
        self.console_dir = console_dir
        self.check_boot_files = check_boot_files
        self.images = images  # None: no image is fetched (every disk starts blank)
        self.disk_keys = list(disk_keys)
        self.db = db
        self.recorder = StepRecorder(db)

    def console_log(self, server_id: str) -> Path | None:
        return self.console_dir / f"{server_id}.log" if self.console_dir is not None else None

    def _nics(self, ports: list[AllocatedPort]) -> tuple[NicSpec, ...]:
        if self.nic_mode == "none":
            return ()
        return tuple(
            NicSpec(
                mac=p.mac_address,
                network=HOST_NETWORK if self.nic_mode == "network" else "",
                port_id=p.port_id,
                interface_type=self.nic_mode,
            )
            for p in ports
        )

    def _check_boot_files(self, image_id: str, paths: list[str]) -> None:
        """A kernel or initrd the image names by path (kernel_path/initrd_path) must be on
        this host; another host may have it, so its absence is a host failure (reschedule),
        found before libvirt fails obscurely. (Not checked on the test driver, which never
        reads them; nor are cached images: they live on the libvirt daemon's side, which may
        be a host this worker cannot see.)"""
        if not self.check_boot_files:
            return
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            raise HostFailure(f"boot files of image {image_id} missing: {', '.join(missing)}")

    @staticmethod
    def _sorted(work: Callable[[], T], undo: bool = False) -> T:
        """Run one hypervisor call with its errors sorted for the workflow.

        A build step that fails for good on this host says so (non-retryable: the workflow
        reschedules or aborts). An undo step never gives up: whatever the error, it is
        retried with backoff until it succeeds, and a person watching the Temporal UI sees
        the attempts and the last error."""
        try:
            return work()
        except HostFailure as error:
            raise ApplicationError(str(error), type=HOST_FAILURE, non_retryable=not undo) from error
        except DomainDefinitionError as error:
            raise ApplicationError(
                str(error), type=BUILD_ABORTED, non_retryable=not undo
            ) from error
        except HypervisorError as error:
            # Transient (connection lost...): Temporal retries with backoff.
            raise ApplicationError(str(error), type="HypervisorError") from error

    def _step(self, ctx: StepContext, event: str, work: Callable[[], T], undo: bool = False) -> T:
        """A step of create or delete, recorded in the audit trail from here. (Those steps
        predate the rule that compute workers do not write to the database; the host plane
        moves their records to the control plane. New steps, like the power actions, are
        recorded by the workflow's last step instead.)"""
        started = utcnow()
        try:
            result = self._sorted(work, undo)
        except ApplicationError as error:
            self.recorder.record_failure(ctx, event, started, error.message, self.host)
            raise
        try:
            self.recorder.record(ctx, event, started, host=self.host)
        except Exception:  # the audit trail must not turn a done step into a host failure
            activity.logger.exception("could not record event %s", event)
        return result

    @implements(catalog.SPAWN_ON_HOST)
    def spawn_on_host(self, inp: SpawnInput) -> PowerResult:
        """Prepare the disk, define the domain, start it and wait until libvirt reports it
        running. One activity (one Temporal round trip) for the host's part of a build; each
        sub-step is idempotent and recorded as its own instance-action event, and a retry
        after a crash redoes only what is missing."""
        server_id, host = inp.ctx.server_id, self.host
        content, props = inp.image_content, inp.image_properties
        backing = self._cached_image(inp.ctx, content)
        fmt = content.disk_format if content is not None else "qcow2"
        cached_kernel, cached_initrd = self._boot_images(inp.ctx, inp.image_id, content, props)
        kernel = cached_kernel or props.get(KERNEL_PATH)
        initrd = cached_initrd or props.get(INITRD_PATH)
        host_files = [
            path
            for path, cached in ((kernel, cached_kernel), (initrd, cached_initrd))
            if path and cached is None
        ]
        if inp.original_disk:  # a resize on the same host (Nova's <instance>_resize)
            keep = inp.original_disk == KEEP_ORIGINAL_DISK
            self._step(
                inp.ctx,
                f"{'keep' if keep else 'restore'}_original_disk@{host}",
                partial(
                    self.driver.keep_original_disk if keep else self.driver.restore_original_disk,
                    server_id,
                ),
            )
        activity.heartbeat("preparing the disk")
        disk_path = self._step(
            inp.ctx,
            f"prepare_disk@{host}",
            lambda: self.driver.prepare_disk(
                server_id,
                inp.resources.disk_gb,
                inp.image_id,
                backing=backing,
                backing_format=fmt,
                on_wait=_heartbeat,
            ),
        )
        console_log = self.console_log(server_id)
        spec = DomainSpec(
            uuid=server_id,
            name=domain_name(server_id),
            display_name=inp.name,
            resources=inp.resources,
            disk_path=disk_path,
            nics=self._nics(inp.ports),
            domain_type=self.domain_type,
            kernel=kernel,
            initrd=initrd,
            cmdline=props.get(COMMAND_LINE, DEFAULT_COMMAND_LINE) if kernel else None,
            serial_log=str(console_log) if console_log is not None else None,
            project_id=inp.project_id,
            flavor_name=inp.flavor_name,
            image_id=inp.image_id,
        )

        def define() -> None:
            try:
                xml = build_domain_xml(spec)
            except ValueError as error:  # e.g. an image with an initrd but no kernel
                raise DomainDefinitionError(f"domain of {server_id}: {error}") from error
            self._check_boot_files(inp.image_id, host_files)
            self.driver.define(xml, on_wait=_heartbeat)

        activity.heartbeat("defining the domain")
        self._step(inp.ctx, f"define_domain@{host}", define)
        if inp.start:
            activity.heartbeat("starting the domain")
            self._step(
                inp.ctx,
                f"start_domain@{host}",
                lambda: self.driver.start(server_id, on_wait=_heartbeat),
            )
        state = self.driver.power_state(server_id)
        return PowerResult(power_state=int(LIBVIRT_POWER_STATE.get(state or 0, PowerState.NOSTATE)))

    def _cached_image(
        self, ctx: StepContext, content: ImageContent | None, event: str = "fetch_image"
    ) -> str | None:
        """The image's copy in this host's cache (fetched and checked first if need be), or
        None for an image without content."""
        if content is None or self.images is None:
            return None
        images = self.images
        activity.heartbeat(f"fetching image {content.image_id}")
        return self._step(
            ctx, f"{event}@{self.host}", lambda: images.ensure(content, on_wait=_heartbeat)
        )

    def _boot_images(
        self,
        ctx: StepContext,
        image_id: str,
        content: ImageContent | None,
        props: dict[str, str],
    ) -> tuple[str | None, str | None]:
        """The cached copies of the kernel and ramdisk the image's kernel_id/ramdisk_id name
        (fetched first if need be, each its own step), None for those it does not name. A
        reference the control plane could not resolve (its image deleted since the request
        was accepted) fails the build for good: the image boots on no host without it."""
        if content is None:
            return None, None
        cached: list[str | None] = []
        for prop, part, event in (
            (KERNEL_ID, content.kernel, "fetch_kernel"),
            (RAMDISK_ID, content.ramdisk, "fetch_ramdisk"),
        ):
            ref = props.get(prop)
            if ref and part is None:
                problem = ImageUnavailable(
                    f"image {image_id}: its {prop} {ref} is no longer an active image with "
                    "content in the image service"
                )
                self._step(ctx, f"{event}@{self.host}", partial(_raise, problem))
            cached.append(self._cached_image(ctx, part, event))
        return cached[0], cached[1]

    @implements(catalog.RECEIVE_DISK_ON_HOST)
    def receive_disk_on_host(self, inp: DiskTransferInput) -> None:
        """A move's disk, pulled here from the source host's compute worker (see
        hypervisor/disk_transfer.py), while this activity heartbeats. The image it is an
        overlay of is put in this host's cache first. The source's address is read at each
        attempt (a source worker that restarted serves at its new one); the token is made
        here, so none is in the workflow's history."""
        self._cached_image(inp.ctx, inp.image_content)
        activity.heartbeat(f"copying the disk from {inp.source_host}")
        self._step(
            inp.ctx,
            f"receive_disk@{self.host}",
            lambda: _heartbeating_until_stopped(
                lambda checkpoint: self.driver.receive_disk(
                    inp.ctx.server_id,
                    self._disk_source(inp),
                    inp.size_gb,
                    inp.image_id,
                    on_wait=checkpoint,
                )
            ),
        )

    def _disk_source(self, inp: DiskTransferInput) -> DiskSource:
        with self.db.read() as session:
            url = hosts.disk_transfer_url(session, inp.source_host)
        token = (
            make_token(self.disk_keys, inp.ctx.server_id, inp.source_host) if self.disk_keys else ""
        )
        return DiskSource(inp.source_host, url, token)

    @implements(catalog.DROP_ORIGINAL_DISK_ON_HOST)
    def drop_original_disk_on_host(self, inp: ServerRef) -> None:
        """A same-host resize confirmed: the disk kept for a revert is deleted."""
        self._step(
            inp.ctx,
            f"drop_original_disk@{self.host}",
            partial(self.driver.drop_original_disk, inp.ctx.server_id),
        )

    @implements(catalog.POWER_ACTION_ON_HOST)
    def power_action_on_host(self, inp: HostPowerInput) -> PowerResult:
        """Stop, start, reboot, pause, unpause, suspend or resume the server's domain, and
        report the power state libvirt reads afterwards. Idempotent: a domain already in the
        wanted state is left as it is (a retried reboot reboots once more, which is harmless)."""
        activity.heartbeat(inp.action)  # a retry whose host vanished then knows it ran
        state = self._sorted(
            lambda: _heartbeating(
                lambda: self.driver.power_action(
                    inp.ctx.server_id, inp.action, shutdown_timeout=inp.shutdown_timeout_seconds
                )
            )
        )
        return PowerResult(power_state=int(LIBVIRT_POWER_STATE.get(state, PowerState.NOSTATE)))

    @implements(catalog.DESTROY_ON_HOST)
    def destroy_on_host(self, inp: ServerRef) -> None:
        """Destroy and undefine the domain, then delete its disk and console log: the undo
        of spawn_on_host and the host's part of a delete. What is already gone counts as done."""
        server_id, host = inp.ctx.server_id, self.host
        self._step(
            inp.ctx,
            f"undefine_domain@{host}",
            lambda: self.driver.undefine(server_id, on_wait=_heartbeat),
            undo=True,
        )
        self._step(
            inp.ctx, f"delete_disk@{host}", lambda: self.driver.delete_disk(server_id), undo=True
        )
        console_log = self.console_log(server_id)
        if console_log is not None:
            console_log.unlink(missing_ok=True)

    @implements(catalog.DESCRIBE_DOMAIN)
    def describe_domain(self, inp: DiagnosticsInput) -> DomainDiagnostics:
        """Read-only: what libvirt on this host says about the server's domain."""
        try:
            info = self.driver.describe(inp.server_id)
        except HypervisorError as error:
            raise ApplicationError(str(error), type="HypervisorError") from error
        if info is None:
            return DomainDiagnostics(defined=False)
        return DomainDiagnostics(
            defined=True,
            state=info.state,
            vcpus=info.vcpus,
            memory_mb=info.memory_mb,
            cpu_time_ns=info.cpu_time_ns,
            mac_addresses=list(info.mac_addresses),
        )

    @implements(catalog.READ_CONSOLE)
    def read_console(self, inp: ConsoleOutputInput) -> ConsoleOutput:
        """Read-only: the last lines of the server's console log on this host (at most its
        last MAX_CONSOLE_BYTES are read). A host on the test driver runs no guest and logs no
        console: its answer is empty, as is that of a guest that has written nothing yet."""
        log = self.console_log(inp.server_id)
        if log is None:
            return ConsoleOutput(output="")
        try:
            return ConsoleOutput(output=read_tail(log, inp.length))
        except OSError as error:  # e.g. permissions: retrying cannot fix it
            raise ApplicationError(
                f"cannot read the console log of {inp.server_id} on {self.host}: {error}",
                type="ConsoleUnreadable",
                non_retryable=True,
            ) from error
