"""The filter scheduler: drop the hosts that cannot take the request, rank the rest.

Same shape as Nova's FilterScheduler: filters run in order over the shrinking candidate list,
then every weigher's raw values are min-max normalized across the survivors and summed with
their multipliers. ``select`` returns the best host followed by alternates (for reschedules).
Ties are broken by host name so the outcome is deterministic.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any

from novaflow.scheduler.filters import DEFAULT_FILTERS, FILTERS, HostFilter
from novaflow.scheduler.host_state import HostState, RequestSpec
from novaflow.scheduler.weighers import DEFAULT_WEIGHERS, WEIGHERS, HostWeigher

_NO_VALID_HOST = "No valid host was found. There are not enough hosts available."

_by_name = attrgetter("name")


class NoValidHost(Exception):
    """No host passed every filter.

    ``filter_name`` is the filter that returned 0 hosts (None if there were no hosts to begin
    with); ``filter_results`` lists ``(filter name, hosts in, hosts out)`` for each filter run.
    """

    def __init__(
        self,
        message: str = _NO_VALID_HOST,
        filter_name: str | None = None,
        filter_results: Sequence[tuple[str, int, int]] = (),
    ) -> None:
        super().__init__(message)
        self.filter_name = filter_name
        self.filter_results: tuple[tuple[str, int, int], ...] = tuple(filter_results)

    @classmethod
    def from_filter_results(
        cls, filter_results: Sequence[tuple[str, int, int]], server_id: str = ""
    ) -> NoValidHost:
        """Build the Nova-style message from the per-filter host counts."""
        for_server = f" for server {server_id}" if server_id else ""
        if not filter_results:
            return cls(f"{_NO_VALID_HOST} No compute hosts to schedule on{for_server}.")
        name = filter_results[-1][0]
        steps = ", ".join(f"{f}: {n_in} -> {n_out}" for f, n_in, n_out in filter_results)
        return cls(
            f"{_NO_VALID_HOST} Filter {name} returned 0 hosts{for_server} "
            f"(filter results: {steps}).",
            filter_name=name,
            filter_results=filter_results,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep filter_name/filter_results across pickling (e.g. when sent between processes).
        return (type(self), (str(self), self.filter_name, self.filter_results))


def _parse_weighers_csv(weighers_csv: str) -> dict[str, float]:
    """Parse "RAMWeigher:1.0,CPUWeigher:-1.0"; a bare name gets multiplier 1.0."""
    result: dict[str, float] = {}
    for raw in weighers_csv.split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, value = entry.partition(":")
        name = name.strip()
        if not name:
            raise ValueError(f"weigher entry {entry!r} has no name")
        if name in result:
            raise ValueError(f"weigher {name!r} is listed more than once")
        if not sep:
            result[name] = 1.0
            continue
        try:
            multiplier = float(value)
        except ValueError:
            raise ValueError(
                f"weigher {name!r}: multiplier {value.strip()!r} is not a number"
            ) from None
        result[name] = multiplier
    return result


class FilterScheduler:
    """Chooses hosts for a request: configured filters in order, then weighted ranking."""

    def __init__(
        self,
        filter_names: Sequence[str] = DEFAULT_FILTERS,
        weighers: Mapping[str, float] = DEFAULT_WEIGHERS,
    ) -> None:
        if isinstance(filter_names, str):
            raise TypeError("filter_names must be a sequence of names, not a string")
        filters: list[HostFilter] = []
        for name in filter_names:
            cls = FILTERS.get(name)
            if cls is None:
                raise ValueError(f"unknown scheduler filter {name!r}; known: {sorted(FILTERS)}")
            if any(f.name == name for f in filters):
                raise ValueError(f"scheduler filter {name!r} is listed more than once")
            filters.append(cls())
        weigher_objs: list[HostWeigher] = []
        for name, multiplier in weighers.items():
            wcls = WEIGHERS.get(name)
            if wcls is None:
                raise ValueError(f"unknown scheduler weigher {name!r}; known: {sorted(WEIGHERS)}")
            weigher_objs.append(wcls(multiplier))
        self.filters: tuple[HostFilter, ...] = tuple(filters)
        self.weighers: tuple[HostWeigher, ...] = tuple(weigher_objs)

    @classmethod
    def from_config(cls, filters_csv: str | None, weighers_csv: str | None) -> FilterScheduler:
        """Build from config strings, e.g. ``"RamFilter,CoreFilter"`` and
        ``"RAMWeigher:1.0,CPUWeigher:-1.0"``. None or blank means the defaults."""
        filter_names: Sequence[str] = DEFAULT_FILTERS
        if filters_csv and filters_csv.strip():
            filter_names = [n.strip() for n in filters_csv.split(",") if n.strip()]
        weighers: Mapping[str, float] = DEFAULT_WEIGHERS
        if weighers_csv and weighers_csv.strip():
            weighers = _parse_weighers_csv(weighers_csv)
        return cls(filter_names, weighers)

    @property
    def filter_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.filters)

    @property
    def weigher_multipliers(self) -> dict[str, float]:
        return {w.name: w.multiplier for w in self.weighers}

    def __repr__(self) -> str:
        return (
            f"FilterScheduler(filter_names={list(self.filter_names)!r}, "
            f"weighers={self.weigher_multipliers!r})"
        )

    def filter_hosts(self, hosts: Iterable[HostState], spec: RequestSpec) -> list[HostState]:
        """Hosts passing every filter, in input order; raises NoValidHost if none do."""
        candidates = list(hosts)  # never hand the caller's own list back
        results: list[tuple[str, int, int]] = []
        if not candidates:
            raise NoValidHost.from_filter_results(results, spec.server_id)
        for flt in self.filters:
            if not flt.applies(spec):
                continue
            before = len(candidates)
            candidates = flt.filter_all(candidates, spec)
            results.append((flt.name, before, len(candidates)))
            if not candidates:
                raise NoValidHost.from_filter_results(results, spec.server_id)
        return candidates

    def weigh_hosts(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[float] | None:
        """Total weight per host (same order), or None when no weigher can tell hosts apart."""
        totals: list[float] | None = None
        for weigher in self.weighers:
            if weigher.multiplier == 0.0 or not weigher.applies(spec):
                continue
            raw = weigher.weigh_all(hosts, spec)
            lo, hi = min(raw), max(raw)
            if not hi > lo:  # all equal: normalizes to 0 everywhere, contributes nothing
                continue
            scale = weigher.multiplier / (hi - lo)
            if totals is None:
                totals = [(v - lo) * scale for v in raw]
            else:
                totals = [t + (v - lo) * scale for t, v in zip(totals, raw, strict=True)]
        return totals

    def select(
        self, hosts: Iterable[HostState], spec: RequestSpec, count: int = 3
    ) -> list[HostState]:
        """Up to ``count`` hosts for ``spec``, best first (chosen host, then alternates).

        Raises NoValidHost if no host passes the filters.
        """
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        candidates = self.filter_hosts(hosts, spec)
        if len(candidates) == 1:
            return candidates
        totals = self.weigh_hosts(candidates, spec)
        if totals is None:
            # Every host weighs the same: the name decides.
            return heapq.nsmallest(count, candidates, key=_by_name)
        return _top(candidates, totals, count)


def _top(hosts: list[HostState], totals: list[float], count: int) -> list[HostState]:
    """The ``count`` hosts with the highest totals, ties broken by ascending name.

    Finds the count-th best weight over plain floats first; fewer than ``count`` hosts weigh
    strictly more, and the rest are filled from the hosts tied at that weight, by name. No
    per-host key tuple is built for the whole candidate list, even when many hosts tie.
    """
    if count >= len(hosts):
        order = sorted(range(len(hosts)), key=lambda i: (-totals[i], hosts[i].name))
        return [hosts[i] for i in order]
    threshold = heapq.nlargest(count, totals)[-1]
    contenders = [i for i, t in enumerate(totals) if t >= threshold]  # usually ~count of them
    above = sorted(
        (i for i in contenders if totals[i] > threshold), key=lambda i: (-totals[i], hosts[i].name)
    )
    chosen = [hosts[i] for i in above]
    tied = [hosts[i] for i in contenders if totals[i] == threshold]
    chosen.extend(heapq.nsmallest(count - len(chosen), tied, key=_by_name))
    return chosen
