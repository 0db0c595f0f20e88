"""Compute worker: one process per hypervisor host, polling `compute@<host>`. It owns that
host's libvirt connection, registers the host's capacity and heartbeats.

    python -m workers.compute --host host-a --uri test:///abs/path/host-a.xml
    python -m workers.compute --host h1 --uri qemu:///system --pool novaflow --nic-mode user

A worker on a real hypervisor runs on its host (as nova-compute does): it writes the disks of
the servers that move here itself, pulling them from the source host's worker, which serves
them at --disk-listen (hypervisor/disk_transfer.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.worker import Worker

import codec
from activities.compute import NIC_MODES, ComputeActivities
from activities.image_cache import ImageCache
from activities.registry import registered
from hypervisor.disk_transfer import DiskServer, default_listen, transfer_keys
from hypervisor.faults import FaultInjector
from hypervisor.libvirt_host import DEFAULT_POOL, LibvirtHost
from hypervisor.test_driver import TestDriverHost
from novaflow import hosts
from novaflow.config import get_settings
from novaflow.db import Database
from novaflow.net import parse_advertised_address
from workers.common import connect, setup_logging, stop_event_on_signals
from workers.reaper import reap_unwanted_domains
from workers.service_token import image_api_token
from workers.step_faults import StepFaults, names_in
from workflows.catalog import RunsOn
from workflows.contracts import compute_task_queue


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True, help="host name (its task queue: compute@HOST)")
    parser.add_argument("--uri", required=True, help="libvirt URI, e.g. qemu:///system")
    parser.add_argument("--az", default="nova", help="availability zone")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the host keeps its state (default: STATE_DIR/hosts/HOST)",
    )
    parser.add_argument(
        "--pool", default=DEFAULT_POOL, help="libvirt storage pool for the servers' root disks"
    )
    parser.add_argument(
        "--nic-mode",
        choices=NIC_MODES,
        default="network",
        help="how ports reach guests: the host's libvirt network 'default' (a bridge), "
        "QEMU user-mode networking (no bridge needed), or no NIC",
    )
    parser.add_argument(
        "--disk-listen",
        type=parse_advertised_address,
        default=None,
        metavar="ADDRESS:PORT",
        help="where to serve this host's disks to the hosts servers move to (real hypervisors "
        "only; default: the address of --uri's host, else 127.0.0.1, on a free port)",
    )
    return parser.parse_args()


async def reap_forever(
    db: Database, driver: LibvirtHost, host: str, every: float, console_dir: Path | None
) -> None:
    """At start and then every `every` seconds: remove the domains and disks of servers that
    hold no claim here any more (deleted, or built elsewhere, while this host was down)."""
    while True:
        try:
            await asyncio.to_thread(reap_unwanted_domains, db, driver, host, console_dir)
        except Exception:
            logging.getLogger("novaflow.compute").exception("reaping on %s failed", host)
        await asyncio.sleep(every)


async def clean_cache_forever(
    db: Database, images: ImageCache, host: str, every: float, max_age: float
) -> None:
    """Every `every` seconds: remove the cached images no server on this host uses and that
    have not been used for `max_age` seconds."""
    log = logging.getLogger("novaflow.compute")
    while True:
        await asyncio.sleep(every)
        try:
            in_use = await asyncio.to_thread(_images_in_use, db, host)
            removed = await asyncio.to_thread(images.clean, in_use, max_age)
            if removed:
                log.info("removed unused cached images on %s: %s", host, ", ".join(removed))
        except Exception:
            log.exception("cleaning the image cache of %s failed", host)


def _images_in_use(db: Database, host: str) -> set[str]:
    with db.read() as session:
        return hosts.images_in_use(session, host)


async def heartbeat_forever(db: Database, host: str, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(_beat, db, host)
        except Exception:  # a missed beat is logged; the next one may well succeed
            logging.getLogger("novaflow.compute").exception("heartbeat of %s failed", host)


def _beat(db: Database, host: str) -> None:
    with db.write() as session:
        hosts.heartbeat(session, host)


async def main() -> None:
    args = parse_args()
    log = setup_logging(f"compute@{args.host}")
    settings = get_settings()
    state_dir = args.state_dir or settings.state_dir / "hosts" / args.host
    state_dir.mkdir(parents=True, exist_ok=True)
    # Tests and drills only: inert unless the setting is on (off by default).
    faults = FaultInjector(state_dir) if settings.fault_injection else None
    simulated = args.uri.startswith("test:")  # libvirt's test driver: no real guests
    driver = (
        TestDriverHost(args.uri, state_dir, faults=faults, pool=args.pool)
        if simulated
        else LibvirtHost(args.uri, faults=faults, pool=args.pool)
    )
    driver.connect()
    info = driver.node_info()
    db = Database(settings.database_url)
    domain_type = "test" if simulated else "qemu"
    # Real guests log their serial console here; the test driver runs none.
    console_dir = None if simulated else state_dir / "console"
    if console_dir is not None:
        console_dir.mkdir(exist_ok=True)
    # A real host copies disks to and from other hosts' workers; the test driver copies none.
    disk_keys: list[bytes] = []
    disk_server = None
    if not simulated:
        disk_keys = transfer_keys(codec.load_keys(settings.payload_keys, settings.state_dir))
        listen = args.disk_listen or default_listen(args.uri)
        disk_server = DiskServer(listen, args.host, driver.disk_to_send, disk_keys).start()
    with db.write() as session:
        hosts.register_host(
            session,
            args.host,
            vcpus=info.vcpus,
            memory_mb=info.memory_mb,
            disk_gb=info.disk_gb,
            arch=info.arch,
            libvirt_uri=args.uri,
            hypervisor_type=domain_type,
            availability_zone=args.az,
            disk_transfer_url=disk_server.url if disk_server is not None else None,
        )
    client = await connect(settings)
    images = ImageCache(driver, settings.api_url, image_api_token(settings), state_dir)
    compute = ComputeActivities(
        args.host,
        driver,
        db,
        domain_type=domain_type,
        nic_mode=args.nic_mode,
        console_dir=console_dir,
        check_boot_files=not simulated,
        images=images,
        disk_keys=disk_keys,
    )
    stop = stop_event_on_signals()
    beat = asyncio.create_task(heartbeat_forever(db, args.host, settings.heartbeat_seconds))
    reaper = asyncio.create_task(
        reap_forever(db, driver, args.host, settings.reap_seconds, console_dir)
    )
    cleaner = asyncio.create_task(
        clean_cache_forever(
            db,
            images,
            args.host,
            settings.image_cache_clean_seconds,
            settings.image_cache_max_age_seconds,
        )
    )
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = Worker(
            client,
            task_queue=compute_task_queue(args.host),
            activities=registered([compute], RunsOn.HOST),
            activity_executor=executor,
            max_concurrent_activities=16,
            interceptors=[StepFaults(faults, names_in(db))] if faults is not None else [],
        )
        async with worker:
            log.info(
                "compute worker ready: %s, %d vCPU, %d MiB, %d GiB, disks served at %s (pid %d)",
                args.uri,
                info.vcpus,
                info.memory_mb,
                info.disk_gb,
                disk_server.url if disk_server is not None else "-",
                os.getpid(),
            )
            await stop.wait()
    beat.cancel()
    reaper.cancel()
    cleaner.cancel()
    if disk_server is not None:
        disk_server.stop()
    driver.close()
    db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
