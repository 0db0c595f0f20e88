"""Rebuild (Nova's rebuild action): the same server, host, ports and IPs, a new root disk from
an image (the same or another one). The gate checks the image against the server's flavor and
applies what the request changes (image, name, metadata) in its transaction; the workflow then
re-creates the disk and the domain on the server's host."""

from __future__ import annotations

import json

from sqlmodel import Session

from novaflow.errors import Invalid
from novaflow.images import check_boot_images
from novaflow.models import Flavor, Image, Server, utcnow
from novaflow.server_metadata import check_item_count


def accept(session: Session, server: Server, options: dict[str, str]) -> None:
    """Check the image (400 naming imageRef) and record the rebuild's changes on the server."""
    image_id = options.get("image_id", "")
    image = session.get(Image, image_id) if image_id else None
    if image is None:
        raise Invalid(
            f"Invalid input for field/attribute rebuild.imageRef. Image {image_id} could not "
            "be found."
        )
    if image.status != "active":
        raise Invalid(
            f"Invalid input for field/attribute rebuild.imageRef. Image {image_id} is not "
            f"active (status {image.status})."
        )
    check_boot_images(session, image, "rebuild.imageRef")
    flavor = session.get(Flavor, server.flavor_id)
    disk_gb = flavor.disk if flavor is not None else server.disk_gb
    ram = flavor.ram if flavor is not None else server.memory_mb
    if image.min_disk > disk_gb:
        raise Invalid(
            f"Invalid input for field/attribute rebuild.imageRef. Flavor's disk is too small "
            f"for the requested image: {disk_gb} GiB < min_disk {image.min_disk} GiB."
        )
    if image.min_ram > ram:
        raise Invalid(
            f"Invalid input for field/attribute rebuild.imageRef. Flavor's memory is too "
            f"small for the requested image: {ram} MiB < min_ram {image.min_ram} MiB."
        )
    server.image_id = image.id
    if "name" in options:
        server.name = options["name"]
    if "metadata" in options:
        metadata = json.loads(options["metadata"])
        check_item_count(len(metadata))
        server.metadata_ = dict(metadata)
    server.updated_at = utcnow()
    session.flush()
