"""AMI-style images (Nova's kernel_id/ramdisk_id): the domain resolves an image's kernel and
ramdisk with its content, refuses bad references naming the request's field, and a host's
cache keeps the kernels and ramdisks of the images its servers use; the workflows' description
of the content carries them, and one recorded without them still decodes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session
from temporalio.converter import DataConverter

from novaflow import hosts, images
from novaflow.db import Database
from novaflow.errors import Invalid
from novaflow.models import Claim, Image, Server
from tests.dbs import add_server
from workflows.contracts import ImageContent, image_content

MISSING = "00000000-0000-4000-8000-00000000dead"


def add_image(
    session: Session,
    image_id: str,
    disk_format: str = "raw",
    props: dict[str, str] | None = None,
    content: bool = True,
) -> Image:
    image = images.register(
        session, image_id, "admin", disk_format=disk_format, properties=props, image_id=image_id
    )
    if content:
        image.status, image.size, image.os_hash_value = "active", 10, f"sha-{image_id}"
    session.flush()
    return image


def test_content_of_resolves_the_kernel_and_ramdisk(db: Database) -> None:
    with db.write() as session:
        add_image(session, "k", "aki")
        add_image(session, "r", "ari")
        disk = add_image(session, "d", "qcow2", {"kernel_id": "k", "ramdisk_id": "r"})
        content = images.content_of(session, disk)
        plain = images.content_of(session, add_image(session, "p"))
    assert content is not None and plain is not None
    assert (content.image_id, content.disk_format) == ("d", "qcow2")
    assert content.kernel == images.Content("k", "sha-k", 10, "raw")
    assert content.ramdisk == images.Content("r", "sha-r", 10, "raw")
    assert plain.kernel is None and plain.ramdisk is None

    converted = image_content(content)  # the one converter, for the API and the activities
    assert converted == ImageContent(
        "d",
        "sha-d",
        10,
        "qcow2",
        kernel=ImageContent("k", "sha-k", 10, "raw"),
        ramdisk=ImageContent("r", "sha-r", 10, "raw"),
    )
    assert image_content(None) is None


@pytest.mark.parametrize(
    ("props", "named"),
    [
        ({"kernel_id": MISSING}, f"kernel_id {MISSING} is not an active kernel image"),
        ({"kernel_id": "queued-k"}, "kernel_id queued-k is not an active kernel image"),
        ({"kernel_id": "raw"}, "kernel_id raw is not an active kernel image (disk_format aki)"),
        ({"kernel_id": "k", "ramdisk_id": "k"}, "ramdisk_id k is not an active ramdisk image"),
        ({"ramdisk_id": "r"}, "has a ramdisk_id but no kernel_id"),
    ],
    ids=["missing", "no-content", "wrong-format", "ramdisk-wrong-format", "ramdisk-alone"],
)
def test_bad_references_are_refused_naming_the_field(
    db: Database, props: dict[str, str], named: str
) -> None:
    with db.write() as session:
        add_image(session, "k", "aki")
        add_image(session, "r", "ari")
        add_image(session, "queued-k", "aki", content=False)
        add_image(session, "raw")
        disk = add_image(session, "d", props=props)
        with pytest.raises(Invalid) as refused:
            images.check_boot_images(session, disk, "rebuild.imageRef")
        content = images.content_of(session, disk)
    message = refused.value.message
    assert message.startswith("Invalid input for field/attribute rebuild.imageRef. Image d")
    assert named in message
    # Resolved later (the reference went bad since): left out; the host, which still sees the
    # property, refuses to boot the image without it.
    assert content is not None
    assert content.kernel is None or content.ramdisk is None


def test_a_hosts_images_in_use_include_their_kernels_and_ramdisks(db: Database) -> None:
    with db.write() as session:
        hosts.register_host(
            session, "h1", vcpus=4, memory_mb=4096, disk_gb=40, arch="x86_64",
            libvirt_uri="test:///default", hypervisor_type="test",
        )  # fmt: skip
        add_image(session, "k", "aki")
        add_image(session, "r", "ari")
        add_image(session, "d", props={"kernel_id": "k", "ramdisk_id": "r"})
    used = add_server(db, "s1")
    released = add_server(db, "s2")
    with db.write() as session:
        for server_id, image_id, state in ((used, "d", "active"), (released, "other", "released")):
            session.get_one(Server, server_id).image_id = image_id
            session.add(Claim(id=server_id, server_id=server_id, host="h1", vcpus=1,
                              memory_mb=512, disk_gb=1, state=state))  # fmt: skip
    with db.read() as session:
        assert hosts.images_in_use(session, "h1") == {"d", "k", "r"}


def test_content_recorded_before_kernels_decodes_and_nested_content_round_trips() -> None:
    converter = DataConverter.default.payload_converter
    legacy: dict[str, Any] = {"image_id": "d", "sha256": "s", "size": 1, "disk_format": "raw"}
    [payload] = converter.to_payloads([legacy])
    [old] = converter.from_payloads([payload], [ImageContent])
    assert old == ImageContent("d", "s", 1, "raw") and old.kernel is None

    nested = ImageContent("d", "s", 1, "raw", kernel=ImageContent("k", "t", 2, "raw"))
    [payload] = converter.to_payloads([nested])
    [back] = converter.from_payloads([payload], [ImageContent])
    assert back == nested and isinstance(back.kernel, ImageContent)
