"""What servers are built from: flavors and images (seeded; read-only through the API)."""

from __future__ import annotations

from sqlmodel import Session, select

from novaflow.errors import NotFound
from novaflow.models import Flavor, Image


def flavors(session: Session) -> list[Flavor]:
    return list(session.exec(select(Flavor).order_by(Flavor.ram, Flavor.id)))


def flavor(session: Session, flavor_id: str) -> Flavor:
    found = session.get(Flavor, flavor_id)
    if found is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return found


def images(session: Session) -> list[Image]:
    return list(session.exec(select(Image).order_by(Image.name)))


def image(session: Session, image_id: str) -> Image:
    found = session.get(Image, image_id)
    if found is None:
        raise NotFound(f"Image {image_id} could not be found.")
    return found
