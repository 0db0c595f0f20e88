"""What servers are built from: /v2.1/flavors and /v2.1/images (read-only, seeded)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api import views
from api.deps import ContextDep, SessionDep
from api.policy import rule
from novaflow import catalog

router = APIRouter(prefix="/v2.1", tags=["flavors and images"])


@router.get("/flavors", dependencies=[rule("os_compute_api:flavors:index")])
def list_flavors(session: SessionDep, _: ContextDep) -> dict[str, Any]:
    return {"flavors": [views.flavor_view(f, detail=False) for f in catalog.flavors(session)]}


@router.get("/flavors/detail", dependencies=[rule("os_compute_api:flavors:index")])
def list_flavors_detail(session: SessionDep, _: ContextDep) -> dict[str, Any]:
    return {"flavors": [views.flavor_view(f) for f in catalog.flavors(session)]}


@router.get("/flavors/{flavor_id}", dependencies=[rule("os_compute_api:flavors:show")])
def show_flavor(flavor_id: str, session: SessionDep, _: ContextDep) -> dict[str, Any]:
    return {"flavor": views.flavor_view(catalog.flavor(session, flavor_id))}


@router.get("/images", dependencies=[rule("os_compute_api:images:index")])
def list_images(session: SessionDep, _: ContextDep) -> dict[str, Any]:
    return {"images": [views.image_view(i, detail=False) for i in catalog.images(session)]}


@router.get("/images/detail", dependencies=[rule("os_compute_api:images:index")])
def list_images_detail(session: SessionDep, _: ContextDep) -> dict[str, Any]:
    return {"images": [views.image_view(i) for i in catalog.images(session)]}


@router.get("/images/{image_id}", dependencies=[rule("os_compute_api:images:show")])
def show_image(image_id: str, session: SessionDep, _: ContextDep) -> dict[str, Any]:
    return {"image": views.image_view(catalog.image(session, image_id))}
