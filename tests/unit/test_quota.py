"""Quota arithmetic and its atomicity, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from novaflow import quota, server_groups
from novaflow.db import Database
from novaflow.errors import Invalid, OverQuota

TINY = quota.QuotaDeltas(instances=1, cores=1, ram=512, ports=1)


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def test_reserve_counts_usage_and_release_gives_it_back(db: Database) -> None:
    [rid] = ids(1)
    with db.write() as s:
        assert quota.reserve(s, "p", [rid], quota.QuotaDeltas(cores=4, ram=2048, ports=2)) == [rid]
    with db.read() as s:
        assert quota.get_usage(s, "p") == {
            "instances": 1,
            "cores": 4,
            "ram": 2048,
            "ports": 2,
            "floating_ips": 0,
        }
    with db.write() as s:
        quota.commit(s, rid)
        assert quota.release(s, rid) is True
        assert quota.release(s, rid) is False  # idempotent: nothing given back twice
    with db.read() as s:
        assert quota.get_usage(s, "p") == dict.fromkeys(quota.RESOURCES, 0)


def test_reserve_is_idempotent_by_id(db: Database) -> None:
    rid = ids(1)
    with db.write() as s:
        quota.reserve(s, "p", rid, TINY)
    with db.write() as s:
        assert quota.reserve(s, "p", rid, TINY) == rid
    with db.read() as s:
        assert quota.get_usage(s, "p")["instances"] == 1


def test_over_quota_names_the_resource_like_nova(db: Database) -> None:
    with db.write() as s:
        quota.set_limits(s, "p", {"cores": 2})
        quota.reserve(s, "p", ids(1), quota.QuotaDeltas(cores=2))
    with pytest.raises(OverQuota) as err, db.write() as s:
        quota.reserve(s, "p", ids(1), quota.QuotaDeltas(cores=1))
    assert str(err.value) == (
        "Quota exceeded for cores: Requested 1, but already used 2 of 2 cores"
    )
    with db.read() as s:
        assert quota.get_usage(s, "p")["instances"] == 1  # the refused one changed nothing


def test_multi_create_takes_as_many_as_fit_but_not_fewer_than_min(db: Database) -> None:
    with db.write() as s:
        quota.set_limits(s, "p", {"instances": 3})
    five = ids(5)
    with db.write() as s:
        assert quota.reserve(s, "p", five, TINY, min_count=2) == five[:3]
    with pytest.raises(OverQuota), db.write() as s:
        quota.reserve(s, "p", ids(2), TINY, min_count=1)
    with db.read() as s:
        assert quota.get_usage(s, "p")["instances"] == 3


def test_all_or_nothing_when_min_equals_max(db: Database) -> None:
    with db.write() as s:
        quota.set_limits(s, "p", {"instances": 3})
    with pytest.raises(OverQuota), db.write() as s:
        quota.reserve(s, "p", ids(4), TINY)
    with db.read() as s:
        assert quota.get_usage(s, "p")["instances"] == 0


def test_unlimited_and_invalid_limits(db: Database) -> None:
    with db.write() as s:
        quota.set_limits(s, "p", {"instances": -1})
        quota.reserve(s, "p", ids(50), TINY.__class__(instances=1))
    with pytest.raises(Invalid, match="instances"), db.write() as s:
        quota.set_limits(s, "p", {"instances": -2})
    with pytest.raises(Invalid, match="bogus"), db.write() as s:
        quota.set_limits(s, "p", {"bogus": 1})


def test_racing_reservations_never_exceed_the_limit(db: Database) -> None:
    with db.write() as s:
        quota.set_limits(s, "race", {"instances": 10})

    def one() -> bool:
        try:
            with db.write() as s:
                quota.reserve(s, "race", ids(1), TINY)
            return True
        except OverQuota:
            return False

    with ThreadPoolExecutor(max_workers=15) as pool:
        results = list(pool.map(lambda _: one(), range(30)))
    assert results.count(True) == 10
    with db.read() as s:
        assert quota.get_usage(s, "race")["instances"] == 10


def test_a_limit_below_usage_is_refused_unless_forced(db: Database) -> None:
    with db.write() as s:
        quota.reserve(s, "p", ids(3), TINY)
    with pytest.raises(Invalid, match="already used and reserved 3"), db.write() as s:
        quota.set_limits(s, "p", {"instances": 2})
    with db.write() as s:
        assert quota.set_limits(s, "p", {"instances": 2}, force=True)["instances"] == 2
    with pytest.raises(OverQuota), db.write() as s:  # forced: only new reservations stop
        quota.reserve(s, "p", ids(1), TINY)


def test_a_confirmed_resize_settles_usage_once(db: Database) -> None:
    """Up: the growth reserved at the gate is folded into the server's reservation. Down: the
    difference is given back. Both idempotent; a delete releases whatever is left."""
    [server] = ids(1)
    growth = f"{server}/resize/req-1"
    with db.write() as s:
        quota.reserve(s, "p", [server], quota.QuotaDeltas(instances=1, cores=1, ram=512))
        quota.commit(s, server)
        quota.reserve(s, "p", [growth], quota.QuotaDeltas(instances=0, cores=1, ram=1536))
    with db.write() as s:
        quota.settle_resize(s, server, growth, cores=2, ram=2048)
        quota.settle_resize(s, server, growth, cores=2, ram=2048)  # a retry changes nothing
    with db.read() as s:
        assert quota.get_usage(s, "p")["cores"] == 2 and quota.get_usage(s, "p")["ram"] == 2048
    with db.write() as s:
        quota.settle_resize(s, server, None, cores=1, ram=512)  # down again: no growth
    with db.read() as s:
        assert quota.get_usage(s, "p")["ram"] == 512
    with db.write() as s:
        assert quota.release_all(s, server) == 1  # the growth was folded, not released twice
    with db.read() as s:
        assert quota.get_usage(s, "p") == dict.fromkeys(quota.RESOURCES, 0)


def test_a_delete_releases_a_resize_growth_never_settled(db: Database) -> None:
    [server] = ids(1)
    with db.write() as s:
        quota.reserve(s, "p", [server], quota.QuotaDeltas(instances=1, cores=1, ram=512))
        quota.reserve(s, "p", [f"{server}/resize/r"], quota.QuotaDeltas(instances=0, ram=1536))
    with db.write() as s:
        assert quota.release_all(s, server) == 2
        assert quota.release_all(s, server) == 0
    with db.read() as s:
        assert quota.get_usage(s, "p") == dict.fromkeys(quota.RESOURCES, 0)


def test_cancel_gives_back_and_forgets_the_reservation(db: Database) -> None:
    rid, other = ids(2)
    with db.write() as s:
        quota.reserve(s, "p", [rid, other], TINY)
    with db.write() as s:
        quota.cancel(s, rid)
        quota.cancel(s, rid)  # idempotent
    with db.read() as s:
        assert quota.get_usage(s, "p")["instances"] == 1
    with db.write() as s:  # as if it never was: the id can be reserved afresh
        assert quota.reserve(s, "p", [rid], TINY) == [rid]
    with db.read() as s:
        assert quota.get_usage(s, "p")["instances"] == 2


def test_racing_group_creations_stop_at_the_limit(db: Database) -> None:
    with db.write() as s:
        quota.set_limits(s, "race", {"server_groups": 3})

    def one(i: int) -> bool:
        try:
            with db.write() as s:
                server_groups.create(s, f"g-{i}", "affinity", "race", "u")
            return True
        except OverQuota:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(16)))
    assert results.count(True) == 3
    with db.read() as s:
        assert quota.group_usage(s, "race")["server_groups"] == 3
