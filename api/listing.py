"""Filters and pages of the image and network services' lists, as Glance and Neutron apply
them: on the fields of the bodies the caller sees, so a filter names what the answer shows.

Both services keep every matching record whose field equals one of the values asked for
(Neutron: a parameter repeated; Glance: also `in:a,b`); booleans match case-insensitively
(`shared=true`, `router:external=False`). A page is asked for with `limit` and `marker` (the id
of the last item seen); without `limit`, or with `limit=0`, the whole list is one page.

The link to the next page is built here for every list, Nova's too (`next_href`, `next_links`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request

from api.views import base_url
from novaflow.errors import Invalid

T = TypeVar("T")


def _text(value: Any) -> str:
    if isinstance(value, bool):  # JSON's spelling, whichever case the caller used
        return "true" if value else "false"
    return "" if value is None else str(value)


def matches(value: Any, wanted: Iterable[str]) -> bool:
    """Does a field's value equal one of the wanted ones? A list field (Glance's `tags`)
    matches when it holds one of them."""
    values = [_text(v) for v in value] if isinstance(value, list) else [_text(value)]
    if isinstance(value, bool):
        return any(w.lower() in values for w in wanted)
    return any(w in values for w in wanted)


def filters(
    query: Iterable[tuple[str, str]], ignored: set[str], known: set[str] | None = None
) -> dict[str, list[str]]:
    """A query's field filters: each field with the values asked for (a field repeated: any
    of them), without the parameters that page or sort (`ignored`). With `known`, a field not
    in it is refused, as Neutron's filter validation does."""
    found: dict[str, list[str]] = {}
    for key, value in query:
        if key in ignored:
            continue
        if known is not None and key not in known:
            raise Invalid(f"[{key}] is invalid attribute for filtering")
        found.setdefault(key, []).append(value)
    return found


def keep(items: Sequence[dict[str, Any]], filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The items whose every filtered field matches (a field an item lacks never matches)."""
    return [
        item
        for item in items
        if all(key in item and matches(item[key], wanted) for key, wanted in filters.items())
    ]


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    more: bool  # items follow the last one: the answer links to the next page

    @property
    def next_marker(self) -> str | None:
        """The marker of the next page (the last item's id), None when there is none."""
        return self.items[-1]["id"] if self.more and self.items else None


def page(items: list[dict[str, Any]], limit: str | None, marker: str | None) -> Page:
    """The items after `marker` (400 if no item has that id), at most `limit` of them (0:
    all of them, as Neutron's and Glance's `limit=0`)."""
    if marker is not None:
        ids = [item["id"] for item in items]
        if marker not in ids:
            raise Invalid(f"Invalid input for field/attribute marker. No item has id {marker}.")
        items = items[ids.index(marker) + 1 :]
    if limit is None:
        return Page(items, False)
    try:
        size = int(limit)
    except ValueError:
        size = -1
    if size < 0:
        raise Invalid("Invalid input for field/attribute limit. It must be a non-negative integer.")
    if size == 0:
        return Page(items, False)
    return Page(items[:size], len(items) > size)


def nova_page_end(rows: Sequence[T], limit: int | None) -> T | None:
    """The last row of a full page of a Nova list (`limit` rows, `limit` already clamped to
    the API's maximum), after which the next page starts; None when there is no next page."""
    return rows[-1] if limit and len(rows) >= limit else None


def next_href(request: Request, marker: str, relative_to: str | None = None) -> str:
    """The same request (its path, its query) for the page after `marker`: an absolute URL at
    the address the caller used, or (Glance's `next`) `relative_to` with the query."""
    kept = [(name, value) for name, value in request.query_params.multi_items() if name != "marker"]
    query = urlencode([*kept, ("marker", marker)])
    if relative_to is not None:
        return f"{relative_to}?{query}"
    return f"{base_url.get()}{request.url.path}?{query}"


def next_links(request: Request, marker: str | None) -> list[dict[str, str]]:
    """Nova's and Neutron's collection links: the next page's, none without a `marker`."""
    return [] if marker is None else [{"rel": "next", "href": next_href(request, marker)}]
