"""Host scheduling for novaflow: Nova-style filters and weighers over plain host snapshots.

Pure domain code (no database, Temporal or libvirt): callers build ``HostState`` snapshots and a
``RequestSpec`` and ask ``FilterScheduler.select`` for the chosen host plus alternates.
"""

from novaflow.scheduler.filters import DEFAULT_FILTERS, FILTERS, HostFilter
from novaflow.scheduler.host_state import HostState, RequestSpec
from novaflow.scheduler.scheduler import FilterScheduler, NoValidHost
from novaflow.scheduler.weighers import DEFAULT_WEIGHERS, WEIGHERS, HostWeigher

__all__ = [
    "DEFAULT_FILTERS",
    "DEFAULT_WEIGHERS",
    "FILTERS",
    "WEIGHERS",
    "FilterScheduler",
    "HostFilter",
    "HostState",
    "HostWeigher",
    "NoValidHost",
    "RequestSpec",
]
