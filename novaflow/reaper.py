"""The host's own clean-up of domains whose servers were deleted while it was down (Nova's
`running_deleted_instance_action = reap`). Only domains of servers the database knows as
deleted are removed; a domain the database does not know at all is left alone (an orphan is
reported, never destroyed silently)."""

from __future__ import annotations

import logging

from sqlmodel import col, select

from novaflow import hosts, servers
from novaflow.db import Database
from novaflow.models import InstanceAction, utcnow
from novaflow.virt.driver import LibvirtHost

log = logging.getLogger("novaflow.reaper")


def reap_deleted_domains(db: Database, driver: LibvirtHost, host: str) -> list[str]:
    """Destroy, undefine and delete the disk of every domain here whose server is deleted.
    Returns the server ids reaped. Idempotent."""
    with db.read() as session:
        deleted = hosts.deleted_servers_among(session, driver.list_domains())
    for server_id in deleted:
        started = utcnow()
        driver.undefine(server_id)
        driver.delete_disk(server_id)
        log.warning("reaped the domain of deleted server %s on %s", server_id, host)
        with db.write() as session:
            delete = session.exec(
                select(InstanceAction)
                .where(InstanceAction.server_id == server_id)
                .where(InstanceAction.action == "delete")
                .order_by(col(InstanceAction.start_time).desc())
            ).first()
            if delete is not None:
                servers.record_event(
                    session,
                    server_id,
                    delete.request_id,
                    f"reap_domain@{host}",
                    start_time=started,
                    host=host,
                )
    return deleted
