"""What both worker processes share: logging, the Temporal client (encrypting every payload:
codec/), a clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal

from temporalio.client import Client

import codec
from novaflow.config import Settings


def setup_logging(name: str) -> logging.Logger:
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s"
    )
    return logging.getLogger(name)


async def connect(settings: Settings) -> Client:
    keys = codec.load_keys(settings.payload_keys, settings.state_dir)
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=codec.data_converter(keys),
    )


def stop_event_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
