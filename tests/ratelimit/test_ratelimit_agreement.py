"""The Redis limiter and the in-memory one decide alike on the same generated call sequences.

Both get the same fake clock (Redis takes it in place of its ``TIME``), starting at a real Unix
time so that Redis sees microsecond timestamps of today's size.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from ratelimit_sequences import KEYS, TICK, Step, limits, steps
from redis.asyncio import Redis
from test_ratelimit_redis import REDIS_URL, require_redis

from clock import FakeClock
from keyhole.ratelimit import MAX_LIMIT_PER_MINUTE, MemoryRateLimiter, RateDecision, RedisRateLimiter

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Pair:
    """One Redis limiter on a private event loop (the generated examples are synchronous)."""

    def __init__(self) -> None:
        self.clock = FakeClock(START)
        self.loop = asyncio.new_event_loop()
        self.prefix = f"keyhole-test:agreement:{uuid.uuid4().hex}:"
        self.redis = RedisRateLimiter(REDIS_URL, key_prefix=self.prefix, clock=self.clock)

    def hit(self, key: str, limit: int) -> RateDecision:
        return self.loop.run_until_complete(self.redis.hit(key, limit))

    def close(self) -> None:
        async def cleanup() -> None:
            client = Redis.from_url(REDIS_URL)
            try:
                keys = [key async for key in client.scan_iter(match=f"{self.prefix}*")]
                if keys:
                    await client.delete(*keys)
            finally:
                await client.aclose()
            await self.redis.close()

        self.loop.run_until_complete(cleanup())
        self.loop.close()


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    require_redis(REDIS_URL)
    instance = Pair()
    yield instance
    instance.close()


def same(memory: RateDecision, shared: RateDecision) -> None:
    assert (shared.allowed, shared.limit, shared.remaining) == (
        memory.allowed,
        memory.limit,
        memory.remaining,
    )
    assert shared.reset_after == pytest.approx(memory.reset_after, abs=1e-6)


@pytest.mark.redis
@settings(max_examples=60, deadline=None)
@given(sequence=steps, key_limits=limits)
def test_memory_and_redis_agree(pair: Pair, sequence: list[Step], key_limits: tuple[int, ...]) -> None:
    pair.clock.now = START
    memory = MemoryRateLimiter(clock=pair.clock)
    run = uuid.uuid4().hex  # each example starts from empty counters
    for step in sequence:
        pair.clock.now += step.ticks * TICK
        key, limit = f"{run}:{KEYS[step.key]}", step.limit(key_limits)
        for _ in range(step.hits):
            decision = memory.hit_now(key, limit)
            same(decision, pair.hit(key, limit))
            if not decision.allowed:  # and both free a slot at the same instant
                now = pair.clock.now
                pair.clock.now = now + decision.reset_after - TICK
                same(memory.hit_now(key, limit), pair.hit(key, limit))
                pair.clock.now = now + decision.reset_after
                same(memory.hit_now(key, limit), pair.hit(key, limit))


@pytest.mark.redis
def test_lowered_limits_wait_for_the_same_groups(pair: Pair) -> None:
    memory = MemoryRateLimiter(clock=pair.clock)
    key = f"{uuid.uuid4().hex}:conn:lowered"
    pair.clock.now = START
    for group in range(5):  # groups of 1, 2, 3, 4 and 5 hits, 10 s apart
        pair.clock.now = START + 10 * group + 0.25
        for _ in range(group + 1):
            same(memory.hit_now(key, 100), pair.hit(key, 100))
    pair.clock.now = START + 45
    for limit in range(1, 16):  # each lowered limit waits for a different group to expire
        decision = memory.hit_now(key, limit)
        same(decision, pair.hit(key, limit))
        assert decision.allowed == (limit > 15)
    assert [memory.hit_now(key, limit).reset_after for limit in (15, 14, 12, 9, 5)] == [
        15.25,
        25.25,
        35.25,
        45.25,
        55.25,
    ]


@pytest.mark.redis
def test_redis_keeps_at_most_61_fields_at_a_huge_limit(pair: Pair) -> None:
    key = f"{uuid.uuid4().hex}:org:big"

    async def second_of_calls() -> list[RateDecision]:
        return await asyncio.gather(*(pair.redis.hit(key, MAX_LIMIT_PER_MINUTE) for _ in range(100)))

    for second in range(100):  # 100 calls a second for 100 s
        pair.clock.now = START + second + 0.5
        assert all(decision.allowed for decision in pair.loop.run_until_complete(second_of_calls()))

    async def stored() -> dict[bytes | str, bytes | str]:
        client = Redis.from_url(REDIS_URL)
        try:
            return await client.hgetall(pair.prefix + key)
        finally:
            await client.aclose()

    fields = pair.loop.run_until_complete(stored())
    summary = fields.pop(b"m").split()  # the rest: one field per closed group
    assert 59 <= len(fields) <= 60  # with the newest group: at most 61
    counted = int(summary[0])
    assert counted == 6_000  # the calls of the last minute
    assert counted == sum(int(value.split()[0]) for value in fields.values()) + int(summary[4])
