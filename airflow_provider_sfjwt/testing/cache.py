"""A byte-bounded cache of serialised result blocks (REST pages and Bulk CSV blocks).

Benchmarks extract the same query several times; serving repeated pages from memory keeps the
emulator's CPU out of the client's measurement. Entries are keyed by the table's write version, so
a write makes them unreachable (and first in line for eviction). When the budget is full the new
block is simply not cached: a scan larger than the cache then still hits on its first part,
instead of evicting everything as plain LRU would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any


class BlockCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._items: dict[Hashable, tuple[bytes, int, Any]] = {}  # key -> (data, cost, generation)

    def get_or_make(
        self, key: Hashable, generation: Any, make: Callable[[], bytes], owner: Any
    ) -> bytes:
        """The cached bytes for ``key`` at ``generation``, else ``make()`` (cached if room).

        Bytes, not text: a hit is then sent as it is, where text would be encoded again on
        every request (for a large Bulk result, more CPU than the client under test spends)."""
        if self.max_bytes <= 0:
            return make()
        with self._lock:
            item = self._items.get(key)
            if item is not None and item[2] == generation:
                self.hits += 1
                return item[0]
        self.misses += 1
        data = make()
        cost = len(data) + 100
        with self._lock:
            if self.size + cost > self.max_bytes:
                self._evict_stale(owner)
            if self.size + cost <= self.max_bytes:
                old = self._items.pop(key, None)
                if old is not None:
                    self.size -= old[1]
                self._items[key] = (data, cost, generation)
                self.size += cost
        return data

    def _evict_stale(self, owner: Any) -> None:
        """Drop entries whose table has been written since (their generation is behind)."""
        for key in [k for k, (_, _, gen) in self._items.items() if gen != owner(k)]:
            self.size -= self._items.pop(key)[1]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.size = 0
