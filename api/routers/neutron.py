"""/network/v2.0/networks: the network service's part, read-only (a subset of Neutron's v2.0
API), so that a client resolving `--network <name>` through the network service, as
`openstack server create` does, finds novaflow's networks.

    GET /network/v2.0/networks        the networks the caller sees, with Neutron's filters
    GET /network/v2.0/networks/{id}   one of them

Networks, subnets and ports are still made by novaflow itself (the seed, /v2.1/ports); the
network service's own writes are not offered.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from api import listing, views
from api.deps import ContextDep, SessionDep
from api.policy import rule
from novaflow import networks
from novaflow.errors import Invalid

router = APIRouter(prefix="/network/v2.0", tags=["networks (Neutron v2.0)"])

# Parameters that select, sort or page rather than filter. Sorting is not offered (the order is
# by name), nor page_reverse.
_NOT_FIELDS = {"fields", "limit", "marker", "page_reverse", "sort_key", "sort_dir"}
# The fields a list may be filtered on; any other is refused, as Neutron's filter validation does.
_FILTERS = {"id", "name", "description", "status", "admin_state_up", "shared", "router:external",
            "project_id", "tenant_id", "mtu", "port_security_enabled"}  # fmt: skip


def _filters(query: list[tuple[str, str]]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for key, value in query:
        if key in _NOT_FIELDS:
            continue
        if key not in _FILTERS:
            raise Invalid(f"[{key}] is invalid attribute for filtering")
        filters.setdefault(key, []).append(value)  # repeated: any of the values
    return filters


def _selected(body: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """`fields=a&fields=b`: only those fields (all without it)."""
    return {k: v for k, v in body.items() if k in fields} if fields else body


@router.get("/networks", dependencies=[rule("get_network")])
def list_networks(request: Request, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    query = request.query_params
    bodies = [
        views.neutron_network_view(n)
        for n in networks.networks(session, ctx.project_id, ctx.is_admin)
    ]
    found = listing.page(
        listing.keep(bodies, _filters(query.multi_items())), query.get("limit"), query.get("marker")
    )
    fields = query.getlist("fields")
    answer: dict[str, Any] = {"networks": [_selected(b, fields) for b in found.items]}
    if found.more:  # Neutron links the next page with the same query
        rest = [(k, v) for k, v in query.multi_items() if k != "marker"]
        href = f"{views.base_url.get()}/network/v2.0/networks?" + urlencode(
            [*rest, ("marker", found.items[-1]["id"])]
        )
        answer["networks_links"] = [{"rel": "next", "href": href}]
    return answer


@router.get("/networks/{network_id}", dependencies=[rule("get_network")])
def show_network(
    network_id: str, request: Request, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    body = views.neutron_network_view(
        networks.network(session, network_id, ctx.project_id, ctx.is_admin)
    )
    return {"network": _selected(body, request.query_params.getlist("fields"))}
