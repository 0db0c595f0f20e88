"""Network allocation on the control-plane worker: ports, MACs, fixed and floating IPs."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from activities.base import StepRecorder
from activities.registry import implements
from novaflow import images, ipam, servers
from novaflow.db import Database
from novaflow.models import Image
from novaflow.states import TaskState
from workflows import catalog
from workflows.contracts import (
    AllocatedPort,
    ImageContent,
    NetworkInput,
    NetworkResult,
    ServerRef,
    image_content,
)

_PORT_NAMESPACE = uuid.UUID("6f1c1d1e-7c43-4d5e-9a55-2b0c7d4e8a10")


def port_id_for(server_id: str, index: int) -> str:
    """The port a create makes for its index-th network: known before the step runs, so the
    step is idempotent and its compensation can be registered first."""
    return str(uuid.uuid5(_PORT_NAMESPACE, f"{server_id}/port/{index}"))


def floating_ip_id_for(server_id: str, index: int) -> str:
    return str(uuid.uuid5(_PORT_NAMESPACE, f"{server_id}/fip/{index}"))


def image_content_of(session: Session, image: Image | None) -> ImageContent | None:
    """The image's content as a host fetches it, with its kernel and ramdisk (None: a blank
    disk)."""
    return image_content(images.content_of(session, image))


def allocated_ports(session: Session, server_id: str) -> list[AllocatedPort]:
    """The ports a server holds, as a host plugs them in (a rebuild or a move reuses them)."""
    return [
        AllocatedPort(
            port_id=view.port_id,
            network_id=view.network_id,
            network_name=view.network_name,
            mac_address=view.mac_address,
            fixed_ips=view.fixed_ips,
            floating_ips=view.floating_ips,
        )
        for view in ipam.ports_of(session, server_id)
    ]


class NetworkActivities:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.recorder = StepRecorder(db)

    @implements(catalog.ALLOCATE_NETWORK)
    def allocate_network(self, inp: NetworkInput) -> NetworkResult:
        server_id = inp.ctx.server_id
        with self.recorder.step(inp.ctx, "allocate_network") as session:
            servers.ensure_still_wanted(session, server_id)
            allocated = []
            for index, request in enumerate(inp.ports):
                if request.port_id is not None:
                    port = ipam.bind_port(session, request.port_id, server_id)
                else:
                    port = ipam.create_port(
                        session,
                        port_id_for(server_id, index),
                        request.network_id or "",
                        inp.project_id,
                        device_id=server_id,
                        fixed_ip=request.fixed_ip,
                        owned_by_server=True,
                    )
                if request.floating_ip:
                    ipam.allocate_floating_ip(
                        session, floating_ip_id_for(server_id, index), inp.project_id, port
                    )
                view = ipam.port_view(session, port)
                allocated.append(
                    AllocatedPort(
                        port_id=view.port_id,
                        network_id=view.network_id,
                        network_name=view.network_name,
                        mac_address=view.mac_address,
                        fixed_ips=view.fixed_ips,
                        floating_ips=view.floating_ips,
                    )
                )
            servers.set_task_state(session, server_id, TaskState.SPAWNING)
            return NetworkResult(ports=allocated)

    @implements(catalog.RELEASE_NETWORK)
    def release_network(self, inp: ServerRef) -> None:
        with self.recorder.step(inp.ctx, inp.ctx.event or "release_network") as session:
            ipam.release_for_server(session, inp.ctx.server_id)
