"""/v2.1/os-hypervisors (admin): hosts with capacity, usage and liveness.

A hypervisor's id (and its service's) is an integer before 2.53, its ComputeService row's (one
compute node per nova-compute here), and the host's uuid from 2.53, as Nova's. 2.28 shows
cpu_info as an object; 2.33 pages the lists (`limit`, `marker`: an id of the version's kind);
2.53 adds `hypervisor_hostname_pattern` and `with_servers`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api import listing, views
from api.deps import SessionDep
from api.microversion import current
from api.policy import rule
from api.schemas import uuid_id
from novaflow import hosts
from novaflow.errors import Invalid, NotFound
from novaflow.models import Host

router = APIRouter(prefix="/v2.1/os-hypervisors", tags=["hypervisors"])


class HypervisorQuery(BaseModel):
    """Nova's query parameters of the lists (each ignored before its version, as Nova)."""

    limit: int | None = Field(default=None, ge=0)  # 2.33
    marker: str | None = None  # 2.33
    hypervisor_hostname_pattern: str | None = None  # 2.53
    with_servers: bool = False  # 2.53


def _down_after(request: Request) -> timedelta:
    return request.app.state.settings.service_down


def _numbered(session: SessionDep) -> list[views.NumberedHost]:
    """Every host with its integer id, in Nova's order (by id)."""
    return [views.NumberedHost(host, number) for host, number in hosts.numbered_hosts(session)]


def _public_id(row: views.NumberedHost) -> str:
    return row.host.id if current.get() >= (2, 53) else str(row.number)


def _page(session: SessionDep, q: HypervisorQuery) -> list[views.NumberedHost]:
    rows = _numbered(session)
    version = current.get()
    if version >= (2, 53) and q.hypervisor_hostname_pattern is not None:
        if q.limit is not None or q.marker is not None:
            raise Invalid(
                "Paging over hypervisors with the hypervisor_hostname_pattern query "
                "parameter is not supported."
            )
        pattern = q.hypervisor_hostname_pattern
        rows = [r for r in rows if pattern in r.host.name]
        if not rows:
            raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
        return rows
    if version < (2, 33):
        return rows
    if q.marker is not None:
        ids = [_public_id(r) for r in rows]
        if q.marker not in ids:
            raise Invalid(f"marker [{q.marker}] not found")
        rows = rows[ids.index(q.marker) + 1 :]
    return rows[: q.limit] if q.limit is not None else rows


def _servers(session: SessionDep, host: Host) -> list[dict[str, str]]:
    return [
        {"uuid": s.id, "name": f"instance-{s.id}"} for s in hosts.servers_on(session, host.name)
    ]


def _with_servers(
    session: SessionDep, body: dict[str, Any], host: Host, wanted: bool
) -> dict[str, Any]:
    """2.53: a hypervisor's servers, when asked for (and it has some, as Nova)."""
    if current.get() >= (2, 53) and wanted:
        servers = _servers(session, host)
        if servers:
            body["servers"] = servers
    return body


def _links(rows: list[views.NumberedHost], q: HypervisorQuery, request: Request) -> dict[str, Any]:
    end = listing.nova_page_end(rows, q.limit) if current.get() >= (2, 33) else None
    if end is None:
        return {}
    return {"hypervisors_links": listing.next_links(request, _public_id(end))}


Q = Annotated[HypervisorQuery, Query()]


@router.get("", dependencies=[rule("os_compute_api:os-hypervisors:list")])
def list_hypervisors(request: Request, session: SessionDep, q: Q) -> dict[str, Any]:
    rows = _page(session, q)
    items = [
        _with_servers(
            session,
            {"id": _public_id(r), "hypervisor_hostname": r.host.name},
            r.host,
            q.with_servers,
        )
        for r in rows
    ]
    return {"hypervisors": items, **_links(rows, q, request)}


@router.get("/detail", dependencies=[rule("os_compute_api:os-hypervisors:list-detail")])
def list_hypervisors_detail(request: Request, session: SessionDep, q: Q) -> dict[str, Any]:
    rows = _page(session, q)
    down_after = _down_after(request)
    items = [
        _with_servers(session, views.hypervisor_view(r, down_after), r.host, q.with_servers)
        for r in rows
    ]
    return {"hypervisors": items, **_links(rows, q, request)}


def _find(session: SessionDep, hypervisor_id: str) -> views.NumberedHost:
    """The hypervisor by the id of the version's kind: 404 if none; from 2.53 a uuid (400
    for anything else, as Nova)."""
    if current.get() >= (2, 53):
        uuid_id(hypervisor_id)
    for row in _numbered(session):
        if _public_id(row) == hypervisor_id:
            return row
    raise NotFound(f"Hypervisor with ID '{hypervisor_id}' could not be found.")


@router.get("/{hypervisor_id}", dependencies=[rule("os_compute_api:os-hypervisors:show")])
def show_hypervisor(
    hypervisor_id: str,
    request: Request,
    session: SessionDep,
    with_servers: bool = False,
) -> dict[str, Any]:
    row = _find(session, hypervisor_id)
    body = views.hypervisor_view(row, _down_after(request))
    return {"hypervisor": _with_servers(session, body, row.host, with_servers)}
