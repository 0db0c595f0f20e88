"""The whole stack on PostgreSQL (DATABASE_URL pointed at it): racing creates through the API
still never exceed the quota, never share an IP, and leave nothing behind."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.integration.client import NovaClient
from tests.integration.leaks import leaks
from workers.devstack import Stack


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
