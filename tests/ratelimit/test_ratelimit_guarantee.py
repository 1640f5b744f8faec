"""The limiter's guarantee under generated call sequences, and its memory whatever the limit.

Guarantee (``keyhole.ratelimit.base``): a limit of N per minute never lets more than N hits
through in any window ``(t - 60 s, t]``; a hit is refused only when N were allowed in the last
61 s; a refusal's wait is at least what an exact log would say, at most a second more, and never
more than 60 s; a retry after that wait is allowed. Limits change between calls in the generated
sequences (as a connection update does): each call is judged by the limit it comes with.
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from ratelimit_sequences import KEYS, TICK, ExactLog, Step, limits, steps

from clock import FakeClock
from keyhole.ratelimit import MAX_LIMIT_PER_MINUTE, MemoryRateLimiter
from keyhole.ratelimit.memory import HitGroups

MAX_GROUPS = 61


def footprint(groups: HitGroups) -> int:
    """Bytes held for one key: the object, its two deques and the numbers in them."""
    numbers = [*groups.counts, *groups.lasts, groups.opened, groups.total]
    return (
        sys.getsizeof(groups)
        + sys.getsizeof(groups.counts)
        + sys.getsizeof(groups.lasts)
        + sum(sys.getsizeof(number) for number in numbers)
    )


@settings(max_examples=300, deadline=None)
@given(sequence=steps, key_limits=limits)
def test_never_more_than_the_limit_in_any_minute(sequence: list[Step], key_limits: tuple[int, ...]) -> None:
    clock = FakeClock(1000.0)
    limiter = MemoryRateLimiter(clock=clock)
    log = ExactLog()
    for step in sequence:
        clock.now += step.ticks * TICK
        key, limit = KEYS[step.key], step.limit(key_limits)
        for _ in range(step.hits):
            now = clock.now
            decision = limiter.hit_now(key, limit)
            assert decision.limit == limit
            if decision.allowed:
                assert log.within(key, now, 60) < limit  # the guarantee: at most N in (t - 60, t]
                log.add(key, now)
                assert limit - log.within(key, now, 61) <= decision.remaining
                assert decision.remaining <= limit - log.within(key, now, 60)
                assert 0 <= decision.reset_after <= 60
                continue
            assert log.within(key, now, 61) >= limit  # refused only with N in the last 61 s
            assert decision.remaining == 0
            exact = log.exact_wait(key, now, limit)
            assert exact <= decision.reset_after <= exact + 1
            assert 0 < decision.reset_after <= 60
            assert 1 <= decision.retry_after <= 60
            # Denials take nothing: just before the wait still refused, at its end allowed.
            clock.now = now + decision.reset_after - TICK
            assert not limiter.hit_now(key, limit).allowed
            clock.now = now + decision.reset_after
            assert limiter.hit_now(key, limit).allowed
            log.add(key, clock.now)
        groups = limiter.groups(key)
        assert groups is not None and len(groups.lasts) == len(groups.counts) <= MAX_GROUPS


def test_memory_per_key_does_not_depend_on_the_limit() -> None:
    clock = FakeClock(0.0)
    big = MemoryRateLimiter(clock=clock)
    small = MemoryRateLimiter(clock=clock)
    for call in range(100_000):
        clock.now = call / 1000  # 1,000 calls a second for 100 s
        assert big.hit_now("org:big", MAX_LIMIT_PER_MINUTE).allowed
        small.hit_now("org:small", 10)
    assert len(big) == len(small) == 1
    kept = big.groups("org:big")
    assert kept is not None
    assert not hasattr(kept, "__dict__") and set(HitGroups.__slots__) == {
        "counts",
        "lasts",
        "opened",
        "total",
    }
    assert len(kept.counts) == len(kept.lasts) <= MAX_GROUPS
    assert 60_000 <= kept.total <= 61_000  # the calls of the last minute (to a second), in 61 groups
    assert MAX_LIMIT_PER_MINUTE - kept.total == big.hit_now("org:big", MAX_LIMIT_PER_MINUTE).remaining + 1
    saturated = small.groups("org:small")
    assert saturated is not None and saturated.total == 10
    assert footprint(kept) < 8192  # a log of those 60,000 timestamps would take about 2 MB


def test_one_small_entry_per_key() -> None:
    clock = FakeClock(0.0)
    limiter = MemoryRateLimiter(clock=clock)
    for call in range(100_000):
        clock.now = call / 2000
        limiter.hit_now(f"conn:{call % 1000}", MAX_LIMIT_PER_MINUTE)
    assert len(limiter) == 1000
    for index in range(1000):
        groups = limiter.groups(f"conn:{index}")
        assert groups is not None and groups.total == 100
        assert len(groups.counts) <= MAX_GROUPS


async def test_hits_within_a_second_share_one_group() -> None:
    clock = FakeClock(1000.25)
    limiter = MemoryRateLimiter(clock=clock)
    for now in (1000.25, 1000.5, 1000.75):
        clock.now = now
        assert (await limiter.hit("conn:a", 3)).allowed
    groups = limiter.groups("conn:a")
    assert groups is not None
    assert (list(groups.counts), list(groups.lasts), groups.opened) == ([3], [1000.75], 1000.25)
    denied = await limiter.hit("conn:a", 3)
    assert denied.reset_after == 60 and denied.retry_after == 60  # never past a minute
    # The hit of 1000.25 is a minute old, but its group counts until its last hit is.
    clock.now = 1060.5
    late = await limiter.hit("conn:a", 3)
    assert not late.allowed and late.reset_after == pytest.approx(0.25) and late.retry_after == 1
    clock.now = 1060.75
    assert (await limiter.hit("conn:a", 3)).allowed


async def test_a_group_takes_hits_for_one_second_from_its_first() -> None:
    clock = FakeClock(1000.0)
    limiter = MemoryRateLimiter(clock=clock)
    for now in (1000.0, 1000.5, 1000.96875, 1001.0, 1001.5, 1003.0):
        clock.now = now
        await limiter.hit("conn:a", 100)
    groups = limiter.groups("conn:a")
    assert groups is not None
    assert list(groups.counts) == [3, 2, 1]
    assert list(groups.lasts) == [1000.96875, 1001.5, 1003.0]


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT_PER_MINUTE + 1])
def test_limits_out_of_range_are_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="from 1 to 100000000"):
        MemoryRateLimiter().hit_now("conn:a", limit)
