"""What both worker processes share: logging, the Temporal client, a clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal

from temporalio.client import Client

from novaflow.config import Settings


def setup_logging(name: str) -> logging.Logger:
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s"
    )
    return logging.getLogger(name)


async def connect(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)


def stop_event_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
