"""A bounded mapping that forgets the least recently used entry first.

The mock remembers a few things per request value to answer faster (a repeated
request's reading and reply, a credential's redacted form), and it runs for hours
under load with values that may never repeat: whatever it remembers must stay
bounded. One event loop uses each cache, so no locking is needed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["LRU"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``capacity`` entries (0: remembers nothing); a lookup that finds one makes it the newest."""

    __slots__ = ("_capacity", "_items")

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"a cache capacity must not be negative, got {capacity}")
        self._capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: K) -> bool:
        return key in self._items

    def get(self, key: K) -> V | None:
        """The value remembered for ``key`` (now the most recently used), or None."""
        items = self._items
        value = items.get(key)
        if value is not None:
            items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Remember ``value`` for ``key``, forgetting the least recently used entry past the capacity."""
        if not self._capacity:
            return
        items = self._items
        items[key] = value
        items.move_to_end(key)
        if len(items) > self._capacity:
            items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()
