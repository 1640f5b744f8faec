"""In-process sliding-window-log limiter: exact, a few microseconds per hit, bounded memory.

Each key keeps a deque of the monotonic timestamps of its allowed hits in the last minute.
Keys live in an ``OrderedDict`` in least-recently-hit order, so idle keys sit at the front and
are dropped cheaply (at most once a second, O(keys dropped)); dropping an idle key loses
nothing because all its entries have expired. ``max_keys`` is a hard cap: past it the least
recently hit key is dropped even if active, which resets (loosens) that key's count, so keep
it well above the number of keys active within a minute.

Not thread-safe: ``hit`` never awaits, so it is atomic within one event loop.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

from keyhole.ratelimit.base import WINDOW_SECONDS, RateDecision, check_limit

_SWEEP_INTERVAL = 1.0


class MemoryRateLimiter:
    """:class:`~keyhole.ratelimit.base.RateLimiter` whose counters live in this process."""

    __slots__ = ("_clock", "_logs", "_max_keys", "_next_sweep")

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self._clock = clock
        self._max_keys = max_keys
        self._logs: OrderedDict[str, deque[float]] = OrderedDict()
        self._next_sweep = clock() + _SWEEP_INTERVAL

    def __len__(self) -> int:
        """Number of keys currently tracked."""
        return len(self._logs)

    async def hit(self, key: str, limit_per_minute: int) -> RateDecision:
        return self.hit_now(key, limit_per_minute)

    def hit_now(self, key: str, limit_per_minute: int) -> RateDecision:
        """Synchronous :meth:`hit`, for callers that want to skip the coroutine."""
        check_limit(limit_per_minute)
        now = self._clock()
        if now >= self._next_sweep:
            self._drop_idle(now)
        logs = self._logs
        log = logs.get(key)
        if log is None:
            if len(logs) >= self._max_keys:
                logs.popitem(last=False)
            log = logs[key] = deque()
        else:
            logs.move_to_end(key)
            horizon = now - WINDOW_SECONDS
            while log and log[0] <= horizon:
                log.popleft()
        count = len(log)
        if count < limit_per_minute:
            log.append(now)
            return RateDecision(
                True, limit_per_minute, limit_per_minute - count - 1, log[0] + WINDOW_SECONDS - now
            )
        # A slot frees when the entry that keeps the count at the limit expires.
        blocker = log[count - limit_per_minute]
        return RateDecision(False, limit_per_minute, 0, blocker + WINDOW_SECONDS - now)

    def _drop_idle(self, now: float) -> None:
        self._next_sweep = now + _SWEEP_INTERVAL
        horizon = now - WINDOW_SECONDS
        logs = self._logs
        while logs:
            log = logs[next(iter(logs))]
            if log and log[-1] > horizon:
                break  # least recently hit key is active, so every later one is too
            logs.popitem(last=False)

    async def close(self) -> None:
        self._logs.clear()
