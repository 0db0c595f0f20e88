"""Server tags (Nova 2.26): short texts on a server that listings filter by. At most
MAX_TAGS a server; a tag has no `/` or `,` (they would break the URL and the filters)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete
from sqlmodel import Session, col, select

from novaflow.errors import Conflict, Invalid, NotFound
from novaflow.models import Server, ServerTag
from novaflow.states import VmState

MAX_TAGS = 50  # Nova's instance.MAX_TAG_COUNT
MAX_TAG_LENGTH = 60


# Where a server's tags may change (Nova's server_tags controller): 409 elsewhere.
TAGGABLE = (VmState.ACTIVE, VmState.PAUSED, VmState.SUSPENDED, VmState.STOPPED)


def check_taggable(server: Server, action: str) -> None:
    if server.vm_state not in TAGGABLE:
        raise Conflict(
            f"Cannot '{action}' instance {server.id} while it is in vm_state {server.vm_state}"
        )


def tag_problem(tag: str) -> str | None:
    """Why `tag` is no valid tag, or None."""
    if not 1 <= len(tag) <= MAX_TAG_LENGTH:
        return f"must have 1 to {MAX_TAG_LENGTH} characters"
    if "/" in tag or "," in tag:
        return "must not contain '/' or ','"
    return None


def tags_of(session: Session, server_id: str) -> list[str]:
    rows = session.exec(
        select(ServerTag.tag).where(ServerTag.server_id == server_id).order_by(col(ServerTag.tag))
    )
    return list(rows)


def tags_of_servers(session: Session, server_ids: list[str]) -> dict[str, list[str]]:
    """Each server's tags (sorted; [] for one without), in one query: a page of servers'."""
    found: dict[str, list[str]] = {server_id: [] for server_id in server_ids}
    rows = session.exec(
        select(ServerTag.server_id, ServerTag.tag)
        .where(col(ServerTag.server_id).in_(server_ids))
        .order_by(col(ServerTag.tag))
    )
    for server_id, tag in rows:
        found[server_id].append(tag)
    return found


def has(session: Session, server: Server, tag: str) -> bool:
    return session.get(ServerTag, (server.id, tag)) is not None


def _check_count(count: int) -> None:
    if count > MAX_TAGS:
        raise Invalid(
            f"The number of tags exceeded the per-server limit {MAX_TAGS} (requested {count})"
        )


def replace_all(session: Session, server: Server, tags: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(tags))
    _check_count(len(wanted))
    session.execute(delete(ServerTag).where(col(ServerTag.server_id) == server.id))
    session.add_all(ServerTag(server_id=server.id, tag=tag) for tag in wanted)
    session.flush()
    return sorted(wanted)


def add(session: Session, server: Server, tag: str) -> bool:
    """Add `tag`; True if it is new (Nova's 201), False if the server had it (204)."""
    if has(session, server, tag):
        return False
    _check_count(len(tags_of(session, server.id)) + 1)
    session.add(ServerTag(server_id=server.id, tag=tag))
    session.flush()
    return True


def remove(session: Session, server: Server, tag: str) -> None:
    row = session.get(ServerTag, (server.id, tag))
    if row is None:
        raise NotFound(f"Tag {tag} could not be found.")
    session.delete(row)
    session.flush()


def remove_all(session: Session, server: Server) -> None:
    session.execute(delete(ServerTag).where(col(ServerTag.server_id) == server.id))
    session.flush()
