"""The hypervisor side of a compute host: domain XML, test-driver hosts, the libvirt driver."""

from novaflow.virt.domain_xml import DomainSpec, NicSpec, build_domain_xml, domain_name
from novaflow.virt.driver import (
    DomainDefinitionError,
    DomainNotFoundError,
    HostFailure,
    HypervisorError,
    LibvirtHost,
    NodeInfo,
)
from novaflow.virt.faults import FaultInjector, clear_faults, set_fault
from novaflow.virt.host_xml import build_host_xml

__all__ = [
    "DomainDefinitionError",
    "DomainNotFoundError",
    "DomainSpec",
    "FaultInjector",
    "HostFailure",
    "HypervisorError",
    "LibvirtHost",
    "NicSpec",
    "NodeInfo",
    "build_domain_xml",
    "build_host_xml",
    "clear_faults",
    "domain_name",
    "set_fault",
]
