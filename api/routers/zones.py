"""/v2.1/os-availability-zone: the zones the hosts are in, and (detail, admin) their hosts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.deps import SessionDep
from api.policy import rule
from novaflow import hosts
from novaflow.models import Host, utcnow

router = APIRouter(prefix="/v2.1/os-availability-zone", tags=["availability zones"])


def _zones(request: Request, session: SessionDep) -> dict[str, list[tuple[Host, bool]]]:
    down_after = request.app.state.settings.service_down
    return hosts.zones(session, utcnow(), down_after)


@router.get("", dependencies=[rule("os_compute_api:os-availability-zone:list")])
def list_zones(request: Request, session: SessionDep) -> dict[str, Any]:
    return {
        "availabilityZoneInfo": [
            {
                "zoneName": zone,
                "zoneState": {"available": any(up for _, up in members)},
                "hosts": None,
            }
            for zone, members in _zones(request, session).items()
        ]
    }


@router.get("/detail", dependencies=[rule("os_compute_api:os-availability-zone:detail")])
def list_zones_detail(request: Request, session: SessionDep) -> dict[str, Any]:
    return {
        "availabilityZoneInfo": [
            {
                "zoneName": zone,
                "zoneState": {"available": any(up for _, up in members)},
                "hosts": {
                    host.name: {
                        "nova-compute": {
                            "available": up,
                            "active": host.enabled,
                            "updated_at": host.last_heartbeat.isoformat()
                            if host.last_heartbeat
                            else None,
                        }
                    }
                    for host, up in members
                },
            }
            for zone, members in _zones(request, session).items()
        ]
    }
