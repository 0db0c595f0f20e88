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

from fastapi import APIRouter, Request

from api import listing, views
from api.deps import ContextDep, SessionDep
from api.policy import rule
from novaflow import networks

router = APIRouter(prefix="/network/v2.0", tags=["networks (Neutron v2.0)"])

# Parameters that select, sort or page rather than filter. Sorting is not offered (the order is
# by name), nor page_reverse.
_NOT_FIELDS = {"fields", "limit", "marker", "page_reverse", "sort_key", "sort_dir"}
# The fields a list may be filtered on; any other is refused, as Neutron's filter validation does.
_FILTERS = {"id", "name", "description", "status", "admin_state_up", "shared", "router:external",
            "project_id", "tenant_id", "mtu", "port_security_enabled"}  # fmt: skip


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
    wanted = listing.filters(query.multi_items(), _NOT_FIELDS, _FILTERS)
    found = listing.page(listing.keep(bodies, wanted), query.get("limit"), query.get("marker"))
    fields = query.getlist("fields")
    answer: dict[str, Any] = {"networks": [_selected(b, fields) for b in found.items]}
    if links := listing.next_links(request, found.next_marker):  # the same query, further on
        answer["networks_links"] = links
    return answer


@router.get("/networks/{network_id}", dependencies=[rule("get_network")])
def show_network(
    network_id: str, request: Request, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    body = views.neutron_network_view(
        networks.network(session, network_id, ctx.project_id, ctx.is_admin)
    )
    return {"network": _selected(body, request.query_params.getlist("fields"))}
