"""Per-connection and per-organization request limits (see :mod:`keyhole.ratelimit.limiter`)."""

from keyhole.ratelimit.limiter import (
    MAX_LIMIT_PER_MINUTE,
    WINDOW_SECONDS,
    MemoryRateLimiter,
    RateDecision,
    RateLimiter,
    RateLimiterUnavailable,
    RedisRateLimiter,
    create_rate_limiter,
)

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
