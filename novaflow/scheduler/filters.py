"""Host filters: each class is one yes/no rule deciding whether a host can take a request.

``host_passes`` states the rule for one host. The scheduler calls ``filter_all`` on the whole
candidate list; the resource filters override it with the same rule inlined in a list
comprehension, because a Python call per host per filter is the dominant cost at 10,000 hosts.
``applies`` lets a filter tell the scheduler it cannot reject anything for a given request (no
AZ asked, no server group...), so the pass over the hosts is skipped entirely.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from novaflow.scheduler.host_state import HostState, RequestSpec


class HostFilter(ABC):
    """Base class: one rule, evaluated per host."""

    name: ClassVar[str]

    def applies(self, spec: RequestSpec) -> bool:
        """False when this filter cannot reject any host for ``spec`` (the scheduler skips it)."""
        return True

    @abstractmethod
    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """True if ``host`` may take the server described by ``spec``."""

    def filter_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[HostState]:
        """The hosts that pass, in their original order."""
        passes = self.host_passes
        return [h for h in hosts if passes(h, spec)]


class ComputeFilter(HostFilter):
    """Passes hosts whose compute service is enabled by the operator and up (fresh heartbeat)."""

    name = "ComputeFilter"

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host.enabled and host.up

    def filter_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[HostState]:
        return [h for h in hosts if h.enabled and h.up]


class IgnoreHostsFilter(HostFilter):
    """Rejects hosts listed in ``spec.ignore_hosts`` (already tried by a reschedule)."""

    name = "IgnoreHostsFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.ignore_hosts)

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host.name not in spec.ignore_hosts

    def filter_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[HostState]:
        ignore = spec.ignore_hosts
        return [h for h in hosts if h.name not in ignore]


class AvailabilityZoneFilter(HostFilter):
    """Passes hosts in the requested availability zone; no zone requested passes every host."""

    name = "AvailabilityZoneFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return spec.availability_zone is not None

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return spec.availability_zone is None or host.availability_zone == spec.availability_zone

    def filter_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[HostState]:
        az = spec.availability_zone
        if az is None:
            return list(hosts)
        return [h for h in hosts if h.availability_zone == az]


# Spellings of the same architecture that images and hypervisors use interchangeably.
_ARCH_ALIASES: dict[str, str] = {"amd64": "x86_64", "x86-64": "x86_64", "arm64": "aarch64"}


def canonical_arch(arch: str) -> str:
    """Lower-case ``arch`` and map aliases to one name ("amd64" -> "x86_64", "arm64" ->
    "aarch64")."""
    arch = arch.strip().lower()
    return _ARCH_ALIASES.get(arch, arch)


def requested_arch(spec: RequestSpec) -> str | None:
    """Canonical architecture the image asks for (``hw_architecture``, else ``architecture``)."""
    props = spec.image_properties
    arch = props.get("hw_architecture") or props.get("architecture")
    return canonical_arch(arch) if arch else None


class ImagePropertiesFilter(HostFilter):
    """Passes hosts whose CPU architecture matches the image's ``hw_architecture`` (or legacy
    ``architecture``) property; aliases such as amd64/x86_64 and arm64/aarch64 are equal.
    An image without an architecture property runs anywhere."""

    name = "ImagePropertiesFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return requested_arch(spec) is not None

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        want = requested_arch(spec)
        return want is None or canonical_arch(host.arch) == want

    def filter_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[HostState]:
        want = requested_arch(spec)
        if want is None:
            return list(hosts)
        # A fleet has a handful of distinct spellings: canonicalize each once, not per host.
        matching = {a for a in {h.arch for h in hosts} if canonical_arch(a) == want}
        return [h for h in hosts if h.arch in matching]


class ServerGroupAffinityFilter(HostFilter):
    """Policy "affinity": once the group has members, only the hosts holding them pass."""

    name = "ServerGroupAffinityFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return spec.group_policy == "affinity" and bool(spec.group_hosts)

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        if not self.applies(spec):
            return True
        return host.name in spec.group_hosts

    def filter_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[HostState]:
        if not self.applies(spec):
            return list(hosts)
        group = spec.group_hosts
        return [h for h in hosts if h.name in group]


class ServerGroupAntiAffinityFilter(HostFilter):
    """Policy "anti-affinity": hosts already holding a member of the group are rejected."""

    name = "ServerGroupAntiAffinityFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return spec.group_policy == "anti-affinity" and bool(spec.group_hosts)

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        if not self.applies(spec):
            return True
        return host.name not in spec.group_hosts

    def filter_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[HostState]:
        if not self.applies(spec):
            return list(hosts)
        group = spec.group_hosts
        return [h for h in hosts if h.name not in group]


class RamFilter(HostFilter):
    """Passes hosts with enough free RAM, overcommit included:
    ``memory_mb * ram_allocation_ratio - memory_mb_used >= spec.memory_mb``."""

    name = "RamFilter"

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host.free_memory_mb >= spec.memory_mb

    def filter_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[HostState]:
        need = spec.memory_mb
        return [h for h in hosts if h.memory_mb * h.ram_allocation_ratio - h.memory_mb_used >= need]


class CoreFilter(HostFilter):
    """Passes hosts with enough free vCPUs, overcommit included:
    ``vcpus * cpu_allocation_ratio - vcpus_used >= spec.vcpus``."""

    name = "CoreFilter"

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host.free_vcpus >= spec.vcpus

    def filter_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[HostState]:
        need = spec.vcpus
        return [h for h in hosts if h.vcpus * h.cpu_allocation_ratio - h.vcpus_used >= need]


class DiskFilter(HostFilter):
    """Passes hosts with enough free disk, overcommit included:
    ``disk_gb * disk_allocation_ratio - disk_gb_used >= spec.disk_gb``."""

    name = "DiskFilter"

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host.free_disk_gb >= spec.disk_gb

    def filter_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[HostState]:
        need = spec.disk_gb
        return [h for h in hosts if h.disk_gb * h.disk_allocation_ratio - h.disk_gb_used >= need]


FILTERS: dict[str, type[HostFilter]] = {
    cls.name: cls
    for cls in (
        ComputeFilter,
        IgnoreHostsFilter,
        AvailabilityZoneFilter,
        ImagePropertiesFilter,
        ServerGroupAffinityFilter,
        ServerGroupAntiAffinityFilter,
        RamFilter,
        CoreFilter,
        DiskFilter,
    )
}

# Cheap, highly selective checks first (status, explicit exclusions, zone, architecture, group
# placement) so the arithmetic resource filters run over as few hosts as possible.
DEFAULT_FILTERS: tuple[str, ...] = (
    "ComputeFilter",
    "IgnoreHostsFilter",
    "AvailabilityZoneFilter",
    "ImagePropertiesFilter",
    "ServerGroupAffinityFilter",
    "ServerGroupAntiAffinityFilter",
    "RamFilter",
    "CoreFilter",
    "DiskFilter",
)
