"""/v2.1/os-simple-tenant-usage: what projects' servers used over a period (novaflow/usage.py
says how it is counted). The list is an admin's, over every project; a project's own usage is
its readers' (another project's: an admin's, else Nova's 403).

`start` and `end` are UTC times as Nova takes them (`2026-11-01T00:00:00`, with `.ffffff` or a
space instead of the `T` also), both defaulting to now; an `end` in the future is now (Nova's:
nothing is charged ahead). `detailed=1` adds each project's server_usages to the list (the
project's own usage always has them). From 2.40 `limit` and `marker` (a server's id) page over
servers, and a full page links to the next (`tenant_usages_links`, `tenant_usage_links`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api import listing
from api.deps import ContextDep, SessionDep
from api.microversion import MicroversionDep
from api.policy import refusal, rule
from api.views import iso_micro
from novaflow import usage
from novaflow.errors import Invalid
from novaflow.models import utcnow

router = APIRouter(prefix="/v2.1/os-simple-tenant-usage", tags=["usage"])

# The forms Nova's simple_tenant_usage accepts, tried in this order.
_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")

TimeQuery = Annotated[str | None, Query()]
LimitQuery = Annotated[int | None, Query(ge=0)]
PAGING_VERSION = (2, 40)  # limit, marker and the next-page links


def parse_time(text: str | None) -> datetime:
    """A period's bound: now when not given (or empty); a 400 for a form Nova does not take."""
    if not text:
        return utcnow()
    for form in _FORMATS:
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise Invalid("Invalid datetime string: Datetime is in invalid format")


def period(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """[start, end) as asked, but ending now at the latest (checked before that, as Nova)."""
    begin, stop = parse_time(start), parse_time(end)
    if not begin < stop:
        raise Invalid("Invalid start time. The start time cannot occur after the end time.")
    return begin, min(stop, utcnow())


def next_page(
    request: Request, found: list[usage.ProjectUsage], limit: int | None
) -> list[dict[str, str]]:
    """The link to the page after a full one: the same query, the last server as marker."""
    servers = [used.server.id for project in found for used in project.servers]
    return listing.next_links(request, listing.nova_page_end(servers, limit))


def server_usage_view(used: usage.ServerUsage, now: datetime) -> dict[str, Any]:
    server = used.server
    launched = server.launched_at or server.created_at  # always set: only launched are listed
    ended = server.terminated_at
    return {
        "instance_id": server.id,
        "name": server.name,
        "tenant_id": server.project_id,
        "flavor": used.flavor_name,
        "hours": used.hours,
        "vcpus": server.vcpus,
        "memory_mb": server.memory_mb,
        "local_gb": server.disk_gb,
        "started_at": iso_micro(launched),
        "ended_at": iso_micro(ended),
        "state": "terminated" if ended is not None else server.vm_state,
        "uptime": int(((ended or now) - launched).total_seconds()),
    }


def project_usage_view(
    used: usage.ProjectUsage, start: datetime, stop: datetime, detailed: bool
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "tenant_id": used.project_id,
        "total_hours": used.total_hours,
        "total_vcpus_usage": used.total_vcpus_usage,
        "total_memory_mb_usage": used.total_memory_mb_usage,
        "total_local_gb_usage": used.total_local_gb_usage,
        "start": iso_micro(start),
        "stop": iso_micro(stop),
    }
    if detailed:
        now = utcnow()
        view["server_usages"] = [server_usage_view(u, now) for u in used.servers]
    return view


@router.get("", dependencies=[rule("os_compute_api:os-simple-tenant-usage:list")])
def list_usage(
    request: Request,
    session: SessionDep,
    version: MicroversionDep,
    start: TimeQuery = None,
    end: TimeQuery = None,
    detailed: Annotated[str | None, Query()] = None,
    limit: LimitQuery = None,
    marker: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Every project that ran servers in the period, with its totals (and, with `detailed=1`,
    its servers)."""
    begin, stop = period(start, end)
    if version < PAGING_VERSION:  # ignored before, as Nova
        limit = marker = None
    limit = limit or None  # 0: no limit (Nova's max_limit)
    found = usage.usage_by_project(session, begin, stop, limit=limit, marker=marker)
    body: dict[str, Any] = {
        "tenant_usages": [project_usage_view(u, begin, stop, detailed == "1") for u in found]
    }
    if links := next_page(request, found, limit):
        body["tenant_usages_links"] = links
    return body


SHOW_RULE = "os_compute_api:os-simple-tenant-usage:show"


@router.get("/{tenant_id}", dependencies=[rule(SHOW_RULE)])
def show_usage(
    tenant_id: str,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    version: MicroversionDep,
    start: TimeQuery = None,
    end: TimeQuery = None,
    limit: LimitQuery = None,
    marker: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """One project's totals and servers over the period; `{}` when it ran none (Nova's)."""
    if tenant_id != ctx.project_id and not ctx.is_admin:  # Nova's rule targets the project
        raise refusal(SHOW_RULE)
    begin, stop = period(start, end)
    if version < PAGING_VERSION:
        limit = marker = None
    limit = limit or None
    found = usage.usage_by_project(session, begin, stop, tenant_id, limit, marker)
    body: dict[str, Any] = {
        "tenant_usage": project_usage_view(found[0], begin, stop, True) if found else {}
    }
    if links := next_page(request, found, limit):
        body["tenant_usage_links"] = links
    return body
