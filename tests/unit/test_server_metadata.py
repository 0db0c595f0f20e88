"""A server's metadata and name after create: the rules, and no lost update, on SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from novaflow import server_metadata, servers
from novaflow.db import Database
from novaflow.errors import Conflict, NotFound, OverQuota
from novaflow.models import Server
from novaflow.states import TaskState
from tests.dbs import add_server


def change(db: Database, server_id: str, items: dict[str, str], *, replace: bool = False) -> None:
    with db.write() as s:
        server = servers.get_visible_server(s, server_id, "p", is_admin=False, for_update=True)
        if replace:
            server_metadata.replace(s, server, items)
        else:
            server_metadata.merge(s, server, items)


def stored(db: Database, server_id: str) -> Server:
    with db.read() as s:
        return servers.get_server(s, server_id)


def test_merge_adds_and_overwrites_replace_drops_the_rest_delete_removes_one(
    db: Database,
) -> None:
    server_id = add_server(db, metadata={"role": "web", "tier": "1"})
    created = stored(db, server_id).updated_at

    change(db, server_id, {"tier": "2", "owner": "ops"})
    assert stored(db, server_id).metadata_ == {"role": "web", "tier": "2", "owner": "ops"}
    assert stored(db, server_id).updated_at > created

    change(db, server_id, {"only": "this"}, replace=True)
    assert stored(db, server_id).metadata_ == {"only": "this"}

    with db.write() as s:
        server = servers.get_visible_server(s, server_id, "p", is_admin=False, for_update=True)
        server_metadata.delete_item(s, server, "only")
    assert stored(db, server_id).metadata_ == {}
    with pytest.raises(NotFound, match="Metadata item was not found"), db.write() as s:
        server_metadata.delete_item(s, servers.get_server(s, server_id), "only")


def test_a_server_holds_at_most_128_items_and_a_refused_change_changes_nothing(
    db: Database,
) -> None:
    full = {f"k{i}": "v" for i in range(128)}
    server_id = add_server(db)
    change(db, server_id, full, replace=True)
    change(db, server_id, {"k0": "new value"})  # overwriting a key adds no item

    with pytest.raises(OverQuota) as err:
        change(db, server_id, {"one-more": "v"})
    assert str(err.value) == (
        "Quota exceeded for metadata_items: Requested 129, but the limit is "
        "128 metadata_items per server"
    )
    assert stored(db, server_id).metadata_ == {**full, "k0": "new value"}


def test_a_server_being_deleted_refuses_changes_like_nova(db: Database) -> None:
    server_id = add_server(db, metadata={"role": "web"})
    with db.write() as s:
        servers.get_server(s, server_id).task_state = TaskState.DELETING

    with pytest.raises(Conflict) as err:
        change(db, server_id, {"tier": "2"})
    assert str(err.value) == (
        f"Cannot 'update metadata' instance {server_id} while it is in task_state deleting"
    )
    with pytest.raises(Conflict, match="'delete metadata'"), db.write() as s:
        server_metadata.delete_item(s, servers.get_server(s, server_id), "role")
    with pytest.raises(Conflict, match="'update'"), db.write() as s:
        servers.rename(s, servers.get_server(s, server_id), "new-name")
    assert stored(db, server_id).metadata_ == {"role": "web"}
    assert stored(db, server_id).name == "vm"


def test_only_the_owner_project_or_an_admin_sees_a_server_and_never_a_deleted_one(
    db: Database,
) -> None:
    server_id = add_server(db)
    with db.read() as s:
        with pytest.raises(NotFound, match=f"Instance {server_id} could not be found"):
            servers.get_visible_server(s, server_id, "other", is_admin=False)
        assert servers.get_visible_server(s, server_id, "other", is_admin=True).id == server_id
    deleted_id = add_server(db)
    with db.write() as s:
        servers.mark_deleted(s, deleted_id)
    with db.read() as s, pytest.raises(NotFound):
        servers.get_visible_server(s, deleted_id, "p", is_admin=False)


def test_concurrent_merges_of_distinct_keys_all_survive(db: Database) -> None:
    server_id = add_server(db, metadata={"role": "web"})
    writers = 20
    start = threading.Barrier(writers)

    def add_key(index: int) -> None:
        start.wait()
        change(db, server_id, {f"key-{index}": str(index)})

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(add_key, range(writers)))
    expected = {"role": "web", **{f"key-{i}": str(i) for i in range(writers)}}
    assert stored(db, server_id).metadata_ == expected
