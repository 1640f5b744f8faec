"""Shared types of the rate limiter: the decision, the protocol, the bounds and the domain error.

The counting, the same in memory and in Redis: each key keeps its allowed hits in *groups*. A
group takes the hits of one second from its first one and keeps their count and the time of its
last one; it is dropped once that last hit is a window (60 s) old. Groups start at least a second
apart and live less than 61 s, so a key holds at most 61 of them whatever its limit.

The guarantee: a limit of N per minute never lets more than N hits through in any window
``(t - 60 s, t]``, since every hit counts for at least 60 s after it. It counts for less than one
second longer, so a slot frees at most a second later than an exact log of timestamps would free
it, and never more than 60 s ahead: ``Retry-After`` stays within 1..60.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import ClassVar, Protocol

from keyhole.errors import KeyholeError

WINDOW_SECONDS = 60
"""Length of the sliding window; limits are expressed per minute."""

GROUP_SECONDS = 1
"""How long a group of hits takes new hits after its first one."""

MAX_LIMIT_PER_MINUTE = 100_000_000
"""The largest limit accepted (about 1.7 million a second, more than any deployment serves)."""


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
    """Seconds until a slot frees up (>= 0): when allowed, until the oldest counted hit expires."""

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait, rounded up; at least 1 when denied."""
        seconds = max(0, math.ceil(self.reset_after))
        return seconds if self.allowed else max(1, seconds)

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` response headers (a denial's ``Retry-After`` is added from the error's
        ``retry_after`` with every other error's, by ``keyhole.api.errors.error_headers``)."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": str(math.ceil(time.time() + max(0.0, self.reset_after))),
        }


class RateLimiter(Protocol):
    """Counts requests per key over a sliding one-minute window (see the module's guarantee)."""

    @property
    def shared(self) -> bool:
        """Whether every server process counts against the same limits (False: each its own)."""
        ...

    async def hit(self, key: str, limit_per_minute: int) -> RateDecision:
        """Take one slot for ``key`` if fewer than ``limit_per_minute`` hits are counted in the
        window; a denied hit takes nothing."""
        ...

    async def close(self) -> None:
        """Release connections and state."""
        ...


def check_limit(limit_per_minute: int) -> None:
    if not 1 <= limit_per_minute <= MAX_LIMIT_PER_MINUTE:
        raise ValueError(f"limit_per_minute must be from 1 to {MAX_LIMIT_PER_MINUTE}, got {limit_per_minute}")
