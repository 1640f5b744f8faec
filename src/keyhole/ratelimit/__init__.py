"""Per-connection and per-organization request limits (the guarantee: :mod:`keyhole.ratelimit.base`)."""

from keyhole.ratelimit.base import (
    MAX_LIMIT_PER_MINUTE,
    WINDOW_SECONDS,
    RateDecision,
    RateLimiter,
    RateLimiterUnavailable,
)
from keyhole.ratelimit.factory import create_rate_limiter
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
