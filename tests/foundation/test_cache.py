"""The TTL cache on a fake clock: fresh hits, refresh-ahead in the background, expiry."""

from __future__ import annotations

import asyncio

from clock import FakeClock
from keyhole.cache import TtlCache


class Loader:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        return self.calls


async def test_entries_are_reused_refreshed_ahead_and_expire() -> None:
    clock = FakeClock()
    cache: TtlCache[str, int] = TtlCache(10, refresh_ahead=0.5, clock=clock)
    load = Loader()
    assert await cache.get("k", load) == 1
    clock.advance(4.9)
    assert await cache.get("k", load) == 1 and load.calls == 1
    clock.advance(0.2)  # past half the TTL: the stale value now, a reload behind it
    assert await cache.get("k", load) == 1
    await asyncio.sleep(0)  # lets the background reload run
    assert load.calls == 2 and await cache.get("k", load) == 2
    clock.advance(10)  # expired: the caller waits for the load
    assert await cache.get("k", load) == 3


async def test_a_failed_load_evicts_the_entry() -> None:
    clock = FakeClock()
    cache: TtlCache[str, int] = TtlCache(10, clock=clock)
    assert await cache.get("k", Loader()) == 1

    async def failing() -> int:
        raise LookupError("revoked")

    clock.advance(6)
    assert await cache.get("k", failing) == 1  # served while the refresh fails behind it
    await asyncio.sleep(0)
    load = Loader()
    assert await cache.get("k", load) == 1 and load.calls == 1  # the entry went with the failure
