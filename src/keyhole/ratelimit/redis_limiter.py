"""Redis-backed sliding-window-log limiter shared by every server process.

One Lua script per hit (one round trip, allowed or denied) keeps, per key, a sorted set of
the millisecond timestamps of allowed hits. Time comes from the Redis server (``TIME``), so
processes on hosts with skewed clocks still agree. The script drops expired entries, admits
the hit only when fewer than ``limit`` remain (a denied hit writes nothing) and returns the
count and the wait until a slot frees.

Failure policy: when Redis cannot be reached or errors, :class:`RateLimiterUnavailable`
(503) is raised and the request is refused. Failing closed is deliberate: a limit that
silently stops limiting is worse than a short outage that is visible and alarmed on.
"""

from __future__ import annotations

import itertools
import secrets
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from keyhole.ratelimit.base import WINDOW_SECONDS, RateDecision, RateLimiterUnavailable, check_limit

_WINDOW_MS = int(WINDOW_SECONDS * 1000)

# KEYS[1] = log key; ARGV = limit, window (ms), unique member.
# Returns {allowed (0/1), entries in window after this hit, ms until a slot frees}.
_HIT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, count + 1, tonumber(oldest[2]) + window - now}
end
local blocker = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return {0, count, tonumber(blocker[2]) + window - now}
"""


def describe_redis_url(url: str) -> str:
    """``host:port`` (or socket path) of a Redis URL, never its credentials."""
    parts = urlsplit(url.removeprefix("async+"))
    if parts.scheme == "unix":
        return parts.path or "<unix socket>"
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{host}:{port}"


class RedisRateLimiter:
    """:class:`~keyhole.ratelimit.base.RateLimiter` whose counters live in Redis.

    ``url`` is a ``redis://``, ``rediss://`` or ``unix://`` URL (an ``async+`` prefix, as used by
    ``limits``, is accepted). Keys are stored under ``key_prefix``.
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "keyhole:ratelimit:",
        socket_timeout: float = 1.0,
        connect_timeout: float = 1.0,
    ) -> None:
        self._target = describe_redis_url(url)
        self._prefix = key_prefix
        self._client: Redis = Redis.from_url(
            url.removeprefix("async+"),
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            # One immediate retry reconnects a pooled connection the server dropped.
            retry=Retry(NoBackoff(), 1),
        )
        self._script = self._client.register_script(_HIT_SCRIPT)
        self._member_prefix = secrets.token_hex(8) + ":"
        self._seq = itertools.count()

    def __repr__(self) -> str:
        return f"RedisRateLimiter({self._target!r}, key_prefix={self._prefix!r})"

    async def hit(self, key: str, limit_per_minute: int) -> RateDecision:
        check_limit(limit_per_minute)
        member = f"{self._member_prefix}{next(self._seq)}"
        try:
            reply = await self._script(keys=[self._prefix + key], args=[limit_per_minute, _WINDOW_MS, member])
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise self._unavailable(f"Redis at {self._target} is unreachable ({type(exc).__name__})") from exc
        except RedisError as exc:
            raise self._unavailable(f"Redis at {self._target} failed ({type(exc).__name__})") from exc
        allowed, count, reset_ms = (int(v) for v in reply)
        return RateDecision(
            allowed=bool(allowed),
            limit=limit_per_minute,
            remaining=max(0, limit_per_minute - count),
            reset_after=max(0, reset_ms) / 1000,
        )

    def _unavailable(self, reason: str) -> RateLimiterUnavailable:
        return RateLimiterUnavailable(
            f"Rate limiter unavailable: {reason}. Requests are refused until it recovers; "
            "check that Redis is running and KEYHOLE_REDIS_URL is correct.",
            metadata={"redis": self._target},
        )

    async def close(self) -> None:
        await self._client.aclose()
