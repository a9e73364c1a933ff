"""A byte-bounded cache of serialised result blocks (REST pages and Bulk CSV blocks).

Benchmarks extract the same query several times; serving repeated pages from memory keeps the
emulator's CPU out of the client's measurement. A block sent gzip-compressed keeps its
compressed form too (:meth:`BlockCache.deflated`): compressing a million-row Bulk result on
every request costs the emulator more than the client spends reading it. Entries are keyed by
the table's write version, so a write makes them unreachable (and first in line for eviction).
When the budget is full the new block is simply not cached: a scan larger than the cache then
still hits on its first part, instead of evicting everything as plain LRU would.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Hashable
from typing import Any

GZIP_LEVEL = 1
"""zlib level of compressed answers: the fastest, as a server that compresses on the fly uses."""


class Block(bytes):
    """Bytes held by the cache, with the key they are held under and, once a gzip client asked
    for them, their deflate segment (see :meth:`BlockCache.deflated`)."""

    key: Hashable
    deflated: bytes | None = None


class BlockCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._items: dict[Hashable, tuple[Block, int, Any]] = {}  # key -> (data, cost, generation)

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
                block = Block(data)
                block.key = key
                self._items[key] = (block, cost, generation)
                self.size += cost
                return block
        return data

    def deflated(self, data: bytes) -> bytes:
        """``data`` as raw deflate ending on a byte boundary (a sync flush, no final block).

        Such segments, each from a compressor of its own, join into one deflate stream: a gzip
        body is then the header, the segments of its blocks, an empty final block and the
        trailer. A cached block keeps its segment (counted in the budget, if there is room)."""
        if isinstance(data, Block) and data.deflated is not None:
            return data.deflated
        comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15)
        segment = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
        if isinstance(data, Block):
            with self._lock:
                item = self._items.get(data.key)
                if (
                    item is not None
                    and item[0] is data
                    and self.size + len(segment) <= self.max_bytes
                ):
                    data.deflated = segment
                    self._items[data.key] = (data, item[1] + len(segment), item[2])
                    self.size += len(segment)
        return segment

    def _evict_stale(self, owner: Any) -> None:
        """Drop entries whose table has been written since (their generation is behind)."""
        for key in [k for k, (_, _, gen) in self._items.items() if gen != owner(k)]:
            self.size -= self._items.pop(key)[1]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.size = 0
