"""Host weighers: rank the hosts that passed every filter.

Like Nova, each weigher produces a raw value per host; the scheduler min-max normalizes those
values to 0..1 across the candidates (all equal -> all 0) and sums ``multiplier * normalized``
over the weighers. The highest total wins. A positive multiplier favours hosts with a high raw
value, a negative one favours hosts with a low raw value.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from novaflow.scheduler.host_state import HostState, RequestSpec


class HostWeigher(ABC):
    """Base class: one raw value per host, scaled by ``multiplier`` after normalization."""

    name: ClassVar[str]

    def __init__(self, multiplier: float = 1.0) -> None:
        multiplier = float(multiplier)
        if not math.isfinite(multiplier):
            raise ValueError(f"{self.name}: multiplier must be a finite number, got {multiplier}")
        self.multiplier = multiplier

    def __repr__(self) -> str:
        return f"{type(self).__name__}(multiplier={self.multiplier})"

    def applies(self, spec: RequestSpec) -> bool:
        """False when every host would get the same raw value for ``spec`` (skip the pass)."""
        return True

    @abstractmethod
    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        """Raw (un-normalized) value of ``host`` for ``spec``."""

    def weigh_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[float]:
        """Raw values for ``hosts``, in order."""
        weigh = self.weigh
        return [weigh(h, spec) for h in hosts]


def normalize(values: Sequence[float]) -> list[float]:
    """Min-max scale ``values`` to 0..1; if they are all equal every result is 0."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi == lo:
        return [0.0] * len(values)
    span = hi - lo
    return [(v - lo) / span for v in values]


class RAMWeigher(HostWeigher):
    """Free RAM (overcommit included). Positive multiplier spreads load onto the emptiest
    hosts; negative packs onto the fullest."""

    name = "RAMWeigher"

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        return host.free_memory_mb

    def weigh_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[float]:
        return [h.memory_mb * h.ram_allocation_ratio - h.memory_mb_used for h in hosts]


class CPUWeigher(HostWeigher):
    """Free vCPUs (overcommit included). Positive multiplier spreads, negative packs."""

    name = "CPUWeigher"

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        return host.free_vcpus

    def weigh_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[float]:
        return [h.vcpus * h.cpu_allocation_ratio - h.vcpus_used for h in hosts]


class ServerGroupSoftAffinityWeigher(HostWeigher):
    """Policy "soft-affinity": hosts already holding group members weigh 1, others 0, so with a
    positive multiplier the group stays together when it can (but may spill over)."""

    name = "ServerGroupSoftAffinityWeigher"

    def applies(self, spec: RequestSpec) -> bool:
        return spec.group_policy == "soft-affinity" and bool(spec.group_hosts)

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        if spec.group_policy != "soft-affinity":
            return 0.0
        return 1.0 if host.name in spec.group_hosts else 0.0

    def weigh_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[float]:
        if spec.group_policy != "soft-affinity":
            return [0.0] * len(hosts)
        group = spec.group_hosts
        return [1.0 if h.name in group else 0.0 for h in hosts]


class ServerGroupSoftAntiAffinityWeigher(HostWeigher):
    """Policy "soft-anti-affinity": hosts already holding group members weigh -1, others 0, so
    with a positive multiplier members spread out when they can (but may share a host)."""

    name = "ServerGroupSoftAntiAffinityWeigher"

    def applies(self, spec: RequestSpec) -> bool:
        return spec.group_policy == "soft-anti-affinity" and bool(spec.group_hosts)

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        if spec.group_policy != "soft-anti-affinity":
            return 0.0
        return -1.0 if host.name in spec.group_hosts else 0.0

    def weigh_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[float]:
        if spec.group_policy != "soft-anti-affinity":
            return [0.0] * len(hosts)
        group = spec.group_hosts
        return [-1.0 if h.name in group else 0.0 for h in hosts]


WEIGHERS: dict[str, type[HostWeigher]] = {
    cls.name: cls
    for cls in (
        RAMWeigher,
        CPUWeigher,
        ServerGroupSoftAffinityWeigher,
        ServerGroupSoftAntiAffinityWeigher,
    )
}

# name -> multiplier. RAM and CPU at +1.0 spread instances across hosts (Nova's default).
DEFAULT_WEIGHERS: dict[str, float] = {
    "RAMWeigher": 1.0,
    "CPUWeigher": 1.0,
    "ServerGroupSoftAffinityWeigher": 1.0,
    "ServerGroupSoftAntiAffinityWeigher": 1.0,
}
