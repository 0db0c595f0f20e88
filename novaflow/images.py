"""Images with content: the control plane's image store and the records' rules (Glance's part).

An image is registered (`queued`), then its bytes are uploaded once: they go to a file of the
store (STATE_DIR/images/<id>), written aside and renamed into place when complete, while their
MD5 (Glance's `checksum`) and SHA-256 (what hosts verify after their own download) are taken;
the image is then `active`. Hosts never read the store's path: they download the bytes through
the API (`GET /image/v2/images/<id>/file`) into their own cache, since hosts share no
filesystem with the control plane.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from sqlmodel import Session, col, select

from novaflow.errors import Conflict, Invalid, NotFound
from novaflow.models import Image, utcnow

DISK_FORMATS = ("qcow2", "raw", "aki", "ari")  # aki: a kernel, ari: a ramdisk (initramfs)
CONTAINER_FORMATS = ("bare", "aki", "ari")
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Stored:
    size: int
    md5: str
    sha256: str


class TooLarge(Exception):
    pass


class ImageWriter:
    """Bytes of one upload, written aside (a file of its own) and hashed; `finish` completes
    them and `place` puts them where the image's content is read from."""

    def __init__(self, final: Path, max_bytes: int) -> None:
        self.final = final
        self.part = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
        self.max_bytes = max_bytes
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()
        final.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.part.open("wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise TooLarge(f"the image is larger than the {self.max_bytes} bytes allowed")
        self.md5.update(chunk)
        self.sha256.update(chunk)
        self.file.write(chunk)

    def finish(self) -> Stored:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        return Stored(self.size, self.md5.hexdigest(), self.sha256.hexdigest())

    def place(self) -> None:
        os.replace(self.part, self.final)

    def abort(self) -> None:
        self.file.close()
        self.part.unlink(missing_ok=True)


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, image_id: str) -> Path:
        if not image_id or "/" in image_id or image_id.startswith("."):
            raise NotFound(f"Image {image_id} could not be found.")
        return self.root / image_id

    def writer(self, image_id: str, max_bytes: int) -> ImageWriter:
        return ImageWriter(self.path(image_id), max_bytes)

    def read(self, image_id: str) -> Iterator[bytes]:
        path = self.path(image_id)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"Image {image_id} has no content.") from None
        with handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    def delete(self, image_id: str) -> None:
        self.path(image_id).unlink(missing_ok=True)


# ------------------------------------------------------------ records


def register(
    session: Session,
    name: str,
    owner: str,
    *,
    disk_format: str = "qcow2",
    container_format: str = "bare",
    min_disk: int = 0,
    min_ram: int = 0,
    properties: dict[str, str] | None = None,
    image_id: str | None = None,
) -> Image:
    """A new image without content yet (`queued`)."""
    if disk_format not in DISK_FORMATS:
        raise Invalid(
            f"Invalid input for field/attribute disk_format. Value must be one of {DISK_FORMATS}"
        )
    if container_format not in CONTAINER_FORMATS:
        raise Invalid(
            "Invalid input for field/attribute container_format. Value must be one of "
            f"{CONTAINER_FORMATS}"
        )
    if image_id is not None and session.get(Image, image_id) is not None:
        raise Conflict(f"Image with identifier {image_id} already exists.")
    image = Image(
        name=name,
        status="queued",
        disk_format=disk_format,
        container_format=container_format,
        min_disk=min_disk,
        min_ram=min_ram,
        properties=dict(properties or {}),
        owner=owner,
    )
    if image_id is not None:
        image.id = image_id
    session.add(image)
    session.flush()
    return image


def claim_upload(session: Session, image_id: str) -> Image:
    """An upload may begin: the image has no content yet (queued, or saving when an earlier
    upload died on the way). 409 once it is active."""
    image = session.get(Image, image_id, with_for_update=True)
    if image is None:
        raise NotFound(f"Image {image_id} could not be found.")
    if image.status not in ("queued", "saving"):
        raise Conflict(f"Image {image_id} is {image.status}: its data cannot be uploaded again.")
    image.status = "saving"
    image.updated_at = utcnow()
    session.flush()
    return image


def finish_upload(
    session: Session, image_id: str, stored: Stored | None, place: Callable[[], None]
) -> Image:
    """saving -> active with its size and checksums, the bytes put in place under the row's
    lock (of two uploads at once, the second finds it active: 409); None: it failed -> queued."""
    image = session.get(Image, image_id, with_for_update=True)
    if image is None:
        raise NotFound(f"Image {image_id} could not be found.")
    if stored is None:
        if image.status == "saving":
            image.status = "queued"
    elif image.status != "saving":
        raise Conflict(f"Image {image_id} is {image.status}: its data cannot be uploaded again.")
    else:
        place()
        image.status = "active"
        image.size, image.checksum, image.os_hash_value = stored.size, stored.md5, stored.sha256
    image.updated_at = utcnow()
    session.flush()
    return image


# Nova's AMI-style images: an image's kernel and ramdisk (initramfs) are images of their own,
# named by these properties, and the server boots them directly (direct kernel boot).
KERNEL_ID = "kernel_id"
RAMDISK_ID = "ramdisk_id"
BOOT_IMAGES = ((KERNEL_ID, "aki", "kernel"), (RAMDISK_ID, "ari", "ramdisk"))


@dataclass(frozen=True)
class Content:
    """What a host needs to fetch and check an image with content, and the kernel and ramdisk
    it boots with when its kernel_id/ramdisk_id name them."""

    image_id: str
    sha256: str
    size: int
    disk_format: str
    kernel: Content | None = None
    ramdisk: Content | None = None


def _own_content(image: Image | None) -> Content | None:
    if image is None or image.os_hash_value is None or image.status != "active":
        return None
    fmt = "qcow2" if image.disk_format == "qcow2" else "raw"  # a kernel or ramdisk: raw
    return Content(image.id, image.os_hash_value, image.size, fmt)


def _boot_image(session: Session, image: Image, prop: str, fmt: str) -> Image | None:
    """The image `prop` names, if it is an active image with content of format `fmt`."""
    ref = image.properties.get(prop)
    found = session.get(Image, ref) if ref else None
    if found is None or _own_content(found) is None or found.disk_format != fmt:
        return None
    return found


def boot_image_problem(session: Session, image: Image) -> str | None:
    """What is wrong with the kernel and ramdisk the image names (None: nothing, or it names
    none): each must be an active image with content of its format, and a ramdisk needs a
    kernel."""
    if image.properties.get(RAMDISK_ID) and not image.properties.get(KERNEL_ID):
        return f"Image {image.id} has a ramdisk_id but no kernel_id: a ramdisk needs a kernel."
    for prop, fmt, what in BOOT_IMAGES:
        ref = image.properties.get(prop)
        if ref is not None and _boot_image(session, image, prop, fmt) is None:
            return (
                f"Image {image.id}'s {prop} {ref} is not an active {what} image "
                f"(disk_format {fmt})."
            )
    return None


def check_boot_images(session: Session, image: Image, field: str) -> None:
    """400 naming `field` (the request's imageRef) when the image's kernel_id or ramdisk_id
    is a bad reference."""
    problem = boot_image_problem(session, image)
    if problem is not None:
        raise Invalid(f"Invalid input for field/attribute {field}. {problem}")


def content_of(session: Session, image: Image | None) -> Content | None:
    """None for an image without content (the seeded ones): its servers' disks start blank.
    The kernel and ramdisk its kernel_id/ramdisk_id name come with it. (The API checked those
    references; one that no longer resolves is left None here, and the host, which still
    sees the property, refuses to boot the image without it.)"""
    content = _own_content(image)
    if content is None or image is None:
        return None
    kernel = _boot_image(session, image, KERNEL_ID, "aki")
    ramdisk = _boot_image(session, image, RAMDISK_ID, "ari")
    return replace(content, kernel=_own_content(kernel), ramdisk=_own_content(ramdisk))


def all_images(session: Session) -> list[Image]:
    return list(session.exec(select(Image).order_by(col(Image.created_at), col(Image.id))))


def get(session: Session, image_id: str) -> Image:
    image = session.get(Image, image_id)
    if image is None:
        raise NotFound(f"Image {image_id} could not be found.")
    return image


def delete(session: Session, image_id: str) -> None:
    """The record goes; servers built from it keep their disks, and hosts their cached copy
    until it is unused for the cache's age (a new build from it is then refused: 400)."""
    session.delete(get(session, image_id))
    session.flush()
