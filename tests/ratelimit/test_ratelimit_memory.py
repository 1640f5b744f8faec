"""In-memory limiter: exact sliding-window behaviour, driven by an injected clock."""

from __future__ import annotations

import time

import pytest

from keyhole.ratelimit import MemoryRateLimiter, RateDecision, RedisRateLimiter, create_rate_limiter


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_limit_then_denied(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    decisions = [await limiter.hit("conn:a", 5) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    denied = decisions[-1]
    assert denied.limit == 5
    assert 1 <= denied.retry_after <= 60


async def test_denied_hits_do_not_consume(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(5):
        assert (await limiter.hit("conn:a", 5)).allowed
        clock.now += 1  # entries at 1000..1004
    clock.now = 1030
    for _ in range(50):
        assert not (await limiter.hit("conn:a", 5)).allowed
    clock.now = 1060  # the entry from 1000 expires; the denied hits at 1030 left nothing behind
    assert (await limiter.hit("conn:a", 5)).allowed
    assert not (await limiter.hit("conn:a", 5)).allowed


async def test_keys_are_independent(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(5):
        await limiter.hit("conn:a", 5)
    assert not (await limiter.hit("conn:a", 5)).allowed
    assert (await limiter.hit("conn:b", 5)).allowed
    assert (await limiter.hit("org:a", 5)).allowed


async def test_window_slides_rather_than_resetting(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    clock.now = 1050
    for _ in range(5):
        assert (await limiter.hit("org:x", 5)).allowed
    clock.now = 1061  # a fixed minute window starting at 1060 would allow again here
    denied = await limiter.hit("org:x", 5)
    assert not denied.allowed
    assert denied.reset_after == pytest.approx(49)
    assert denied.retry_after == 49
    clock.now = 1110
    assert (await limiter.hit("org:x", 5)).allowed


async def test_allowed_reset_after_points_at_oldest_entry(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    first = await limiter.hit("conn:a", 3)
    assert first.reset_after == pytest.approx(60)
    clock.now += 20
    second = await limiter.hit("conn:a", 3)
    assert second.reset_after == pytest.approx(40)


async def test_lowered_limit_waits_for_enough_entries_to_expire(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(4):
        await limiter.hit("org:x", 10)
        clock.now += 10  # entries at 1000, 1010, 1020, 1030
    # At 1040 with limit 2: below the limit once 1000, 1010 and 1020 expired, i.e. at 1080.
    denied = await limiter.hit("org:x", 2)
    assert not denied.allowed
    assert denied.reset_after == pytest.approx(40)


async def test_idle_keys_are_evicted(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    for i in range(100):
        await limiter.hit(f"conn:{i}", 5)
    assert len(limiter) == 100
    clock.now += 61
    await limiter.hit("conn:new", 5)
    assert len(limiter) == 1


async def test_max_keys_is_a_hard_cap(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock, max_keys=3)
    for i in range(10):
        await limiter.hit(f"conn:{i}", 5)
    assert len(limiter) == 3


async def test_invalid_limit_is_rejected() -> None:
    with pytest.raises(ValueError):
        await MemoryRateLimiter().hit("conn:a", 0)


def test_retry_after_is_at_least_one_when_denied() -> None:
    assert RateDecision(False, 5, 0, 0.001).retry_after == 1
    assert RateDecision(False, 5, 0, 2.1).retry_after == 3
    assert RateDecision(True, 5, 4, 0.0).retry_after == 0


def test_headers() -> None:
    allowed = RateDecision(True, 10, 7, 30.0).headers()
    assert "Retry-After" not in allowed
    assert allowed["X-RateLimit-Limit"] == "10"
    assert allowed["X-RateLimit-Remaining"] == "7"
    reset = int(allowed["X-RateLimit-Reset"])
    assert time.time() + 29 <= reset <= time.time() + 32

    denied = RateDecision(False, 10, 0, 12.5)
    assert denied.retry_after == 13
    assert "Retry-After" not in denied.headers()  # the RateLimited error carries it
    assert denied.headers()["X-RateLimit-Remaining"] == "0"


async def test_factory() -> None:
    memory = create_rate_limiter(None)
    assert isinstance(memory, MemoryRateLimiter)
    await memory.close()
    shared = create_rate_limiter("redis://127.0.0.1:6379/0")
    assert isinstance(shared, RedisRateLimiter)
    await shared.close()
