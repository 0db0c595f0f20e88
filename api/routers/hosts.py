"""/v2.1/os-hypervisors (admin): hosts with capacity, usage and liveness."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request

from api import views
from api.deps import SessionDep
from api.policy import rule
from novaflow import hosts

router = APIRouter(prefix="/v2.1/os-hypervisors", tags=["hypervisors"])


def _down_after(request: Request) -> timedelta:
    return request.app.state.settings.service_down


@router.get("", dependencies=[rule("os_compute_api:os-hypervisors:list")])
def list_hypervisors(session: SessionDep) -> dict[str, Any]:
    rows = hosts.all_hosts(session)
    return {"hypervisors": [{"id": h.id, "hypervisor_hostname": h.name} for h in rows]}


@router.get("/detail", dependencies=[rule("os_compute_api:os-hypervisors:list-detail")])
def list_hypervisors_detail(request: Request, session: SessionDep) -> dict[str, Any]:
    rows = hosts.all_hosts(session)
    return {"hypervisors": [views.hypervisor_view(h, _down_after(request)) for h in rows]}


@router.get("/{hypervisor_id}", dependencies=[rule("os_compute_api:os-hypervisors:show")])
def show_hypervisor(hypervisor_id: str, request: Request, session: SessionDep) -> dict[str, Any]:
    host = hosts.find_host(session, hypervisor_id)
    return {"hypervisor": views.hypervisor_view(host, _down_after(request))}
