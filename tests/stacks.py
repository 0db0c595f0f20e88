"""Whole stacks for tests: real processes on free ports, always stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workers.devstack import Stack, free_port

# Hosts are declared down quickly, so tests of a dead host do not wait 30 s.
TEST_ENV = {
    "NOVAFLOW_SERVICE_DOWN_SECONDS": "6",
    "NOVAFLOW_HEARTBEAT_SECONDS": "1",
    # Longer than a killed compute worker takes to restart in the crash tests.
    "NOVAFLOW_HOST_PICKUP_SECONDS": "8",
    # Tests hold and fail steps through fault files (off outside tests and drills).
    "NOVAFLOW_FAULT_INJECTION": "1",
    # The real tier's guest ignores ACPI: a clean shutdown gives up (and cuts power) quickly.
    "NOVAFLOW_SHUTDOWN_TIMEOUT_SECONDS": "3",
    # Small enough that a test can send a larger image in a second.
    "NOVAFLOW_IMAGE_MAX_BYTES": str(32 * 1024**2),
    # Hosts' image caches are cleaned of unused images within seconds, so tests can see it.
    "NOVAFLOW_IMAGE_CACHE_CLEAN_SECONDS": "1",
    "NOVAFLOW_IMAGE_CACHE_MAX_AGE_SECONDS": "2",
}


@contextmanager
def running_stack(
    state_dir: Path, env: dict[str, str] | None = None, **options: Any
) -> Iterator[Stack]:
    """A fresh stack on free ports, stopped (every process) when the block ends. `env`: more
    settings for every process (e.g. auth_strategy keycloak)."""
    stack = Stack(
        state_dir=state_dir,
        api_port=free_port(),
        temporal_port=free_port(),
        ui_port=free_port(),
        extra_env={**TEST_ENV, **(env or {})},
        **options,
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
