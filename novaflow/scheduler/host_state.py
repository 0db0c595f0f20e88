"""Plain data the scheduler works on: a snapshot of one compute host and one boot request.

Both are built by the caller (from the database, heartbeats and the flavor/image of the request);
the scheduler only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from novaflow.resources import Resources

GROUP_POLICIES: frozenset[str] = frozenset(
    {"affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"}
)


@dataclass(slots=True)
class HostState:
    """Capacity and status of one compute host at scheduling time."""

    name: str
    availability_zone: str = "nova"
    enabled: bool = True
    up: bool = True  # heartbeat fresh (computed by caller)
    arch: str = "x86_64"
    vcpus: int = 0
    vcpus_used: int = 0
    cpu_allocation_ratio: float = 4.0
    memory_mb: int = 0
    memory_mb_used: int = 0
    ram_allocation_ratio: float = 1.0
    disk_gb: int = 0
    disk_gb_used: int = 0
    disk_allocation_ratio: float = 1.0
    instance_count: int = 0

    @property
    def free_vcpus(self) -> float:
        """vCPUs still allocatable, overcommit included (negative when over-allocated)."""
        return self.vcpus * self.cpu_allocation_ratio - self.vcpus_used

    @property
    def free_memory_mb(self) -> float:
        """RAM (MiB) still allocatable, overcommit included (negative when over-allocated)."""
        return self.memory_mb * self.ram_allocation_ratio - self.memory_mb_used

    @property
    def free_disk_gb(self) -> float:
        """Disk (GiB) still allocatable, overcommit included (negative when over-allocated)."""
        return self.disk_gb * self.disk_allocation_ratio - self.disk_gb_used


@dataclass(slots=True)
class RequestSpec:
    """What one server needs from a host, plus its placement constraints."""

    server_id: str
    resources: Resources
    availability_zone: str | None = None
    # e.g. {"hw_architecture": "aarch64"} or {"architecture": "x86_64"}
    image_properties: dict[str, str] = field(default_factory=dict)
    # "affinity" | "anti-affinity" | "soft-affinity" | "soft-anti-affinity"
    group_policy: str | None = None
    group_hosts: frozenset[str] = frozenset()  # hosts already holding members of the server group
    ignore_hosts: frozenset[str] = frozenset()  # hosts already tried (reschedule)

    @property
    def vcpus(self) -> int:
        return self.resources.vcpus

    @property
    def memory_mb(self) -> int:
        return self.resources.memory_mb

    @property
    def disk_gb(self) -> int:
        return self.resources.disk_gb

    def __post_init__(self) -> None:
        if self.group_policy is not None and self.group_policy not in GROUP_POLICIES:
            raise ValueError(
                f"unknown server group policy {self.group_policy!r}; "
                f"expected one of {sorted(GROUP_POLICIES)}"
            )
        # Accept any iterable of names from callers, but keep O(1) membership tests.
        if not isinstance(self.group_hosts, frozenset):
            self.group_hosts = frozenset(self.group_hosts)
        if not isinstance(self.ignore_hosts, frozenset):
            self.ignore_hosts = frozenset(self.ignore_hosts)
