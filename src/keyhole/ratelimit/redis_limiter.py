"""Redis-backed limiter shared by every server process: the in-memory algorithm, in one script.

One Lua script per hit (one round trip, allowed or denied) keeps, per key, one hash holding its
groups of allowed hits (see :mod:`keyhole.ratelimit.base`) in order, as the in-memory limiter
does: at most 61 groups and one summary field whatever the limit, and an allowed hit mostly reads
and writes that one field. Time comes from the Redis server (``TIME``), so processes on
hosts with skewed clocks still agree. The script drops expired groups, admits the hit only when
fewer than ``limit`` hits are counted (a denied hit adds nothing) and returns the count and the
wait until a slot frees.

Failure policy: when Redis cannot be reached or errors, :class:`RateLimiterUnavailable`
(503) is raised and the request is refused. Failing closed is deliberate: a limit that
silently stops limiting is worse than a short outage that is visible and alarmed on.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from keyhole.ratelimit.base import (
    GROUP_SECONDS,
    WINDOW_SECONDS,
    RateDecision,
    RateLimiterUnavailable,
    check_limit,
)

_MICROS = 1_000_000

# KEYS[1] = the key's hash. Field "m" holds, space-separated: the hits counted; the numbers of
# the oldest and the newest group (none when the first is greater); the newest group's first hit,
# count and last hit; the oldest group's last hit and count (when it is not the newest). Each
# closed group is a field of its own, under its number: "count last-hit". So an allowed hit reads
# and writes the one field "m", and a group is written once, when closed. ARGV = limit, window and
# group length (µs), and optionally the time as (s, µs) in place of the server's TIME. Times are
# integers below 2^53, exact in Lua's doubles; '%d' writes them without an exponent.
# Returns {allowed (0/1), hits counted after this one, µs until a slot frees}.
_HIT_SCRIPT = """
local s, us
if ARGV[4] then
  s, us = tonumber(ARGV[4]), tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  s, us = tonumber(t[1]), tonumber(t[2])
end
local now = s * 1000000 + us
local limit, window, span = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local key = KEYS[1]
local total, head, tail, opened, count, last, head_last, head_count = 0, 1, 0, 0, 0, 0, 0, 0
local m = redis.call('HGET', key, 'm')
if m then
  local f = {string.match(m, '^(%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+)$')}
  total, head, tail, opened = tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
  count, last, head_last, head_count = tonumber(f[5]), tonumber(f[6]), tonumber(f[7]), tonumber(f[8])
end
local function closed(number)
  local c, l = string.match(redis.call('HGET', key, number), '^(%d+) (%d+)$')
  return tonumber(c), tonumber(l)
end
local function save()
  redis.call('HSET', key, 'm', string.format('%d %d %d %d %d %d %d %d',
    total, head, tail, opened, count, last, head_last, head_count))
end
local expired = false
while head < tail and head_last + window <= now do
  redis.call('HDEL', key, head)
  total, head, expired = total - head_count, head + 1, true
  if head < tail then
    head_count, head_last = closed(head)
  end
end
if head == tail and last + window <= now then
  total, head, expired = 0, head + 1, true
end
if total >= limit then
  if expired then save() end
  local excess, freed = total - limit + 1, 0
  for number = head, tail - 1 do
    local c, l = head_count, head_last
    if number > head then c, l = closed(number) end
    freed = freed + c
    if freed >= excess then
      return {0, total, l + window - now}
    end
  end
  return {0, total, last + window - now}
end
if head > tail or now >= opened + span then
  if head <= tail then
    redis.call('HSET', key, tail, string.format('%d %d', count, last))
    if head == tail then head_count, head_last = count, last end
  end
  tail, opened, count = tail + 1, now, 0
end
total, count, last = total + 1, count + 1, now
save()
if count == 1 then  -- a new group: its hits expire within a group length and a window from now
  redis.call('PEXPIRE', key, math.ceil((span + window) / 1000))
end
local oldest = head_last
if head == tail then oldest = last end
return {1, total, oldest + window - now}
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
    ``limits``, is accepted). Keys are stored under ``key_prefix``. ``clock`` (seconds) replaces the
    server's ``TIME``; only tests need it, since processes must share one clock.
    """

    def __init__(
        self,
        url: str,
        *,
        # Not the sorted sets' "keyhole:ratelimit:" of before: during a rolling upgrade old and
        # new processes count apart for a minute instead of failing on each other's keys.
        key_prefix: str = "keyhole:limits:",
        socket_timeout: float = 1.0,
        connect_timeout: float = 1.0,
        max_connections: int = 64,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._target = describe_redis_url(url)
        self._prefix = key_prefix
        # A blocking pool: past max_connections a hit waits (up to connect_timeout) for one to be
        # free, where the default pool would refuse it at once and so fail closed under load.
        pool = BlockingConnectionPool.from_url(
            url.removeprefix("async+"),
            max_connections=max_connections,
            timeout=connect_timeout,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            # One immediate retry reconnects a pooled connection the server dropped.
            retry=Retry(NoBackoff(), 1),
        )
        self._client: Redis = Redis.from_pool(pool)
        self._script = self._client.register_script(_HIT_SCRIPT)
        self._clock = clock

    @property
    def shared(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"RedisRateLimiter({self._target!r}, key_prefix={self._prefix!r})"

    async def hit(self, key: str, limit_per_minute: int) -> RateDecision:
        check_limit(limit_per_minute)
        args = [limit_per_minute, WINDOW_SECONDS * _MICROS, GROUP_SECONDS * _MICROS]
        if self._clock is not None:
            args.extend(divmod(round(self._clock() * _MICROS), _MICROS))
        try:
            reply = await self._script(keys=[self._prefix + key], args=args)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise self._unavailable(f"Redis at {self._target} is unreachable ({type(exc).__name__})") from exc
        except RedisError as exc:
            raise self._unavailable(f"Redis at {self._target} failed ({type(exc).__name__})") from exc
        allowed, count, reset_us = (int(v) for v in reply)
        return RateDecision(
            allowed=bool(allowed),
            limit=limit_per_minute,
            remaining=max(0, limit_per_minute - count),
            reset_after=max(0, reset_us) / _MICROS,
        )

    def _unavailable(self, reason: str) -> RateLimiterUnavailable:
        return RateLimiterUnavailable(
            f"Rate limiter unavailable: {reason}. Requests are refused until it recovers; "
            "check that Redis is running and KEYHOLE_REDIS_URL is correct.",
            metadata={"redis": self._target},
        )

    async def close(self) -> None:
        await self._client.aclose()
