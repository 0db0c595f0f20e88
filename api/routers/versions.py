"""Version discovery, as Nova serves it (unauthenticated: api/auth.py's public paths): the list
of major versions at `/`, and the v2.1 document at `/v2.1` and `/v2.1/`, which keystoneauth
and openstacksdk read to learn the endpoint's microversion range. Links point back at the
address the caller used (api/views.py's base_url)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api import views
from api.microversion import MAX_VERSION, MIN_VERSION

router = APIRouter(tags=["versions"])

DOCS = "https://docs.openstack.org/"

# Nova's own dates: when each major version was frozen.
V20 = {
    "id": "v2.0",
    "status": "SUPPORTED",
    "version": "",
    "min_version": "",
    "updated": "2011-01-21T11:33:21Z",
    "path": "v2",
    "media_type": "application/vnd.openstack.compute+json;version=2",
}
V21 = {
    "id": "v2.1",
    "status": "CURRENT",
    "version": str(MAX_VERSION),
    "min_version": str(MIN_VERSION),
    "updated": "2013-07-23T11:33:21Z",
    "path": "v2.1",
    "media_type": "application/vnd.openstack.compute+json;version=2.1",
}


def _summary(version: dict[str, str]) -> dict[str, Any]:
    return {
        "id": version["id"],
        "status": version["status"],
        "version": version["version"],
        "min_version": version["min_version"],
        "updated": version["updated"],
        "links": [{"rel": "self", "href": f"{views.base_url.get()}/{version['path']}/"}],
    }


@router.get("/")
def list_versions() -> dict[str, Any]:
    """All major versions (Nova's `GET /`)."""
    return {"versions": [_summary(V20), _summary(V21)]}


@router.get("/v2.1")
@router.get("/v2.1/", include_in_schema=False)
def show_version() -> dict[str, Any]:
    """The v2.1 API: its microversion range (Nova's `GET /v2.1/`)."""
    body = _summary(V21)
    body["links"].append({"rel": "describedby", "type": "text/html", "href": DOCS})
    body["media-types"] = [{"base": "application/json", "type": V21["media_type"]}]
    return {"version": body}
