"""/v2.1/os-hypervisors (admin): hosts with capacity, usage and liveness."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request

from api.deps import AdminDep, SessionDep
from novaflow import hosts
from novaflow.models import Host, utcnow

router = APIRouter(prefix="/v2.1/os-hypervisors", tags=["hypervisors"])


def hypervisor_view(host: Host, down_after: timedelta) -> dict[str, Any]:
    up = hosts.heartbeat_fresh(host, utcnow(), down_after)
    return {
        "id": host.id,
        "hypervisor_hostname": host.name,
        "service": {"host": host.name, "disabled_reason": host.disabled_reason},
        "state": "up" if up else "down",
        "status": "enabled" if host.enabled else "disabled",
        "hypervisor_type": host.hypervisor_type,
        "host_ip": None,
        "availability_zone": host.availability_zone,
        "cpu_info": {"arch": host.arch},
        "vcpus": host.vcpus,
        "vcpus_used": host.vcpus_used,
        "memory_mb": host.memory_mb,
        "memory_mb_used": host.memory_mb_used,
        "local_gb": host.disk_gb,
        "local_gb_used": host.disk_gb_used,
        "running_vms": host.running_vms,
        "cpu_allocation_ratio": host.cpu_allocation_ratio,
        "ram_allocation_ratio": host.ram_allocation_ratio,
        "disk_allocation_ratio": host.disk_allocation_ratio,
        "libvirt_uri": host.libvirt_uri,
        "last_heartbeat": host.last_heartbeat.isoformat() if host.last_heartbeat else None,
    }


def _down_after(request: Request) -> timedelta:
    return request.app.state.settings.service_down


@router.get("")
def list_hypervisors(session: SessionDep, _: AdminDep) -> dict[str, Any]:
    rows = hosts.all_hosts(session)
    return {"hypervisors": [{"id": h.id, "hypervisor_hostname": h.name} for h in rows]}


@router.get("/detail")
def list_hypervisors_detail(request: Request, session: SessionDep, _: AdminDep) -> dict[str, Any]:
    rows = hosts.all_hosts(session)
    return {"hypervisors": [hypervisor_view(h, _down_after(request)) for h in rows]}


@router.get("/{hypervisor_id}")
def show_hypervisor(
    hypervisor_id: str, request: Request, session: SessionDep, _: AdminDep
) -> dict[str, Any]:
    host = hosts.find_host(session, hypervisor_id)
    return {"hypervisor": hypervisor_view(host, _down_after(request))}
