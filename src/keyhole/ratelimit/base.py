"""Shared types of the rate limiter: the decision, the protocol and the domain error."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import ClassVar, Protocol

from keyhole.errors import KeyholeError

WINDOW_SECONDS = 60.0
"""Length of the sliding window; limits are expressed per minute."""


class RateLimiterUnavailable(KeyholeError):
    """The shared counter store cannot be reached; requests are refused (fail closed)."""

    status: ClassVar[int] = 503
    default_key: ClassVar[str] = "rate_limiter_unavailable"


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Outcome of one :meth:`RateLimiter.hit`."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    """Seconds until a slot frees up (>= 0)."""

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait, rounded up; at least 1 when denied."""
        seconds = max(0, math.ceil(self.reset_after))
        return seconds if self.allowed else max(1, seconds)

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` response headers, plus ``Retry-After`` when denied."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": str(math.ceil(time.time() + max(0.0, self.reset_after))),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimiter(Protocol):
    """Counts requests per key over a sliding one-minute window."""

    async def hit(self, key: str, limit_per_minute: int) -> RateDecision:
        """Take one slot for ``key`` if fewer than ``limit_per_minute`` were taken in the last
        minute; a denied hit takes nothing."""
        ...

    async def close(self) -> None:
        """Release connections and state."""
        ...


def check_limit(limit_per_minute: int) -> None:
    if limit_per_minute < 1:
        raise ValueError(f"limit_per_minute must be >= 1, got {limit_per_minute}")
