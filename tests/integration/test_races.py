"""Concurrency through the real API: quota never exceeded, no IP or MAC handed out twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.integration.client import NovaClient
from tests.integration.leaks import leaks
from workers.devstack import Stack


def test_thirty_racing_creates_against_a_limit_of_ten(nova: NovaClient, stack: Stack) -> None:
    nova.set_quota(instances=10)
    with ThreadPoolExecutor(max_workers=30) as pool:
        responses = list(pool.map(lambda i: nova.create(name=f"race-{i}"), range(30)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [202] * 10 + [403] * 20
    refused = next(r for r in responses if r.status_code == 403).json()
    assert "Quota exceeded for instances" in refused["forbidden"]["message"]

    created = [r.json()["server"]["id"] for r in responses if r.status_code == 202]
    servers = [nova.wait_status(server_id, "ACTIVE") for server_id in created]
    assert len(nova.servers()) == 10  # nothing half-created for the 20 refused
    assert nova.usage()["instances"] == 10

    addresses = [s["addresses"]["private"][0] for s in servers]
    assert len({a["addr"] for a in addresses}) == 10
    assert len({a["OS-EXT-IPS-MAC:mac_addr"] for a in addresses}) == 10

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(nova.delete, created))
    for server_id in created:
        nova.wait_status(server_id, "GONE")
    assert nova.usage()["instances"] == 0
    assert leaks(stack, created) == {}
