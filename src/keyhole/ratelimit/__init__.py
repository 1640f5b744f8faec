"""Per-connection and per-organization request limits (see :mod:`keyhole.ratelimit.limiter`)."""

from keyhole.ratelimit.limiter import (
    MemoryRateLimiter,
    RateDecision,
    RateLimiter,
    RateLimiterUnavailable,
    RedisRateLimiter,
    create_rate_limiter,
)

__all__ = [
    "MemoryRateLimiter",
    "RateDecision",
    "RateLimiter",
    "RateLimiterUnavailable",
    "RedisRateLimiter",
    "create_rate_limiter",
]
