"""Filters and pages of the image and network services' lists, as Glance and Neutron apply
them: on the fields of the bodies the caller sees, so a filter names what the answer shows.

Both services keep every matching record whose field equals one of the values asked for
(Neutron: a parameter repeated; Glance: also `in:a,b`); booleans match case-insensitively
(`shared=true`, `router:external=False`). A page is asked for with `limit` and `marker` (the id
of the last item seen); without `limit` the whole list is one page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from novaflow.errors import Invalid


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


def page(items: list[dict[str, Any]], limit: str | None, marker: str | None) -> Page:
    """The items after `marker` (400 if no item has that id), at most `limit` of them."""
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
    return Page(items[:size], len(items) > size)
