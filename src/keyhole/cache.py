"""A per-process TTL cache with single-flight loads and refresh-ahead.

The proxy hot path reads principals and connection targets from here. Without single-flight,
every request in flight when an entry expires would run its own database lookup (a stampede
that also churns the connection pool); without refresh-ahead, one request per key and TTL
would pay the lookup's latency. A failed load evicts the entry, so a revoked key or a deleted
connection stops working within one TTL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _consume(future: asyncio.Future[Any]) -> None:
    # A background refresh nobody awaits must not log "exception was never retrieved".
    if not future.cancelled():
        future.exception()


class TtlCache(Generic[K, V]):
    def __init__(
        self,
        ttl_seconds: float,
        *,
        refresh_ahead: float = 0.5,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._refresh_after = ttl_seconds * (1 - refresh_ahead)
        self._max_entries = max_entries
        self._entries: dict[K, tuple[V, float]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, loader: Callable[[], Awaitable[V]]) -> V:
        if self._ttl <= 0:
            return await loader()
        entry = self._entries.get(key)
        if entry is not None:
            value, loaded_at = entry
            age = self._clock() - loaded_at
            if age < self._ttl:
                if age >= self._refresh_after and key not in self._loading:
                    self._start(key, loader).add_done_callback(_consume)
                return value
        future = self._loading.get(key) or self._start(key, loader)
        return await asyncio.shield(future)

    def evict(self, key: K) -> None:
        """Forget an entry and any load in flight (whose result may predate the change)."""
        self._entries.pop(key, None)
        self._loading.pop(key, None)

    def evict_where(self, stale: Callable[[K, V], bool]) -> None:
        """Forget every entry ``stale(key, value)`` names, and every load in flight (a load's
        value is not known yet, and may predate the change)."""
        for key in [key for key, (value, _) in self._entries.items() if stale(key, value)]:
            del self._entries[key]
        self._loading.clear()

    def _start(self, key: K, loader: Callable[[], Awaitable[V]]) -> asyncio.Future[V]:
        future = asyncio.ensure_future(self._load(key, loader))
        self._loading[key] = future
        return future

    async def _load(self, key: K, loader: Callable[[], Awaitable[V]]) -> V:
        started = self._clock()
        current = asyncio.current_task()
        try:
            value = await loader()
        except BaseException:
            if self._loading.get(key) is current:
                self._entries.pop(key, None)
            raise
        finally:
            if self._loading.get(key) is current:
                del self._loading[key]
                still_current = True
            else:
                still_current = False
        if still_current:
            if len(self._entries) >= self._max_entries and key not in self._entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (value, started)
        return value
