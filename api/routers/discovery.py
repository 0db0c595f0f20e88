"""Version discovery of the image, network and identity endpoints (public, as Glance's,
Neutron's and Keystone's roots are): keystoneauth fetches the endpoint a clouds.yaml names
(`image_endpoint_override: <api>/image`, `network_endpoint_override: <api>/network`,
`identity_endpoint_override: <api>/identity`) and follows the link of the version it wants.
Each lists the one version novaflow serves a subset of.

The identity endpoint serves its version document only: identity is noauth or Keycloak's, but
without the document openstacksdk would take the compute endpoint's (2.1) for the identity
API's version, and `openstack server list` refuses to run without identity v3 (it reads nothing
from it unless --project or --user name one: those are not served).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api import views

router = APIRouter(tags=["versions"])


@router.get("/image", status_code=300)
@router.get("/image/", status_code=300, include_in_schema=False)
def image_versions() -> dict[str, Any]:
    """Glance's `GET /`: 300 Multiple Choices, as Glance answers it."""
    return {
        "versions": [
            {
                "id": "v2.0",
                "status": "CURRENT",
                "links": [{"rel": "self", "href": f"{views.base_url.get()}/image/v2/"}],
            }
        ]
    }


@router.get("/network")
@router.get("/network/", include_in_schema=False)
def network_versions() -> dict[str, Any]:
    """Neutron's `GET /`."""
    return {
        "versions": [
            {
                "id": "v2.0",
                "status": "CURRENT",
                "links": [{"rel": "self", "href": f"{views.base_url.get()}/network/v2.0/"}],
            }
        ]
    }


IDENTITY_V3 = {
    "id": "v3.0",
    "status": "stable",
    "updated": "2013-03-06T00:00:00Z",
    "media-types": [
        {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
    ],
}


def _identity_v3() -> dict[str, Any]:
    return {
        **IDENTITY_V3,
        "links": [{"rel": "self", "href": f"{views.base_url.get()}/identity/v3/"}],
    }


@router.get("/identity", status_code=300)
@router.get("/identity/", status_code=300, include_in_schema=False)
def identity_versions() -> dict[str, Any]:
    """Keystone's `GET /`: 300 Multiple Choices, its versions under `values`."""
    return {"versions": {"values": [_identity_v3()]}}


@router.get("/identity/v3")
@router.get("/identity/v3/", include_in_schema=False)
def identity_v3() -> dict[str, Any]:
    """Keystone's `GET /v3`: the version document alone."""
    return {"version": _identity_v3()}
