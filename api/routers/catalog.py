"""What servers are built from: /v2.1/flavors and /v2.1/images (read-only, seeded). The
images are Nova's image proxy, which 2.36 removed (404 from then on: Glance's API serves
them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api import views
from api.deps import ContextDep, SessionDep
from api.microversion import until
from api.policy import allowed, rule
from novaflow import catalog

router = APIRouter(prefix="/v2.1", tags=["flavors and images"])


@router.get("/flavors", dependencies=[rule("os_compute_api:flavors:index")])
def list_flavors(session: SessionDep, _: ContextDep) -> dict[str, Any]:
    return {"flavors": [views.flavor_view(f, detail=False) for f in catalog.flavors(session)]}


@router.get("/flavors/detail", dependencies=[rule("os_compute_api:flavors:index")])
def list_flavors_detail(session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    specs = allowed(ctx, EXTRA_SPECS)
    return {"flavors": [views.flavor_view(f, extra_specs=specs) for f in catalog.flavors(session)]}


@router.get("/flavors/{flavor_id}", dependencies=[rule("os_compute_api:flavors:show")])
def show_flavor(flavor_id: str, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    flavor = catalog.flavor(session, flavor_id)
    return {"flavor": views.flavor_view(flavor, extra_specs=allowed(ctx, EXTRA_SPECS))}


# From 2.61 a flavor shows its extra specs to whoever may read them (Nova's rule).
EXTRA_SPECS = "os_compute_api:os-flavor-extra-specs:index"


@router.get("/images", dependencies=[until((2, 36)), rule("os_compute_api:images:index")])
def list_images(session: SessionDep, _: ContextDep) -> dict[str, Any]:
    return {"images": [views.image_view(i, detail=False) for i in catalog.images(session)]}


@router.get("/images/detail", dependencies=[until((2, 36)), rule("os_compute_api:images:index")])
def list_images_detail(session: SessionDep, _: ContextDep) -> dict[str, Any]:
    return {"images": [views.image_view(i) for i in catalog.images(session)]}


@router.get("/images/{image_id}", dependencies=[until((2, 36)), rule("os_compute_api:images:show")])
def show_image(image_id: str, session: SessionDep, _: ContextDep) -> dict[str, Any]:
    return {"image": views.image_view(catalog.image(session, image_id))}
