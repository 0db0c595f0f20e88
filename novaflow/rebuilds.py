"""Rebuild (Nova's rebuild action): the same server, host, ports and IPs, a new root disk from
an image (the same or another one). The gate checks the image against the server's flavor and
applies what the request changes (image, name, metadata; description from Nova 2.19, key_name
from 2.54, user_data from 2.57) in its transaction; the workflow then re-creates the disk and
the domain on the server's host.

Options are texts (they travel in the workflow's input): name as is, the others as JSON (so
that null, which clears a description, key or user data, is told apart from leaving it out)."""

from __future__ import annotations

import json

from sqlmodel import Session

from novaflow import keypairs
from novaflow.errors import Invalid
from novaflow.images import check_boot_images
from novaflow.models import Flavor, Image, Server, utcnow
from novaflow.server_metadata import check_item_count


def accept(
    session: Session, server: Server, options: dict[str, str], user_id: str | None = None
) -> None:
    """Check the image (400 naming imageRef) and the key (one of `user_id`'s, the caller's),
    and record the rebuild's changes on the server."""
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
    if "description" in options:
        server.description = json.loads(options["description"])
    if "key_name" in options:
        server.key_name = _key_name(session, json.loads(options["key_name"]), user_id)
    if "user_data" in options:
        server.user_data = json.loads(options["user_data"])
    server.updated_at = utcnow()
    session.flush()


def _key_name(session: Session, name: str | None, user_id: str | None) -> str | None:
    """The key a rebuild gives the server (None: none), which must be the caller's."""
    if name is not None and (user_id is None or keypairs.find(session, user_id, name) is None):
        raise Invalid(
            "Invalid input for field/attribute rebuild.key_name. Invalid key_name provided. "
            f"Keypair {name} not found for user {user_id}."
        )
    return name
