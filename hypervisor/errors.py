"""What can go wrong on a hypervisor, sorted by what the caller should do next."""

from __future__ import annotations


class HypervisorError(Exception):
    """Transient: the connection was lost, an RPC failed, a wait timed out. Retry."""


class DomainDefinitionError(Exception):
    """Permanent: libvirt rejected the domain XML or an argument. Do not retry."""


class DomainNotFoundError(DomainDefinitionError):
    """The domain an operation needs (e.g. start) is not defined on this host."""


class HostFailure(Exception):
    """This host cannot build right now (injected fault, out of resources). Reschedule."""
