"""Nova-shaped response bodies, built from rows. No column leaks into a response by accident:
every field is named here."""

from __future__ import annotations

import hashlib
import json
import re
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from api.auth import RequestContext
from api.microversion import current
from novaflow import ipam, server_groups, server_tags
from novaflow.errors import NotFound
from novaflow.hosts import heartbeat_fresh
from novaflow.images import KERNEL_ID, RAMDISK_ID
from novaflow.ipam import PortView
from novaflow.models import (
    Flavor,
    Host,
    Image,
    InstanceAction,
    InstanceActionEvent,
    Migration,
    Port,
    Server,
    ServerGroup,
    utcnow,
)
from novaflow.networks import NetworkUsage
from novaflow.servers import hostname_for
from novaflow.states import LIBVIRT_POWER_STATE, PowerState, derive_status
from workflows.contracts import DomainDiagnostics

# The address the caller used (set per request by api.app's middleware): links point back to
# wherever the API is reached from, behind a proxy or not.
base_url: ContextVar[str] = ContextVar("base_url", default="http://127.0.0.1:8774")


def iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def iso_micro(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def links(kind: str, item_id: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{base_url.get()}/v2.1/{kind}/{item_id}"},
        {"rel": "bookmark", "href": f"{base_url.get()}/{kind}/{item_id}"},
    ]


def flavor_view(flavor: Flavor, detail: bool = True, extra_specs: bool = False) -> dict[str, Any]:
    """A flavor; its extra specs (2.61) only with `extra_specs` (the caller may read them)."""
    body: dict[str, Any] = {
        "id": flavor.id,
        "name": flavor.name,
        "links": links("flavors", flavor.id),
    }
    if current.get() >= (2, 55):
        body["description"] = None  # (the seeded flavors have none)
    if detail:
        body.update(
            vcpus=flavor.vcpus,
            ram=flavor.ram,
            disk=flavor.disk,
            swap="",
            **{
                "OS-FLV-EXT-DATA:ephemeral": 0,
                "OS-FLV-DISABLED:disabled": False,
                "os-flavor-access:is_public": flavor.is_public,
                "rxtx_factor": 1.0,
            },
        )
        if extra_specs and current.get() >= (2, 61):
            body["extra_specs"] = {}  # (the seeded flavors have none)
    return body


# How Nova's image proxy shows Glance's statuses.
NOVA_IMAGE_STATUS = {"queued": "SAVING", "saving": "SAVING", "active": "ACTIVE", "killed": "ERROR"}


def image_view(image: Image, detail: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": image.id,
        "name": image.name,
        "links": links("images", image.id),
    }
    if detail:
        status = NOVA_IMAGE_STATUS.get(image.status, image.status.upper())
        body.update(
            {
                "status": status,
                "progress": 100 if status == "ACTIVE" else 0,
                "minDisk": image.min_disk,
                "minRam": image.min_ram,
                "OS-EXT-IMG-SIZE:size": image.size,
                "metadata": image.properties,
                "created": iso(image.created_at),
                "updated": iso(image.updated_at or image.created_at),
            }
        )
    return body


def addresses(session: Session, server_id: str) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {}
    for port in ipam.ports_of(session, server_id):
        entries = result.setdefault(port.network_name, [])
        for address in port.fixed_ips:
            entries.append(
                {
                    "version": 4,
                    "addr": address,
                    "OS-EXT-IPS:type": "fixed",
                    "OS-EXT-IPS-MAC:mac_addr": port.mac_address,
                }
            )
        for address in port.floating_ips:
            entries.append(
                {
                    "version": 4,
                    "addr": address,
                    "OS-EXT-IPS:type": "floating",
                    "OS-EXT-IPS-MAC:mac_addr": port.mac_address,
                }
            )
    return result


def server_summary(server: Server) -> dict[str, Any]:
    return {"id": server.id, "name": server.name, "links": links("servers", server.id)}


# What PUT /servers/{id} and rebuild answer with: Nova's basic view, none of the extensions'
# fields; those of later versions only from theirs (server_view adds them by version).
UPDATE_FIELDS = (
    "id", "name", "status", "tenant_id", "user_id", "metadata", "hostId", "image", "flavor",
    "created", "updated", "addresses", "accessIPv4", "accessIPv6", "links", "progress",
    "OS-DCF:diskConfig", "fault", "locked", "description", "tags",
)  # fmt: skip


def server_update_view(session: Session, server: Server, ctx: RequestContext) -> dict[str, Any]:
    """PUT /servers/{id}'s answer: Nova's basic view (addresses without their type and MAC)."""
    body = {k: v for k, v in server_view(session, server, ctx).items() if k in UPDATE_FIELDS}
    body["addresses"] = {
        network: [{"version": a["version"], "addr": a["addr"]} for a in entries]
        for network, entries in body["addresses"].items()
    }
    return body


def server_rebuild_view(session: Session, server: Server, ctx: RequestContext) -> dict[str, Any]:
    """The rebuild's answer: the update's view, with the key (2.54) and user data (2.57) the
    rebuild may have replaced."""
    body = server_update_view(session, server, ctx)
    version = current.get()
    if version >= (2, 54):
        body["key_name"] = server.key_name
    if version >= (2, 57):
        body["user_data"] = server.user_data
    return body


@dataclass(frozen=True)
class Related:
    """What server_view reads beside a server row, read for a whole page of servers at once
    (one query each) rather than once per server: tags (2.26), images (the admin's kernel and
    ramdisk, 2.3), hosts (host_status, 2.16): only what the version and the caller show."""

    tags: dict[str, list[str]]
    images: dict[str, Image]
    hosts: dict[str, Host]

    @classmethod
    def of(
        cls,
        session: Session,
        servers: list[Server],
        ctx: RequestContext,
        down_after: timedelta | None = None,
    ) -> Related:
        """What server_view will show of `servers` at the negotiated version, and no more."""
        version = current.get()
        tags: dict[str, list[str]] = {}
        images: dict[str, Image] = {}
        hosts: dict[str, Host] = {}
        if servers and version >= (2, 26):
            tags = server_tags.tags_of_servers(session, [s.id for s in servers])
        if servers and ctx.is_admin and version >= (2, 3):
            ids = {s.image_id for s in servers}
            images = {i.id: i for i in session.exec(select(Image).where(col(Image.id).in_(ids)))}
        names = {s.host for s in servers if s.host}
        if names and down_after is not None and version >= (2, 16):
            hosts = {h.name: h for h in session.exec(select(Host).where(col(Host.name).in_(names)))}
        return cls(tags, images, hosts)


def server_view(
    session: Session,
    server: Server,
    ctx: RequestContext,
    down_after: timedelta | None = None,
    related: Related | None = None,
) -> dict[str, Any]:
    """A server as GET /servers/{id} shows it at the negotiated version; with `down_after`
    (how long a host may miss heartbeats; given for a caller whom the policy lets see it),
    its host's status too (2.16). A list passes what it read for its whole page (`related`);
    without it, one server's are read here."""
    if related is None:
        related = Related.of(session, [server], ctx, down_after)
    flavor = session.get(Flavor, server.flavor_id)
    body: dict[str, Any] = {
        "id": server.id,
        "name": server.name,
        "status": derive_status(server.vm_state, server.task_state),
        "tenant_id": server.project_id,
        "user_id": server.user_id,
        "metadata": server.metadata_,
        "hostId": _host_id(server),
        "image": {"id": server.image_id, "links": links("images", server.image_id)},
        "flavor": (
            embedded_flavor(server, flavor)
            if current.get() >= (2, 47)
            else {"id": server.flavor_id, "links": links("flavors", server.flavor_id)}
        ),
        "created": iso(server.created_at),
        "updated": iso(server.updated_at),
        "addresses": addresses(session, server.id),
        "accessIPv4": "",
        "accessIPv6": "",
        "links": links("servers", server.id),
        "key_name": server.key_name,
        "config_drive": "",
        "progress": 100 if server.vm_state == "active" else 0,
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": server.availability_zone or "nova",
        "OS-EXT-STS:vm_state": server.vm_state,
        "OS-EXT-STS:task_state": server.task_state,
        "OS-EXT-STS:power_state": server.power_state,
        "OS-SRV-USG:launched_at": iso_micro(server.launched_at),
        "OS-SRV-USG:terminated_at": iso_micro(server.terminated_at),
        "os-extended-volumes:volumes_attached": [],
        "security_groups": [{"name": "default"}],
    }
    version = current.get()
    if version >= (2, 9):
        body["locked"] = server.locked
    if version >= (2, 73):
        body["locked_reason"] = server.locked_reason
    if ctx.is_admin:
        body.update(
            {
                "OS-EXT-SRV-ATTR:host": server.host,
                "OS-EXT-SRV-ATTR:hypervisor_hostname": server.host,
                "OS-EXT-SRV-ATTR:instance_name": f"instance-{server.id}",
            }
        )
        if version >= (2, 3):
            body.update(extended_attributes(server, related.images.get(server.image_id)))
    if version >= (2, 16) and down_after is not None:
        host = related.hosts.get(server.host) if server.host else None
        body["host_status"] = host_status(host, down_after)
    if version >= (2, 19):
        body["description"] = server.description
    if version >= (2, 26):
        body["tags"] = related.tags.get(server.id, [])
    if server.vm_state == "error" and server.fault_message:
        message = server.fault_message
        if not ctx.is_admin:
            message = HostNames(session, server.project_id).hide(message)
        fault: dict[str, Any] = {
            "code": server.fault_code or 500,
            "message": message,
            "created": iso(server.fault_created),
        }
        if ctx.is_admin and server.fault_details:
            fault["details"] = server.fault_details
        body["fault"] = fault
    return body


def extended_attributes(server: Server, image: Image | None) -> dict[str, Any]:
    """The admin's extended server attributes Nova adds at 2.3. The kernel and ramdisk are the
    server's image's (its properties name them, "" if it has none or is gone); the root disk is
    vda once a host built the domain."""
    properties = image.properties if image is not None else {}
    return {
        "OS-EXT-SRV-ATTR:reservation_id": server.reservation_id,
        "OS-EXT-SRV-ATTR:launch_index": server.launch_index,
        "OS-EXT-SRV-ATTR:hostname": hostname(server),
        "OS-EXT-SRV-ATTR:kernel_id": properties.get(KERNEL_ID, ""),
        "OS-EXT-SRV-ATTR:ramdisk_id": properties.get(RAMDISK_ID, ""),
        "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda" if server.host else None,
        "OS-EXT-SRV-ATTR:user_data": server.user_data,
    }


def hostname(server: Server) -> str:
    """The guest's hostname, set when the server was created (a rename keeps it, as Nova's)."""
    return server.hostname or hostname_for(server.name, server.id)


def host_status(host: Host | None, down_after: timedelta) -> str:
    """Nova's host_status (2.16) of a server's host, in Nova's order (compute/api.py's
    get_instance_host_status): DOWN if an operator forced it down; else MAINTENANCE if it is
    disabled; else UP while it heartbeats, UNKNOWN once it stops. "" for a server without a
    host."""
    if host is None:
        return ""
    if host.forced_down:
        return "DOWN"
    if not host.enabled:
        return "MAINTENANCE"
    return "UP" if heartbeat_fresh(host, utcnow(), down_after) else "UNKNOWN"


def embedded_flavor(server: Server, flavor: Flavor | None) -> dict[str, Any]:
    """The flavor a server was built with, as Nova embeds it from 2.47 (without its id: the
    flavor may be gone or changed since)."""
    return {
        "original_name": flavor.name if flavor else server.flavor_id,
        "vcpus": server.vcpus,
        "ram": server.memory_mb,
        "disk": server.disk_gb,
        "ephemeral": 0,
        "swap": 0,
        "extra_specs": {},
    }


def server_extension_view(session: Session, server: Server) -> dict[str, Any]:
    """What novaflow knows of a server beyond Nova's 2.1 body (GET /v2.1/os-novaflow-servers):
    its lock and the flavor it was built with, as Nova shows them from 2.73 and 2.47."""
    return {
        "id": server.id,
        "locked": server.locked,
        "locked_reason": server.locked_reason,
        "flavor": {
            "id": server.flavor_id,
            **embedded_flavor(server, session.get(Flavor, server.flavor_id)),
        },
    }


def _host_id(server: Server) -> str:
    return host_id(server.project_id, server.host)


def host_id(project_id: str, host: str | None) -> str:
    """Nova's hostId: an opaque per-project hash of the host, so users can see co-location."""
    if not host:
        return ""
    return hashlib.sha224(f"{project_id}{host}".encode()).hexdigest()


class HostNames:
    """Hides host names from a non-admin, as Nova does: in a text (a fault, an event's error)
    each host's name becomes `host <its hostId's first 8 digits>`, which tells the hosts apart
    (as hostId does) without naming them."""

    def __init__(self, session: Session, project_id: str) -> None:
        names = sorted(set(session.exec(select(Host.name))), key=len, reverse=True)
        self.project_id = project_id
        self._pattern = (
            re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, names)) + r")(?![\w.-])")
            if names
            else None
        )

    def hide(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(
            lambda found: f"host {host_id(self.project_id, found.group(1))[:8]}", text
        )


def event_name(event: str) -> str:
    """A step's event without the host it ran on (`prepare_disk@host-b` -> `prepare_disk`)."""
    return event.partition("@")[0]


def action_view(action: InstanceAction) -> dict[str, Any]:
    body = {
        "action": action.action,
        "instance_uuid": action.server_id,
        "request_id": action.request_id,
        "user_id": action.user_id,
        "project_id": action.project_id,
        "start_time": iso_micro(action.start_time),
        "message": action.message,
    }
    if current.get() >= (2, 58):
        body["updated_at"] = iso_micro(action.finish_time or action.start_time)
    return body


def action_events(
    session: Session, action: InstanceAction, ctx: RequestContext
) -> list[dict[str, Any]]:
    rows = session.exec(
        select(InstanceActionEvent)
        .where(InstanceActionEvent.server_id == action.server_id)
        .where(InstanceActionEvent.request_id == action.request_id)
        .order_by(col(InstanceActionEvent.start_time), col(InstanceActionEvent.finish_time))
    ).all()
    events = []
    names = None if ctx.is_admin else HostNames(session, action.project_id)
    for row in rows:
        event: dict[str, Any] = {
            "event": row.event if names is None else event_name(row.event),
            "start_time": iso_micro(row.start_time),
            "finish_time": iso_micro(row.finish_time),
            "result": row.result,
        }
        version = current.get()
        if version >= (2, 62):
            event["hostId"] = host_id(action.project_id, row.host)  # for everyone
        if names is None:
            if version >= (2, 62):  # ("" for a step of the control plane, which has none)
                event["host"] = row.host or ""
            event["traceback"] = row.details
        elif row.details and version >= (2, 84):
            event["details"] = names.hide(row.details)
        events.append(event)
    return events


def interface_view(port: PortView) -> dict[str, Any]:
    """One os-interface attachment."""
    return {
        "port_id": port.port_id,
        "net_id": port.network_id,
        "mac_addr": port.mac_address,
        "port_state": "ACTIVE",
        "fixed_ips": [
            {"subnet_id": subnet, "ip_address": address}
            for subnet, address in zip(port.subnet_ids, port.fixed_ips, strict=True)
        ],
    }


# Nova's names of power states in the standard diagnostics (2.48).
DIAGNOSTICS_STATE = {
    PowerState.NOSTATE: "pending",
    PowerState.RUNNING: "running",
    PowerState.PAUSED: "paused",
    PowerState.SHUTDOWN: "shutdown",
    PowerState.CRASHED: "crashed",
    PowerState.SUSPENDED: "suspended",
}
# A network interface's counters in the standard diagnostics: libvirt's test driver keeps none.
NIC_COUNTERS = (
    "rx_octets", "rx_errors", "rx_drop", "rx_packets", "rx_rate",
    "tx_octets", "tx_errors", "tx_drop", "tx_packets", "tx_rate",
)  # fmt: skip
DISK_COUNTERS = ("read_bytes", "read_requests", "write_bytes", "write_requests", "errors_count")


def _check_defined(info: DomainDiagnostics, server_id: str) -> None:
    if not info.defined:  # as Nova's libvirt driver: no domain, no instance
        raise NotFound(f"Instance {server_id} could not be found on its host.")


def diagnostics_view(host: str, server_id: str, info: DomainDiagnostics) -> dict[str, Any]:
    """Nova's standard server diagnostics (2.48), from what libvirt on the host reported.
    libvirt reports the domain's CPU time as a whole: one cpu_details entry, without an id.
    What it was not asked for (counters, usage) is null, as Nova leaves what a driver lacks."""
    _check_defined(info, server_id)
    state = LIBVIRT_POWER_STATE.get(info.state, PowerState.NOSTATE)
    return {
        "state": DIAGNOSTICS_STATE[state],
        "driver": "libvirt",
        "hypervisor": host,
        "hypervisor_os": None,
        "uptime": None,
        "config_drive": False,
        "num_cpus": info.vcpus,
        "num_nics": len(info.mac_addresses),
        "num_disks": 1,
        "memory_details": {"maximum": info.memory_mb, "used": None},
        "cpu_details": [{"id": None, "time": info.cpu_time_ns, "utilisation": None}],
        "nic_details": [
            {"mac_address": mac, **dict.fromkeys(NIC_COUNTERS)} for mac in info.mac_addresses
        ],
        "disk_details": [dict.fromkeys(DISK_COUNTERS)],
    }


def libvirt_diagnostics_view(server_id: str, info: DomainDiagnostics) -> dict[str, Any]:
    """Server diagnostics before 2.48: Nova passed on the driver's own keys; libvirt's are
    `memory` (KiB), `cpu<N>_time` (ns) and per-device counters. Only those libvirt reported
    here are shown: the memory, and the CPU time (as cpu0's when the domain has one vCPU,
    for libvirt's whole-domain figure cannot be split per vCPU)."""
    _check_defined(info, server_id)
    body: dict[str, Any] = {"memory": info.memory_mb * 1024}
    if info.vcpus == 1:
        body["cpu0_time"] = info.cpu_time_ns
    return body


def create_answer(server_id: str, admin_pass: str) -> dict[str, Any]:
    """POST /servers' 202 body (the rest comes with GET)."""
    return {
        "server": {
            "id": server_id,
            "links": links("servers", server_id),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
            "adminPass": admin_pass,
        }
    }


def network_view(usage: NetworkUsage) -> dict[str, Any]:
    network, subnet = usage.network, usage.subnet
    return {
        "id": network.id,
        "label": network.name,
        "project_id": network.project_id,
        "external": network.external,
        "cidr": subnet.cidr if subnet else None,
        "gateway": subnet.gateway_ip if subnet else None,
        "subnet_id": subnet.id if subnet else None,
        "allocation_pool": (
            {"start": subnet.allocation_start, "end": subnet.allocation_end} if subnet else None
        ),
        "addresses_used": usage.addresses_used,
    }


def port_body(session: Session, port: Port) -> dict[str, Any]:
    view = ipam.port_view(session, port)
    return {
        "port": {
            "id": port.id,
            "network_id": port.network_id,
            "mac_address": port.mac_address,
            "device_id": port.device_id or "",
            "project_id": port.project_id,
            "status": port.status,
            "fixed_ips": [
                {"subnet_id": s, "ip_address": a}
                for s, a in zip(view.subnet_ids, view.fixed_ips, strict=True)
            ],
        }
    }


def group_view(session: Session, group: ServerGroup) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": group.id,
        "name": group.name,
        "members": server_groups.members(session, group.id),
    }
    version = current.get()
    if version >= (2, 64):
        body.update(policy=group.policy, rules={})
    else:
        body.update(policies=[group.policy], metadata={})
    if version >= (2, 13):
        body.update(project_id=group.project_id, user_id=group.user_id)
    return body


@dataclass(frozen=True)
class NumberedHost:
    """A host with its integer id (its ComputeService row's), which Nova shows before 2.53."""

    host: Host
    number: int


def hypervisor_view(row: NumberedHost, down_after: timedelta) -> dict[str, Any]:
    """A hypervisor as Nova shows it: its id and its service's an integer before 2.53, the
    host's uuid from 2.53; cpu_info a JSON text before 2.28, an object from 2.28."""
    host = row.host
    up = heartbeat_fresh(host, utcnow(), down_after)
    version = current.get()
    public_id: int | str = host.id if version >= (2, 53) else row.number
    cpu_info = {"arch": host.arch}
    return {
        "id": public_id,
        "hypervisor_hostname": host.name,
        "service": {"host": host.name, "id": public_id, "disabled_reason": host.disabled_reason},
        "state": "up" if up else "down",
        "status": "enabled" if host.enabled else "disabled",
        "hypervisor_type": host.hypervisor_type,
        "hypervisor_version": 1000000,
        "host_ip": None,
        "cpu_info": cpu_info if version >= (2, 28) else json.dumps(cpu_info),
        "current_workload": 0,
        "vcpus": host.vcpus,
        "vcpus_used": host.vcpus_used,
        "memory_mb": host.memory_mb,
        "memory_mb_used": host.memory_mb_used,
        "free_ram_mb": host.memory_mb - host.memory_mb_used,
        "local_gb": host.disk_gb,
        "local_gb_used": host.disk_gb_used,
        "free_disk_gb": host.disk_gb - host.disk_gb_used,
        "disk_available_least": host.disk_gb - host.disk_gb_used,
        "running_vms": host.running_vms,
    }


def hypervisor_extension_view(host: Host) -> dict[str, Any]:
    """What novaflow knows of a host beyond Nova's body (GET /v2.1/os-novaflow-hypervisors):
    its zone, overcommit ratios, libvirt URI and last heartbeat."""
    return {
        "id": host.id,
        "hypervisor_hostname": host.name,
        "availability_zone": host.availability_zone,
        "cpu_allocation_ratio": host.cpu_allocation_ratio,
        "ram_allocation_ratio": host.ram_allocation_ratio,
        "disk_allocation_ratio": host.disk_allocation_ratio,
        "libvirt_uri": host.libvirt_uri,
        "last_heartbeat": host.last_heartbeat.isoformat() if host.last_heartbeat else None,
    }


def migration_view(migration: Migration) -> dict[str, Any]:
    """One migration record as Nova's os-migrations shows it (compute and node are one here);
    Nova has no regions in it (source_region/dest_region were never Nova's)."""
    body: dict[str, Any] = {
        "id": migration.id,
        "instance_uuid": migration.server_id,
        "status": migration.status,
        "source_compute": migration.source_compute,
        "source_node": migration.source_compute,
        "dest_compute": migration.dest_compute,
        "dest_node": migration.dest_compute,
        "dest_host": migration.dest_compute,
        # Nova shows its flavors' integer ids here.
        "old_instance_type_id": _int_if_digits(migration.old_flavor_id),
        "new_instance_type_id": _int_if_digits(migration.new_flavor_id),
        "created_at": iso_micro(migration.created_at),
        "updated_at": iso_micro(migration.updated_at),
    }
    version = current.get()
    if version >= (2, 23):
        body["migration_type"] = migration.migration_type
    if version >= (2, 59):
        body["uuid"] = migration.uuid
    if version >= (2, 80):
        body.update(project_id=migration.project_id, user_id=migration.user_id)
    return body


def _int_if_digits(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def glance_image_view(image: Image) -> dict[str, Any]:
    """An image as Glance's v2 API shows it: its own fields, then its properties."""
    return {
        **image.properties,
        "id": image.id,
        "name": image.name,
        "status": image.status,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "size": image.size if image.has_content else None,
        "checksum": image.checksum,
        "os_hash_algo": "sha256" if image.os_hash_value else None,
        "os_hash_value": image.os_hash_value,
        "visibility": "public",
        "protected": False,
        "os_hidden": False,
        "virtual_size": None,  # not measured (Glance too leaves it null until it knows)
        "owner": image.owner,
        "tags": [],
        "created_at": iso(image.created_at),
        "updated_at": iso(image.updated_at),
        "self": f"/v2/images/{image.id}",
        "file": f"/v2/images/{image.id}/file",
        "schema": "/v2/schemas/image",
    }


def neutron_network_view(usage: NetworkUsage) -> dict[str, Any]:
    """A network as Neutron's v2.0 API shows it (what `openstack server create --network`
    reads to find one by name). A network of no project is shared with every project."""
    network, subnet = usage.network, usage.subnet
    owner = network.project_id or ""
    return {
        "id": network.id,
        "name": network.name,
        "description": "",
        "status": "ACTIVE",
        "admin_state_up": True,
        "shared": network.project_id is None,
        "router:external": network.external,
        "subnets": [subnet.id] if subnet else [],
        "project_id": owner,
        "tenant_id": owner,
        "mtu": 1500,
        "port_security_enabled": False,  # no security groups are enforced
        "availability_zone_hints": [],
        "availability_zones": [],
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
        "tags": [],
        "revision_number": 0,
        "created_at": iso(network.created_at),
        "updated_at": iso(network.created_at),
    }
