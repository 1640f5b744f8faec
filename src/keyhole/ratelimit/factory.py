"""Choosing the rate limiter a process uses: shared through Redis when a URL is set, else in memory.

The guarantee both keep is stated in :mod:`keyhole.ratelimit.base`. With Redis, ``hit`` raises
:class:`~keyhole.ratelimit.base.RateLimiterUnavailable` (503) when Redis is unreachable: the
limiter fails closed, because a limit that silently stops limiting is worse.
"""

from __future__ import annotations

from keyhole.ratelimit.base import RateLimiter
from keyhole.ratelimit.memory import MemoryRateLimiter
from keyhole.ratelimit.redis_limiter import RedisRateLimiter


def create_rate_limiter(redis_url: str | None) -> RateLimiter:
    """Redis-backed limiter when ``redis_url`` is set, otherwise an in-memory one."""
    if redis_url:
        return RedisRateLimiter(redis_url)
    return MemoryRateLimiter()
