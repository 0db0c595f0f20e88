"""What servers are built from: /v2.1/flavors and /v2.1/images (read-only, seeded)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlmodel import select

from api import views
from api.deps import ContextDep, SessionDep
from novaflow.errors import NotFound
from novaflow.models import Flavor, Image

router = APIRouter(prefix="/v2.1", tags=["flavors and images"])


@router.get("/flavors")
def list_flavors(session: SessionDep, _: ContextDep) -> dict[str, Any]:
    rows = session.exec(select(Flavor).order_by(Flavor.ram, Flavor.id))
    return {"flavors": [views.flavor_view(f, detail=False) for f in rows]}


@router.get("/flavors/detail")
def list_flavors_detail(session: SessionDep, _: ContextDep) -> dict[str, Any]:
    rows = session.exec(select(Flavor).order_by(Flavor.ram, Flavor.id))
    return {"flavors": [views.flavor_view(f) for f in rows]}


@router.get("/flavors/{flavor_id}")
def show_flavor(flavor_id: str, session: SessionDep, _: ContextDep) -> dict[str, Any]:
    flavor = session.get(Flavor, flavor_id)
    if flavor is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return {"flavor": views.flavor_view(flavor)}


@router.get("/images")
def list_images(session: SessionDep, _: ContextDep) -> dict[str, Any]:
    rows = session.exec(select(Image).order_by(Image.name))
    return {"images": [views.image_view(i) for i in rows]}


@router.get("/images/detail")
def list_images_detail(session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    return list_images(session, ctx)


@router.get("/images/{image_id}")
def show_image(image_id: str, session: SessionDep, _: ContextDep) -> dict[str, Any]:
    image = session.get(Image, image_id)
    if image is None:
        raise NotFound(f"Image {image_id} could not be found.")
    return {"image": views.image_view(image)}
