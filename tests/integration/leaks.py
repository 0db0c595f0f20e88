"""What 'nothing leaked' means, checked against the database and the hosts' libvirt state."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import col, select

from novaflow.db import Database
from novaflow.models import Claim, FloatingIP, Port, Reservation
from workers.devstack import Stack


def domains_on_hosts(stack: Stack) -> dict[str, set[str]]:
    """Domains each compute worker has defined (its driver mirrors libvirt's definitions)."""
    found: dict[str, set[str]] = {}
    for host in stack.hosts:
        directory: Path = stack.host_state_dir(host.name) / "domains"
        found[host.name] = (
            {p.stem for p in directory.glob("*.xml")} if directory.exists() else set()
        )
    return found


def disks_on_hosts(stack: Stack) -> dict[str, set[str]]:
    """Root volumes each compute worker has made (its driver mirrors them too)."""
    found: dict[str, set[str]] = {}
    for host in stack.hosts:
        directory: Path = stack.host_state_dir(host.name) / "volumes"
        found[host.name] = (
            {p.stem for p in directory.glob("*.json")} if directory.exists() else set()
        )
    return found


def leaks(stack: Stack, server_ids: list[str]) -> dict[str, object]:
    """Everything the given servers still hold. Empty when all was given back."""
    db = Database(str(stack.database_url))
    try:
        with db.read() as s:
            held: dict[str, object] = {
                "claims": s.exec(
                    select(Claim.id)
                    .where(col(Claim.server_id).in_(server_ids))
                    .where(Claim.state == "active")
                ).all(),
                "ports": s.exec(select(Port.id).where(col(Port.device_id).in_(server_ids))).all(),
                # The server's own reservation, and any a resize of it made for its growth.
                "quota": [
                    rid
                    for rid in s.exec(
                        select(Reservation.id).where(Reservation.state != "released")
                    ).all()
                    if rid.split("/")[0] in server_ids
                ],
                "floating_ips": s.exec(
                    select(FloatingIP.address).where(
                        col(FloatingIP.port_id).in_(
                            select(Port.id).where(col(Port.device_id).in_(server_ids))
                        )
                    )
                ).all(),
            }
    finally:
        db.dispose()
    wanted = set(server_ids)
    held["domains"] = {h: d & wanted for h, d in domains_on_hosts(stack).items() if d & wanted}
    held["disks"] = {h: d & wanted for h, d in disks_on_hosts(stack).items() if d & wanted}
    return {k: v for k, v in held.items() if v}
