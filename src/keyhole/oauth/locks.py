"""Cross-process refresh locks: Redis ``SET NX PX`` with a token and a compare-and-delete release
when ``KEYHOLE_REDIS_URL`` is set, otherwise a lease on the ``oauth_tokens`` row.

Both are leases (they expire by themselves), so a process that dies holding one blocks refreshes
of that connection for at most ``ttl``. Callers re-read the tokens after acquiring: another
process may have refreshed already."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from datetime import timedelta
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import or_, update

from keyhole.oauth.errors import RefreshLockUnavailable
from keyhole.oauth.models import OAuthTokens
from keyhole.store.base import utcnow
from keyhole.store.database import Database

POLL_SECONDS = 0.05

# KEYS[1] = lock key, ARGV[1] = the holder's token. Deletes only our own lock.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RefreshLock(Protocol):
    async def acquire(self, connection_id: str) -> str:
        """Wait for the lock; return the holder token. Raises RefreshLockUnavailable on timeout."""

    async def release(self, connection_id: str, token: str) -> None: ...

    async def close(self) -> None: ...


def _timed_out(wait: float) -> RefreshLockUnavailable:
    return RefreshLockUnavailable(
        f"another process has been refreshing this connection's token for over {wait:.0f}s; retry shortly",
        retry_after=1,
    )


class RedisRefreshLock:
    def __init__(
        self, url: str, *, ttl_seconds: float, wait_seconds: float, prefix: str = "keyhole:oauth:lock:"
    ) -> None:
        self._client: Redis = Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._ttl_ms = int(ttl_seconds * 1000)
        self._wait = wait_seconds
        self._prefix = prefix

    async def acquire(self, connection_id: str) -> str:
        token = secrets.token_hex(16)
        deadline = time.monotonic() + self._wait
        try:
            while True:
                if await self._client.set(self._prefix + connection_id, token, nx=True, px=self._ttl_ms):
                    return token
                if time.monotonic() >= deadline:
                    raise _timed_out(self._wait)
                await asyncio.sleep(POLL_SECONDS)
        except RedisError as exc:
            raise RefreshLockUnavailable(
                f"the refresh lock store (Redis) failed ({type(exc).__name__}); retry shortly"
            ) from None

    async def release(self, connection_id: str, token: str) -> None:
        with contextlib.suppress(RedisError):  # else the lease expires by itself
            await self._client.eval(_RELEASE, 1, self._prefix + connection_id, token)

    async def close(self) -> None:
        await self._client.aclose()


class DatabaseRefreshLock:
    """A lease on the tokens row: a compare-and-swap that succeeds only when no live lease exists."""

    def __init__(self, database: Database, *, ttl_seconds: float, wait_seconds: float) -> None:
        self._db = database
        self._ttl = timedelta(seconds=ttl_seconds)
        self._wait = wait_seconds

    async def acquire(self, connection_id: str) -> str:
        token = secrets.token_hex(16)
        deadline = time.monotonic() + self._wait
        while True:
            now = utcnow()
            async with self._db.transaction() as session:
                result = await session.execute(
                    update(OAuthTokens)
                    .where(
                        OAuthTokens.id == connection_id,
                        or_(OAuthTokens.lock_until.is_(None), OAuthTokens.lock_until < now),
                    )
                    .values(lock_token=token, lock_until=now + self._ttl)
                )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                return token
            if time.monotonic() >= deadline:
                raise _timed_out(self._wait)
            await asyncio.sleep(POLL_SECONDS)

    async def release(self, connection_id: str, token: str) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                update(OAuthTokens)
                .where(OAuthTokens.id == connection_id, OAuthTokens.lock_token == token)
                .values(lock_token=None, lock_until=None)
            )

    async def close(self) -> None:
        return None
