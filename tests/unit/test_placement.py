"""Host claims: atomic, idempotent, never beyond the allocation ratios."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from novaflow import placement
from novaflow.db import Database
from novaflow.hosts import register_host, unknown_among, unwanted_on_host
from novaflow.models import Host, ServerGroup, ServerGroupMember, utcnow
from novaflow.resources import Resources
from tests.dbs import add_server


def add_host(
    db: Database, name: str, vcpus: int = 4, memory_mb: int = 4096, disk_gb: int = 100
) -> None:
    with db.write() as s:
        register_host(
            s,
            name,
            vcpus=vcpus,
            memory_mb=memory_mb,
            disk_gb=disk_gb,
            arch="x86_64",
            libvirt_uri="test:///default",
            hypervisor_type="test",
        )


def usage(db: Database, name: str) -> tuple[int, int, int, int]:
    with db.read() as s:
        h = s.get(Host, name)
        assert h is not None
        return h.vcpus_used, h.memory_mb_used, h.disk_gb_used, h.running_vms


def test_claim_and_release_are_idempotent(db: Database) -> None:
    add_host(db, "h1")
    for _ in range(2):
        with db.write() as s:
            assert placement.claim(s, "c1", "srv", "h1", Resources(2, 1024, 10))
    assert usage(db, "h1") == (2, 1024, 10, 1)
    for expected in (True, False):
        with db.write() as s:
            assert placement.release(s, "c1") is expected
    assert usage(db, "h1") == (0, 0, 0, 0)


def test_claim_respects_allocation_ratios(db: Database) -> None:
    add_host(db, "h1", vcpus=2, memory_mb=1024)  # cpu ratio 4.0 -> 8 vCPUs; ram ratio 1.0
    with db.write() as s:
        assert placement.claim(s, "a", "s1", "h1", Resources(8, 512, 1))
        assert not placement.claim(s, "b", "s2", "h1", Resources(1, 1, 1))  # no vCPU left
    with db.write() as s:
        placement.release(s, "a")
        assert not placement.claim(
            s, "c", "s3", "h1", Resources(1, 2048, 1)
        )  # RAM is not overcommitted
    assert usage(db, "h1") == (0, 0, 0, 0)


def test_concurrent_claims_never_overcommit(db: Database) -> None:
    add_host(db, "h1", vcpus=2, memory_mb=100_000, disk_gb=1000)  # room for exactly 8 x 1 vCPU

    def one(i: int) -> bool:
        with db.write() as s:
            return placement.claim(s, f"c{i}", f"s{i}", "h1", Resources(1, 10, 1))

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(one, range(24)))
    assert results.count(True) == 8
    assert usage(db, "h1")[0] == 8


def test_anti_affinity_is_rechecked_inside_the_claim(db: Database) -> None:
    add_host(db, "h1")
    add_host(db, "h2")
    with db.write() as s:
        group = ServerGroup(name="g", policy="anti-affinity", project_id="p", user_id="u")
        s.add(group)
        s.flush()
        s.add(ServerGroupMember(group_id=group.id, server_id="s1"))
        s.add(ServerGroupMember(group_id=group.id, server_id="s2"))
        group_id = group.id
    with db.write() as s:
        assert placement.claim(s, "c1", "s1", "h1", Resources(1, 1, 1), group_id=group_id)
    with db.write() as s:
        assert not placement.claim(s, "c2", "s2", "h1", Resources(1, 1, 1), group_id=group_id)
        assert placement.claim(s, "c3", "s2", "h2", Resources(1, 1, 1), group_id=group_id)


def test_host_states_mark_stale_hosts_down(db: Database) -> None:
    add_host(db, "fresh")
    add_host(db, "stale")
    with db.write() as s:
        stale = s.get(Host, "stale")
        assert stale is not None
        stale.last_heartbeat = utcnow() - timedelta(minutes=5)
    with db.read() as s:
        states = {h.name: h.up for h in placement.host_states(s, utcnow(), timedelta(seconds=30))}
    assert states == {"fresh": True, "stale": False}


def test_only_known_servers_without_a_claim_on_the_host_are_reaped(db: Database) -> None:
    add_host(db, "h1")
    add_host(db, "h2")
    for server_id in ("built-here", "moved-on", "deleted", "building-elsewhere"):
        add_server(db, server_id, deleted=server_id == "deleted")
    with db.write() as s:
        assert placement.claim(s, "c1", "built-here", "h1", Resources(1, 512, 1))
        assert placement.claim(s, "c2", "moved-on", "h1", Resources(1, 512, 1))  # then given back
        assert placement.release(s, "c2")
        assert placement.claim(s, "c3", "moved-on", "h2", Resources(1, 512, 1))
        assert placement.claim(s, "c4", "building-elsewhere", "h2", Resources(1, 512, 1))
    found = ["built-here", "moved-on", "deleted", "unknown-orphan"]
    with db.read() as s:
        assert unwanted_on_host(s, "h1", found) == ["deleted", "moved-on"]
        # Seen from h2, the server built on h1 is not wanted there; the one it builds is.
        assert unwanted_on_host(s, "h2", ["built-here", "building-elsewhere"]) == ["built-here"]
        assert unwanted_on_host(s, "h1", []) == []
        assert unknown_among(s, found) == ["unknown-orphan"]
