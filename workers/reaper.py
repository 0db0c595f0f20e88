"""The host's own clean-up of domains its servers no longer want here (Nova's
`running_deleted_instance_action = reap`, widened to builds that moved on).

A delete or an undo that found the host down completes without it; the server then holds no
claim on this host any more. When the host is back, its compute worker removes what is left:
the domain and the disk of every server the database knows that holds no claim here. A domain
or disk the database does not know at all is left alone (an orphan is reported, never
destroyed silently)."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlmodel import col, select

from hypervisor.libvirt_host import LibvirtHost
from novaflow import hosts, servers
from novaflow.db import Database
from novaflow.models import InstanceAction, utcnow

log = logging.getLogger("workers.reaper")


def reap_unwanted_domains(
    db: Database, driver: LibvirtHost, host: str, console_dir: Path | None = None
) -> list[str]:
    """Destroy, undefine and delete the disk (and console log) of every server here that is
    not wanted here. Returns the server ids reaped. Idempotent."""
    found = sorted(set(driver.list_domains()) | set(driver.list_disks()))
    with db.read() as session:
        unwanted = hosts.unwanted_on_host(session, host, found)
        orphans = hosts.unknown_among(session, found)
    for server_id in orphans:
        log.warning(
            "orphan on %s: domain or disk %s is unknown to the database; left alone",
            host,
            server_id,
        )
    for server_id in unwanted:
        started = utcnow()
        driver.undefine(server_id)
        driver.delete_disk(server_id)
        if console_dir is not None:
            (console_dir / f"{server_id}.log").unlink(missing_ok=True)
        log.warning("reaped the domain of server %s on %s (no claim here)", server_id, host)
        with db.write() as session:
            # Recorded under the server's latest operation: the delete or the build that
            # left this host behind.
            latest = session.exec(
                select(InstanceAction)
                .where(InstanceAction.server_id == server_id)
                .order_by(col(InstanceAction.start_time).desc())
            ).first()
            if latest is not None:
                servers.record_event(
                    session,
                    server_id,
                    latest.request_id,
                    f"reap_domain@{host}",
                    start_time=started,
                    host=host,
                )
    return unwanted
