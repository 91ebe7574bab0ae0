"""How many requests the mock has received per correlation id: the journal's ``attempt``.

A gateway that retries or falls back sends the same conversation again, with the same
directive and so the same ``cid``; counting them is how ``fail_first=N`` fails only the
first N and how the suite counts a gateway's upstream attempts. The mock runs under
load with a fresh cid per request, so only the most recently seen ``capacity`` cids are
remembered (least recently used first out): memory stays bounded, and a retry, which
comes within moments, is never forgotten in practice.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["DEFAULT_CAPACITY", "AttemptCounter"]

#: cids remembered at once
DEFAULT_CAPACITY = 10_000


class AttemptCounter:
    """Requests per cid for the last ``capacity`` cids (one event loop: no locking needed)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("the attempt counter needs room for at least one cid")
        self._capacity = capacity
        #: cid -> (requests so far, the route its first request came on)
        self._counts: OrderedDict[str, tuple[int, str | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counts)

    def next(self, cid: str, route: str | None = None) -> int:
        """Count one more request with ``cid`` (arriving on ``route``); return its 1-based number."""
        count, first = self._counts.pop(cid, (0, route))
        self._counts[cid] = (count + 1, first)
        if len(self._counts) > self._capacity:
            self._counts.popitem(last=False)
        return count + 1

    def first_route(self, cid: str) -> str | None:
        """The route (dialect) the first request with ``cid`` came on: ``route_down`` fails only that one."""
        known = self._counts.get(cid)
        return known[1] if known is not None else None

    def forget(self, cid: str | None = None) -> None:
        """Start counting again from 1 (for ``cid`` only, or for every cid)."""
        if cid is None:
            self._counts.clear()
        else:
            self._counts.pop(cid, None)
