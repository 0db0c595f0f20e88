"""Host-side steps, run by the compute worker of the host that owns the domain (its own task
queue `compute@<host>`). Each is idempotent: a step that already happened is a no-op."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.base import StepRecorder
from novaflow.db import Database
from novaflow.models import utcnow
from novaflow.states import LIBVIRT_POWER_STATE, PowerState
from novaflow.virt.domain_xml import DomainSpec, NicSpec, build_domain_xml, domain_name
from novaflow.virt.driver import DomainDefinitionError, HostFailure, HypervisorError, LibvirtHost
from workflows.contracts import (
    BUILD_ABORTED,
    HOST_FAILURE,
    DiagnosticsInput,
    DomainDiagnostics,
    PowerResult,
    ServerRef,
    SpawnInput,
    StepContext,
)

T = TypeVar("T")
HOST_NETWORK = "default"  # the libvirt network every port is plugged into on a host


def _heartbeat() -> None:
    activity.heartbeat()


class ComputeActivities:
    def __init__(
        self, host: str, driver: LibvirtHost, db: Database, domain_type: str = "test"
    ) -> None:
        self.host = host
        self.driver = driver
        self.domain_type = domain_type
        self.recorder = StepRecorder(db)

    def _step(self, ctx: StepContext, event: str, work: Callable[[], T], undo: bool = False) -> T:
        """Run one hypervisor step, sort its errors, record it in the audit trail.

        A build step that fails for good on this host says so (non-retryable: the workflow
        reschedules or aborts). An undo step never gives up: whatever the error, it is
        retried with backoff until it succeeds, and a person watching the Temporal UI sees
        the attempts and the last error."""
        started = utcnow()
        try:
            result = work()
        except HostFailure as error:
            self.recorder.record_failure(ctx, event, started, str(error), self.host)
            raise ApplicationError(str(error), type=HOST_FAILURE, non_retryable=not undo) from error
        except DomainDefinitionError as error:
            self.recorder.record_failure(ctx, event, started, str(error), self.host)
            raise ApplicationError(
                str(error), type=BUILD_ABORTED, non_retryable=not undo
            ) from error
        except HypervisorError as error:
            # Transient (connection lost...): Temporal retries with backoff.
            self.recorder.record_failure(ctx, event, started, str(error), self.host)
            raise ApplicationError(str(error), type="HypervisorError") from error
        self.recorder.record(ctx, event, started, host=self.host)
        return result

    @activity.defn(name="spawn_on_host")
    def spawn_on_host(self, inp: SpawnInput) -> PowerResult:
        """Prepare the disk, define the domain, start it and wait until libvirt reports it
        running. One activity (one Temporal round trip) for the host's part of a build; each
        sub-step is idempotent and recorded as its own instance-action event, and a retry
        after a crash redoes only what is missing."""
        server_id, host = inp.ctx.server_id, self.host
        activity.heartbeat("preparing the disk")
        disk_path = self._step(
            inp.ctx,
            f"prepare_disk@{host}",
            lambda: self.driver.prepare_disk(
                server_id, inp.disk_gb, inp.image_id, on_wait=_heartbeat
            ),
        )
        spec = DomainSpec(
            uuid=server_id,
            name=domain_name(server_id),
            display_name=inp.name,
            vcpus=inp.vcpus,
            memory_mb=inp.memory_mb,
            disk_path=disk_path,
            nics=tuple(
                NicSpec(mac=p.mac_address, network=HOST_NETWORK, port_id=p.port_id)
                for p in inp.ports
            ),
            domain_type=self.domain_type,
            project_id=inp.project_id,
            flavor_name=inp.flavor_name,
            image_id=inp.image_id,
        )
        activity.heartbeat("defining the domain")
        self._step(
            inp.ctx,
            f"define_domain@{host}",
            lambda: self.driver.define(build_domain_xml(spec), on_wait=_heartbeat),
        )
        activity.heartbeat("starting the domain")
        self._step(
            inp.ctx,
            f"start_domain@{host}",
            lambda: self.driver.start(server_id, on_wait=_heartbeat),
        )
        state = self.driver.power_state(server_id)
        return PowerResult(power_state=int(LIBVIRT_POWER_STATE.get(state or 0, PowerState.NOSTATE)))

    @activity.defn(name="destroy_on_host")
    def destroy_on_host(self, inp: ServerRef) -> None:
        """Destroy and undefine the domain, then delete its disk: the undo of spawn_on_host
        and the host's part of a delete. What is already gone counts as done."""
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

    @activity.defn(name="describe_domain")
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

    def all(self) -> list[Callable[..., object]]:
        return [
            self.spawn_on_host,
            self.destroy_on_host,
            self.describe_domain,
        ]
