"""A real stack for integration tests: the Temporal dev server, the control-plane worker, three
compute workers on libvirt's test driver and the API, each its own process (so tests can kill
them), on a fresh SQLite database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hypervisor.faults import clear_faults
from tests.integration.client import NovaClient
from tests.stacks import running_stack
from workers.devstack import DEFAULT_HOSTS, Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as started:
        yield started


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
