"""The whole stack on PostgreSQL (DATABASE_URL pointed at it): racing creates through the API
still never exceed the quota, never share an IP, and leave nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.dbs import POSTGRES_URL, fresh_database
from tests.integration.client import NovaClient
from tests.integration.leaks import leaks
from tests.stacks import running_stack
from workers.devstack import Stack


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured (NOVAFLOW_TEST_POSTGRES_URL)")
    fresh_database("postgres", Path(tmp_path_factory.mktemp("pg"))).dispose()
    with running_stack(tmp_path_factory.mktemp("pgstack"), database_url=POSTGRES_URL) as stack:
        yield stack


def test_racing_creates_on_postgres(pg_stack: Stack) -> None:
    nova = NovaClient(pg_stack.api_url, user="bob", project="pg-race")
    nova.set_quota(instances=6)
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda i: nova.create(name=f"pg-{i}"), range(16)))
    assert sorted(r.status_code for r in responses) == [202] * 6 + [403] * 10

    created = [r.json()["server"]["id"] for r in responses if r.status_code == 202]
    servers = [nova.wait_status(server_id, "ACTIVE") for server_id in created]
    addresses = {s["addresses"]["private"][0]["addr"] for s in servers}
    assert len(addresses) == 6
    assert nova.usage()["instances"] == 6

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(nova.delete, created))
    for server_id in created:
        nova.wait_status(server_id, "GONE")
    assert nova.usage() == dict.fromkeys(["instances", "cores", "ram", "ports", "floating_ips"], 0)
    assert leaks(pg_stack, created) == {}
    nova.close()
