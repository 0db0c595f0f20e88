"""/image/v2/images: the image service's part (a subset of Glance's v2 API, where `openstack
image create` and the ops CLI's `novaflow image add` upload images with content).

    POST   /image/v2/images              register (admin): 201, status queued
    PUT    /image/v2/images/{id}/file    its bytes, once (admin): 204, status active
    GET    /image/v2/images[/{id}]       the records, with size, checksum and properties (the
                                         list with Glance's filters: name, status, ...)
    GET    /image/v2/images/{id}/file    the bytes (how a host fills its image cache)
    DELETE /image/v2/images/{id}         (admin): 204

The bytes are streamed to the store as they arrive (never held in memory), after the caller
was found to be an admin, and refused past NOVAFLOW_IMAGE_MAX_BYTES (413).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.concurrency import run_in_threadpool

from api import errors, listing, views
from api.deps import ContextDep, DbDep, SessionDep
from api.policy import rule
from novaflow import images
from novaflow.db import Database
from novaflow.errors import Conflict, Invalid, NovaflowError

router = APIRouter(prefix="/image/v2/images", tags=["images (Glance v2)"])

# Glance's own fields of an image record; any other key is a property.
RESERVED = {"id", "name", "disk_format", "container_format", "min_disk", "min_ram",
            "visibility", "protected", "tags"}  # fmt: skip


class ImageCreate(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: UUID | None = None  # Glance's ids are UUIDs
    name: Annotated[StrictStr, Field(min_length=1, max_length=255)]
    disk_format: Literal["qcow2", "raw", "aki", "ari"] = "qcow2"
    container_format: Literal["bare", "aki", "ari"] = "bare"
    min_disk: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] = 0
    min_ram: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] = 0
    visibility: Literal["public", "private", "shared", "community"] = "public"
    protected: StrictBool = False
    tags: list[StrictStr] = Field(default_factory=list)

    def properties(self) -> dict[str, str]:
        extra = self.model_extra or {}
        for key, value in extra.items():
            if not isinstance(value, str) or len(key) > 255 or len(value) > 65535:
                raise Invalid(
                    f"Invalid input for field/attribute {key}. An image property is a string "
                    "(at most 255 characters for its name)"
                )
        return dict(extra)


def _store(request: Request) -> images.ImageStore:  # the control plane's, under STATE_DIR
    return images.ImageStore(request.app.state.settings.state_dir / "images")


@router.post("", status_code=201, dependencies=[rule("add_image")])
def create_image(
    body: Annotated[ImageCreate, Body()], db: DbDep, ctx: ContextDep
) -> dict[str, Any]:
    with db.write() as session:
        image = images.register(
            session,
            body.name,
            ctx.project_id,
            disk_format=body.disk_format,
            container_format=body.container_format,
            min_disk=body.min_disk,
            min_ram=body.min_ram,
            properties=body.properties(),
            image_id=str(body.id) if body.id is not None else None,
        )
        return views.glance_image_view(image)


@router.put("/{image_id}/file", status_code=204, dependencies=[rule("upload_image")])
async def upload_image_data(image_id: str, request: Request, db: DbDep) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/octet-stream":
        raise Invalid(
            "Invalid input for field/attribute Content-Type. An image's data is sent as "
            "application/octet-stream"
        )

    def claim() -> None:
        with db.write() as session:
            images.claim_upload(session, image_id)

    await run_in_threadpool(claim)
    writer = _store(request).writer(image_id, request.app.state.settings.image_max_bytes)
    try:
        async for chunk in request.stream():
            writer.write(chunk)
        stored = writer.finish()
    except images.TooLarge as error:
        await run_in_threadpool(_give_up, db, image_id, writer)
        return errors.error_response(413, f"Image {image_id}: {error}")
    except BaseException:
        await run_in_threadpool(_give_up, db, image_id, writer)
        raise

    def finish() -> None:
        with db.write() as session:
            images.finish_upload(session, image_id, stored, writer.place)

    try:
        await run_in_threadpool(finish)
    except NovaflowError:
        writer.abort()
        raise
    return Response(status_code=204)


def _give_up(db: Database, image_id: str, writer: images.ImageWriter) -> None:
    """An upload that failed or was too large: its bytes removed, the image queued again."""
    writer.abort()
    with db.write() as session:
        images.finish_upload(session, image_id, None, lambda: None)


# Glance's list parameters that filter on no field of the record as such (sorting is not
# offered: oldest first; images have no members, so member_status filters nothing).
_NOT_FIELDS = {"limit", "marker", "sort", "sort_key", "sort_dir", "member_status",
               "size_min", "size_max"}  # fmt: skip


def _filters(query: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Glance's field filters: `name=x` or `name=in:x,y`; any other key than its own fields is
    a property (`os_distro=debian`); `tag` looks in `tags`; `visibility=all` keeps all."""
    pairs = [
        ("tags" if key == "tag" else key, one)
        for key, value in query
        if not (key == "visibility" and value == "all")
        for one in (value.removeprefix("in:").split(",") if value.startswith("in:") else [value])
    ]
    return listing.filters(pairs, _NOT_FIELDS)


def _within_size(body: dict[str, Any], size_min: str | None, size_max: str | None) -> bool:
    if size_min is None and size_max is None:
        return True
    try:
        low = int(size_min) if size_min is not None else 0
        high = int(size_max) if size_max is not None else None
    except ValueError:
        raise Invalid(
            "Invalid input for field/attribute size_min/size_max. Not an integer."
        ) from None
    size = body.get("size")  # None until its content is uploaded: outside any range
    return size is not None and size >= low and (high is None or size <= high)


@router.get("", dependencies=[rule("get_images")])
def list_images(request: Request, session: SessionDep) -> dict[str, Any]:
    """Glance's `GET /v2/images` with its field filters (what `openstack server create
    --image <name>` sends to find an image by name) and, when `limit` is given, its pages."""
    query = request.query_params
    bodies = [views.glance_image_view(i) for i in images.all_images(session)]
    bodies = [b for b in bodies if _within_size(b, query.get("size_min"), query.get("size_max"))]
    found = listing.page(
        listing.keep(bodies, _filters(query.multi_items())), query.get("limit"), query.get("marker")
    )
    answer: dict[str, Any] = {
        "images": found.items,
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    }
    if found.next_marker is not None:  # relative to the endpoint, as Glance's; the same filters
        answer["next"] = listing.next_href(request, found.next_marker, relative_to="/v2/images")
    return answer


@router.get("/{image_id}", dependencies=[rule("get_image")])
def show_image(image_id: str, session: SessionDep) -> dict[str, Any]:
    return views.glance_image_view(images.get(session, image_id))


@router.get("/{image_id}/file", dependencies=[rule("download_image")])
def download_image_data(image_id: str, request: Request, session: SessionDep) -> StreamingResponse:
    image = images.get(session, image_id)
    if image.status != "active" or not image.has_content:
        raise Conflict(f"Image {image_id} has no data (status {image.status})")
    chunks: Iterator[bytes] = _store(request).read(image_id)
    headers = {"Content-Length": str(image.size)}
    if image.checksum:
        headers["Content-MD5"] = image.checksum
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)


@router.delete("/{image_id}", status_code=204, dependencies=[rule("delete_image")])
def delete_image(image_id: str, request: Request, db: DbDep) -> Response:
    with db.write() as session:
        images.delete(session, image_id)
    _store(request).delete(image_id)
    return Response(status_code=204)
