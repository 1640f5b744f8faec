"""In-process limiter: a sliding minute in groups of hits, constant memory per key.

Each key keeps its groups of allowed hits (see :mod:`keyhole.ratelimit.base`): at most 61, oldest
first, whatever the limit. Keys live in an ``OrderedDict`` in least-recently-hit order, so idle
keys sit at the front and are dropped cheaply (at most once a second, O(keys dropped)); dropping
an idle key loses nothing because all its hits have expired. ``max_keys`` is a hard cap: past it
the least recently hit key is dropped even if active, which resets (loosens) that key's count, so
keep it well above the number of keys active within a minute.

Not thread-safe: ``hit`` never awaits, so it is atomic within one event loop.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

from keyhole.ratelimit.base import GROUP_SECONDS, WINDOW_SECONDS, RateDecision, check_limit

_SWEEP_INTERVAL = 1.0


class HitGroups:
    """One key's groups of allowed hits in the window, oldest first: each one's count and last hit.

    :meth:`MemoryRateLimiter.hit_now` updates it inline (it runs twice per proxied call)."""

    __slots__ = ("counts", "lasts", "opened", "total")

    def __init__(self) -> None:
        self.counts: deque[int] = deque()
        self.lasts: deque[float] = deque()
        self.opened = 0.0  # when the newest group took its first hit
        self.total = 0

    def frees_at(self, limit: int) -> float:
        """When fewer than ``limit`` hits will be counted (while at or over it)."""
        counts = self.counts
        index, excess = 0, self.total - limit + 1 - counts[0]
        while excess > 0:
            index += 1
            excess -= counts[index]
        return self.lasts[index] + WINDOW_SECONDS


class MemoryRateLimiter:
    """:class:`~keyhole.ratelimit.base.RateLimiter` whose counters live in this process."""

    __slots__ = ("_clock", "_groups", "_max_keys", "_next_sweep")

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self._clock = clock
        self._max_keys = max_keys
        self._groups: OrderedDict[str, HitGroups] = OrderedDict()
        self._next_sweep = clock() + _SWEEP_INTERVAL

    @property
    def shared(self) -> bool:
        return False

    def __len__(self) -> int:
        """Number of keys currently tracked."""
        return len(self._groups)

    def groups(self, key: str) -> HitGroups | None:
        """What is kept for ``key`` (None when nothing is)."""
        return self._groups.get(key)

    async def hit(self, key: str, limit_per_minute: int) -> RateDecision:
        return self.hit_now(key, limit_per_minute)

    def hit_now(self, key: str, limit_per_minute: int) -> RateDecision:
        """Synchronous :meth:`hit`, for callers that want to skip the coroutine."""
        check_limit(limit_per_minute)
        now = self._clock()
        if now >= self._next_sweep:
            self._drop_idle(now)
        by_key = self._groups
        groups = by_key.get(key)
        if groups is None:
            if len(by_key) >= self._max_keys:
                by_key.popitem(last=False)
            groups = by_key[key] = HitGroups()
        else:
            by_key.move_to_end(key)
        lasts, counts = groups.lasts, groups.counts
        horizon = now - WINDOW_SECONDS
        while lasts and lasts[0] <= horizon:
            lasts.popleft()
            groups.total -= counts.popleft()
        total = groups.total
        if total >= limit_per_minute:
            return RateDecision(False, limit_per_minute, 0, groups.frees_at(limit_per_minute) - now)
        if lasts and now < groups.opened + GROUP_SECONDS:
            lasts[-1] = now
            counts[-1] += 1
        else:
            groups.opened = now
            lasts.append(now)
            counts.append(1)
        groups.total = total + 1
        return RateDecision(
            True, limit_per_minute, limit_per_minute - total - 1, lasts[0] + WINDOW_SECONDS - now
        )

    def _drop_idle(self, now: float) -> None:
        self._next_sweep = now + _SWEEP_INTERVAL
        horizon = now - WINDOW_SECONDS
        by_key = self._groups
        while by_key:
            lasts = by_key[next(iter(by_key))].lasts
            if lasts and lasts[-1] > horizon:
                break  # least recently hit key is active, so every later one is too
            by_key.popitem(last=False)

    async def close(self) -> None:
        self._groups.clear()
