"""A real stack for integration tests: the Temporal dev server, the control-plane worker, three
compute workers on libvirt's test driver and the API, each its own process (so tests can kill
them), on a fresh SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from novaflow.devstack import DEFAULT_HOSTS, Stack, free_port
from novaflow.virt.faults import clear_faults
from tests.integration.client import NovaClient

TEST_ENV = {"NOVAFLOW_SERVICE_DOWN_SECONDS": "6", "NOVAFLOW_HEARTBEAT_SECONDS": "1"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state: Path = tmp_path_factory.mktemp("stack")
    stack = Stack(
        state_dir=state,
        api_port=free_port(),
        temporal_port=free_port(),
        ui_port=free_port(),
        # Hosts are declared down quickly, so tests of a dead host do not wait 30 s.
        extra_env=TEST_ENV,
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def nova(stack: Stack, request: pytest.FixtureRequest) -> Iterator[NovaClient]:
    """A client in a project of its own, so quota and listings of one test never meet
    another's. Faults injected by the test are cleared afterwards."""
    project = "p-" + request.node.name.replace("[", "-").replace("]", "")[:40]
    client = NovaClient(stack.api_url, user="alice", project=project)
    yield client
    for host in DEFAULT_HOSTS:
        clear_faults(stack.host_state_dir(host.name))
    client.close()
