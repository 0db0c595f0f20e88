"""A server's metadata (Nova's "server metadata"): free-form string pairs a user sets at create
time and changes afterwards. One limit for both: Nova's metadata_items quota, per server.

Every change is a read-modify-write of the server's JSON column, so it runs in one write
transaction on a row the caller locked (`servers.get_visible_server(..., for_update=True)`):
concurrent changes queue instead of losing each other's keys.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlmodel import Session

from novaflow.errors import NotFound, OverQuota
from novaflow.models import Server, utcnow
from novaflow.servers import check_changeable

MAX_ITEMS = 128  # Nova's default metadata_items quota (the maxServerMeta of /limits)
MAX_KEY_LENGTH = 255
MAX_VALUE_LENGTH = 255


def check_item_count(count: int) -> None:
    """A server holds at most MAX_ITEMS items (Nova answers 403, as for any quota)."""
    if count > MAX_ITEMS:
        raise OverQuota(
            f"Quota exceeded for metadata_items: Requested {count}, but the limit is "
            f"{MAX_ITEMS} metadata_items per server"
        )


def item(server: Server, key: str) -> str:
    if key not in server.metadata_:
        raise NotFound("Metadata item was not found")
    return server.metadata_[key]


def replace(session: Session, server: Server, items: Mapping[str, str]) -> dict[str, str]:
    """All of the server's metadata becomes `items`."""
    return _store(session, server, dict(items))


def merge(session: Session, server: Server, items: Mapping[str, str]) -> dict[str, str]:
    """`items` are added to the server's metadata, replacing the values of keys it has."""
    return _store(session, server, {**server.metadata_, **items})


def delete_item(session: Session, server: Server, key: str) -> None:
    item(server, key)
    _store(session, server, {k: v for k, v in server.metadata_.items() if k != key}, "delete")


def _store(
    session: Session, server: Server, metadata: dict[str, str], verb: str = "update"
) -> dict[str, str]:
    check_changeable(server, f"{verb} metadata")
    check_item_count(len(metadata))
    server.metadata_ = metadata  # a new dict: the JSON column is not tracked for mutation
    server.updated_at = utcnow()
    session.flush()
    return metadata
