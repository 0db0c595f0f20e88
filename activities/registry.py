"""How activities meet their declarations (workflows/catalog.py): `@implements(catalog.X)` on a
method names it for Temporal and ties it to its declaration; a worker registers what
`registered(...)` finds, which refuses a declared activity nobody implements (or one
implemented twice, or one not declared), so a worker with a missing step does not start."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity

from workflows.catalog import ActivityType, RunsOn, declared

In = TypeVar("In")
Out = TypeVar("Out")
R = TypeVar("R")

_KIND = "__novaflow_activity_type__"


def implements(
    kind: ActivityType[In, Out],
) -> Callable[[Callable[[Any, In], R]], Callable[[Any, In], R]]:
    """Mark a method as the implementation of the declared activity `kind` (its input type
    is checked by mypy against the declaration)."""

    def mark(method: Callable[[Any, In], R]) -> Callable[[Any, In], R]:
        setattr(method, _KIND, kind)
        return activity.defn(name=kind.name)(method)

    return mark


def implementations(classes: list[type]) -> dict[str, tuple[type, str]]:
    """The declared activities implemented by `classes`: name -> (class, method name)."""
    found: dict[str, tuple[type, str]] = {}
    for cls in classes:
        for attr, value in vars(cls).items():
            kind = getattr(value, _KIND, None)
            if kind is None:
                continue
            if kind.name in found:
                raise RuntimeError(f"activity {kind.name} is implemented twice")
            found[kind.name] = (cls, attr)
    return found


def check_complete(classes: list[type], runs_on: RunsOn) -> dict[str, tuple[type, str]]:
    """The implementations of every activity declared for `runs_on`, or an error naming what
    is missing or undeclared."""
    found = implementations(classes)
    wanted = declared(runs_on)
    missing, extra = sorted(wanted.keys() - found.keys()), sorted(found.keys() - wanted.keys())
    if missing or extra:
        raise RuntimeError(
            f"activities of the {runs_on} worker: missing {missing or 'none'}, "
            f"not declared for it {extra or 'none'}"
        )
    return found


def registered(providers: list[object], runs_on: RunsOn) -> list[Callable[..., Any]]:
    """The bound activity methods of `providers` that a worker of kind `runs_on` registers:
    every activity declared for it, each once."""
    by_class = {type(p): p for p in providers}
    found = check_complete(list(by_class), runs_on)
    return [getattr(by_class[cls], attr) for cls, attr in found.values()]
