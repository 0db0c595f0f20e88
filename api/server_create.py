"""Turns a validated POST /servers body into the create workflow's input, checking everything
that needs the database: flavor, image, networks, ports, group, zone. Bad input is refused
here with a 4xx naming the field, so it never reaches Temporal and nothing is created."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from api.auth import RequestContext
from api.schemas import ServerCreateBody
from novaflow import images, ipam, keypairs, server_metadata
from novaflow.errors import Conflict, Invalid, PortInUse
from novaflow.models import FixedIP, Flavor, Host, Image, Network, Port, ServerGroup
from workflows.contracts import (
    CreateRequest,
    NewServer,
    PortRequest,
    ReserveInput,
    image_content,
)


def build_reserve_input(
    session: Session, body: ServerCreateBody, ctx: RequestContext, request_id: str
) -> ReserveInput:
    spec = body.server
    flavor = _flavor(session, spec.flavorRef)
    image = _image(session, spec.imageRef)
    if image.min_disk and flavor.disk < image.min_disk:
        raise Invalid(
            f"Invalid input for field/attribute flavorRef. Flavor's disk is too small "
            f"for requested image. Flavor disk is {flavor.disk} GiB, minimum requested "
            f"disk is {image.min_disk} GiB."
        )
    if image.min_ram and flavor.ram < image.min_ram:
        raise Invalid(
            "Invalid input for field/attribute flavorRef. Flavor's memory is too small "
            "for requested image."
        )
    max_count = spec.max_count if spec.max_count is not None else spec.min_count
    if max_count < spec.min_count:
        raise Invalid(
            "Invalid input for field/attribute max_count. "
            f"min_count ({spec.min_count}) must be <= max_count ({max_count})"
        )
    server_metadata.check_item_count(len(spec.metadata))
    if spec.key_name is not None:
        _check_key_name(session, spec.key_name, ctx)
    ports = _port_requests(session, body, ctx, max_count)
    if spec.availability_zone is not None:
        _check_zone(session, spec.availability_zone)
    group_id = _group(session, body, ctx)

    servers = [
        NewServer(
            server_id=str(uuid.uuid4()),
            name=spec.name if max_count == 1 else f"{spec.name}-{index + 1}",
            launch_index=index,
        )
        for index in range(max_count)
    ]
    request = CreateRequest(
        request_id=request_id,
        reservation_id="r-" + uuid.uuid4().hex[:8],
        project_id=ctx.project_id,
        user_id=ctx.user_id,
        flavor_id=flavor.id,
        flavor_name=flavor.name,
        resources=flavor.resources,
        image_id=image.id,
        image_properties=dict(image.properties),
        ports=ports,
        availability_zone=spec.availability_zone,
        server_group_id=group_id,
        key_name=spec.key_name,
        user_data=spec.user_data,
        metadata=dict(spec.metadata),
        description=spec.description,
        tags=list(spec.tags or []),
        image_content=image_content(images.content_of(session, image)),
    )
    return ReserveInput(request=request, servers=servers, min_count=spec.min_count)


def _flavor(session: Session, ref: str | int) -> Flavor:
    flavor_id = str(ref).rstrip("/").rsplit("/", 1)[-1]
    flavor = session.get(Flavor, flavor_id)
    if flavor is None:
        raise Invalid(
            f"Invalid input for field/attribute flavorRef. Flavor {ref} could not be found."
        )
    return flavor


def _image(session: Session, ref: str) -> Image:
    image_id = ref.rstrip("/").rsplit("/", 1)[-1]
    image = session.get(Image, image_id)
    if image is None:
        raise Invalid(
            f"Invalid input for field/attribute imageRef. Image {ref} could not be found."
        )
    if image.status != "active":
        raise Invalid(
            f"Invalid input for field/attribute imageRef. Image {image_id} is not active."
        )
    images.check_boot_images(session, image, "imageRef")
    return image


def _check_key_name(session: Session, name: str, ctx: RequestContext) -> None:
    """The key must be one of the calling user's keypairs (keypairs belong to users, as Nova)."""
    if keypairs.find(session, ctx.user_id, name) is None:
        raise Invalid(
            "Invalid input for field/attribute key_name. Invalid key_name provided. "
            f"Keypair {name} not found for user {ctx.user_id}."
        )


def _visible_network(session: Session, network_id: str, ctx: RequestContext, where: str) -> Network:
    network = session.get(Network, network_id)
    if network is None or (network.project_id not in (None, ctx.project_id) and not ctx.is_admin):
        raise Invalid(
            f"Invalid input for field/attribute {where}.uuid. "
            f"Network {network_id} could not be found."
        )
    if network.external:
        raise Invalid(
            f"Invalid input for field/attribute {where}.uuid. Network {network_id} is "
            "an external network (a floating IP pool); attach a tenant network"
        )
    return network


def _port_requests(
    session: Session, body: ServerCreateBody, ctx: RequestContext, count: int
) -> list[PortRequest]:
    networks = body.server.networks
    if networks == "none":
        return []
    if networks is None or networks == "auto":
        return _available_network(session, ctx, auto=networks == "auto")

    requests: list[PortRequest] = []
    seen_ports: set[str] = set()
    seen_ips: set[tuple[str, str]] = set()
    for index, entry in enumerate(networks):
        where = f"networks[{index}]"
        if entry.port is not None:
            if entry.uuid is not None or entry.fixed_ip is not None:
                raise Invalid(
                    f"Invalid input for field/attribute {where}. Give either a port "
                    "or a network (with an optional fixed_ip), not both"
                )
            if entry.port in seen_ports:
                raise Conflict(
                    f"Port {entry.port} is given more than once, again in "
                    f"{where}.port: a port can be attached to a server only once"
                )
            seen_ports.add(entry.port)
            if count > 1:
                raise Invalid(
                    f"Invalid input for field/attribute {where}.port. Unable to launch "
                    "multiple instances with a single configured port ID."
                )
            port = session.get(Port, entry.port)
            if port is None or (port.project_id != ctx.project_id and not ctx.is_admin):
                raise Invalid(
                    f"Invalid input for field/attribute {where}.port. "
                    f"Port {entry.port} could not be found."
                )
            if port.device_id is not None:
                raise PortInUse(
                    f"Port {entry.port} in {where}.port is still in use by server {port.device_id}."
                )
            requests.append(PortRequest(port_id=port.id, floating_ip=entry.floating_ip))
            continue
        if entry.uuid is None:
            raise Invalid(
                f"Invalid input for field/attribute {where}. Each entry needs a "
                "'uuid' (network) or a 'port'"
            )
        _visible_network(session, entry.uuid, ctx, where)
        if entry.fixed_ip is not None:
            if count > 1:
                raise Invalid(
                    f"Invalid input for field/attribute {where}.fixed_ip. Unable to "
                    "launch multiple instances with a single fixed IP."
                )
            _check_fixed_ip(session, entry.uuid, entry.fixed_ip, f"{where}.fixed_ip", seen_ips)
        requests.append(
            PortRequest(
                network_id=entry.uuid, fixed_ip=entry.fixed_ip, floating_ip=entry.floating_ip
            )
        )
    return requests


def _available_network(session: Session, ctx: RequestContext, auto: bool) -> list[PortRequest]:
    """The network a server gets when the request names none: the one network the project
    may use (its own or a shared one; 409 if there are several, as Nova's NetworkAmbiguous).
    With none, a server of "auto" (2.37) is refused (there is no auto-allocated topology to
    make one), one that left `networks` out (before 2.37) has no network, as Nova's."""
    candidates = session.exec(
        select(Network)
        .where(col(Network.external).is_(False))
        .where((col(Network.project_id) == ctx.project_id) | col(Network.project_id).is_(None))
    ).all()
    if len(candidates) > 1:
        raise Conflict("Multiple possible networks found, use a Network ID to be more specific.")
    if not candidates and auto:
        raise Invalid(
            "Invalid input for field/attribute networks. Unable to automatically allocate a "
            f"network for project {ctx.project_id}"
        )
    return [PortRequest(network_id=network.id) for network in candidates]


def _check_fixed_ip(
    session: Session, network_id: str, address: str, where: str, seen: set[tuple[str, str]]
) -> None:
    """In the subnet's range, and free: an address in use fails here with a 400 (as Nova's
    FixedIpAlreadyInUse), not later as a build fault."""
    subnet = ipam.subnet_of(session, network_id)
    ipam.check_address_in_subnet(subnet, address)
    holder = session.exec(
        select(FixedIP.port_id)
        .where(FixedIP.subnet_id == subnet.id)
        .where(FixedIP.address == address)
    ).first()
    if holder is not None or (subnet.id, address) in seen:
        in_use = f"port {holder}" if holder is not None else "an earlier entry of networks"
        raise Invalid(
            f"Invalid input for field/attribute {where}. Fixed IP address {address} "
            f"is already in use on {in_use}."
        )
    seen.add((subnet.id, address))


def _check_zone(session: Session, zone: str) -> None:
    known = set(session.exec(select(Host.availability_zone)))
    if zone not in known:
        raise Invalid(
            f"Invalid input for field/attribute availability_zone. "
            f"The requested availability zone '{zone}' is not available"
        )


def _group(session: Session, body: ServerCreateBody, ctx: RequestContext) -> str | None:
    hints = body.scheduler_hints
    if hints is None or hints.group is None:
        return None
    group = session.get(ServerGroup, hints.group)
    if group is None or (group.project_id != ctx.project_id and not ctx.is_admin):
        raise Invalid(
            f"Invalid input for field/attribute os:scheduler_hints.group. "
            f"Server group {hints.group} could not be found."
        )
    return group.id
