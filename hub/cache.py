"""A small in-process cache for reads on the tool-call hot path.

Every MCP tool call needs the caller's API key, the account's active policy and the pinning
state of the tool. Reading them from the database on every call cost more than everything else
Preloop does per call (docs/performance.md), so services keep what they read here for a short
time. Their own writes drop the entry at once; a change made by another replica is seen within
``seconds`` (``PRELOOP_SERVER_CACHE_SECONDS``, docs/decisions/0005). ``seconds=0`` turns caching
off. Ages are measured on the monotonic clock, apart from the injected business clock, so a
frozen test clock does not freeze the cache.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_SECONDS = 2.0
DEFAULT_LIMIT = 10_000


class Missing:
    """The marker ``Recent.get`` returns for absent or stale entries (``None`` can be cached)."""


MISSING = Missing()


class Recent(Generic[K, V]):
    """Values kept for ``seconds`` after they were read, at most ``limit`` of them."""

    def __init__(
        self,
        seconds: float = DEFAULT_SECONDS,
        *,
        limit: int = DEFAULT_LIMIT,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seconds = seconds
        self._limit = limit
        self._timer = timer
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | Missing:
        entry = self._entries.get(key)
        if entry is None:
            return MISSING
        stored_at, value = entry
        if self._timer() - stored_at >= self._seconds:
            del self._entries[key]
            return MISSING
        return value

    def put(self, key: K, value: V) -> None:
        if self._seconds <= 0:
            return
        if key not in self._entries and len(self._entries) >= self._limit:
            del self._entries[next(iter(self._entries))]  # the oldest insertion goes first
        self._entries[key] = (self._timer(), value)

    async def load(self, key: K, read: Callable[[], Awaitable[V]]) -> V:
        """The cached value of ``key``, else what ``read`` returns (then cached)."""
        value = self.get(key)
        if isinstance(value, Missing):
            value = await read()
            self.put(key, value)
        return value

    async def load_found(self, key: K, read: Callable[[], Awaitable[V | None]]) -> V | None:
        """Like ``load``, but ``None`` (not found) is not cached: guessed keys never fill the
        cache, and a record created meanwhile is seen at once."""
        value = self.get(key)
        if not isinstance(value, Missing):
            return value
        found = await read()
        if found is not None:
            self.put(key, found)
        return found

    def drop(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
