"""Public rate-limiter API used by the proxy.

Limits are N requests per sliding minute: never more than N in any 60 seconds, so a burst
straddling a minute boundary cannot get 2N through (``base`` states the guarantee; each key costs
at most 61 per-second counters, whatever N). Counters are in-process by default; with a Redis URL
they are shared by every server process. If Redis is unreachable,
``hit`` raises :class:`RateLimiterUnavailable` (503): the limiter fails closed, because a
limit that silently stops limiting is worse.
"""

from __future__ import annotations

from keyhole.ratelimit.base import (
    MAX_LIMIT_PER_MINUTE,
    WINDOW_SECONDS,
    RateDecision,
    RateLimiter,
    RateLimiterUnavailable,
)
from keyhole.ratelimit.memory import MemoryRateLimiter
from keyhole.ratelimit.redis_limiter import RedisRateLimiter

__all__ = [
    "MAX_LIMIT_PER_MINUTE",
    "WINDOW_SECONDS",
    "MemoryRateLimiter",
    "RateDecision",
    "RateLimiter",
    "RateLimiterUnavailable",
    "RedisRateLimiter",
    "create_rate_limiter",
]


def create_rate_limiter(redis_url: str | None) -> RateLimiter:
    """Redis-backed limiter when ``redis_url`` is set, otherwise an in-memory one."""
    if redis_url:
        return RedisRateLimiter(redis_url)
    return MemoryRateLimiter()
