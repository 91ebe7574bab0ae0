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
        self._counts: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counts)

    def next(self, cid: str) -> int:
        """Count one more request with ``cid``; return its 1-based number."""
        count = self._counts.pop(cid, 0) + 1
        self._counts[cid] = count
        if len(self._counts) > self._capacity:
            self._counts.popitem(last=False)
        return count

    def forget(self, cid: str | None = None) -> None:
        """Start counting again from 1 (for ``cid`` only, or for every cid)."""
        if cid is None:
            self._counts.clear()
        else:
            self._counts.pop(cid, None)
