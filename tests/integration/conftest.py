"""A real stack for integration tests: the Temporal dev server, the control-plane worker, three
compute workers on libvirt's test driver and the API, each its own process (so tests can kill
them), on a fresh SQLite database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hypervisor.faults import clear_faults
from tests.dbs import POSTGRES_URL, fresh_database
from tests.integration.client import NovaClient
from tests.stacks import running_stack
from workers.devstack import DEFAULT_HOSTS, Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as started:
        yield started


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of the module's own on PostgreSQL (its test process's database, emptied)."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured (NOVAFLOW_TEST_POSTGRES_URL)")
    fresh_database("postgres", Path(tmp_path_factory.mktemp("pg"))).dispose()
    with running_stack(tmp_path_factory.mktemp("pgstack"), database_url=POSTGRES_URL) as stack:
        yield stack


@pytest.fixture
def nova(stack: Stack, request: pytest.FixtureRequest) -> Iterator[NovaClient]:
    """A client of a user and in a project of its own, so quota, listings and keypairs (a
    user's) of one test never meet another's: each passes alone and in any order. Afterwards
    the faults the test injected are cleared and every process it killed runs again, even if
    it failed half-way: one failure does not cascade."""
    test = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:40]
    client = NovaClient(stack.api_url, user=f"u-{test}", project=f"p-{test}")
    yield client
    for host in DEFAULT_HOSTS:
        clear_faults(stack.host_state_dir(host.name))
    clear_faults(stack.control_state_dir)
    stack.ensure_running()
    client.close()


@pytest.fixture
def server(nova: NovaClient) -> Iterator[str]:
    """An ACTIVE server of the test's project, deleted afterwards (by an admin: a test may
    leave it locked), so nothing is left in flight for the next test."""
    server_id = nova.create_ok(name=f"{nova.project[:30]}-vm")
    nova.wait_status(server_id, "ACTIVE")
    yield server_id
    if nova.status(server_id) != "GONE":
        response = nova.admin.delete(f"/v2.1/servers/{server_id}")
        assert response.status_code == 204, response.text
        nova.wait_status(server_id, "GONE")
