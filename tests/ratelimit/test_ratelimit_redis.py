"""Redis limiter: shared counting across OS processes, and failing closed."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from keyhole.ratelimit import RateLimiterUnavailable, RedisRateLimiter

REDIS_URL = os.environ.get("KEYHOLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WORKER = Path(__file__).with_name("redis_hit_worker.py")


def require_redis(url: str) -> None:
    """Skip when Redis is unreachable, but fail under ``CI=true`` where it must be present."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        message = f"Redis is not reachable at {url}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
async def key_prefix() -> AsyncIterator[str]:
    require_redis(REDIS_URL)
    prefix = f"keyhole-test:ratelimit:{uuid.uuid4().hex}:"
    yield prefix
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def limiter(key_prefix: str) -> AsyncIterator[RedisRateLimiter]:
    instance = RedisRateLimiter(REDIS_URL, key_prefix=key_prefix)
    yield instance
    await instance.close()


@pytest.mark.redis
async def test_limit_then_denied_without_consuming(limiter: RedisRateLimiter) -> None:
    decisions = [await limiter.hit("conn:a", 5) for _ in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    for denied in decisions[5:]:
        assert 1 <= denied.retry_after <= 60
        assert denied.remaining == 0
    assert (await limiter.hit("conn:b", 5)).allowed


@pytest.mark.redis
async def test_denied_hits_write_nothing(limiter: RedisRateLimiter, key_prefix: str) -> None:
    for _ in range(10):
        await limiter.hit("org:a", 3)
    client = Redis.from_url(REDIS_URL)
    try:
        summary = await client.hget(f"{key_prefix}org:a", "m")
        assert summary is not None
        assert int(summary.split()[0]) == 3  # hits counted: the denied ones added nothing
        assert 0 < await client.pttl(f"{key_prefix}org:a") <= 61_000
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_more_concurrent_hits_than_connections_are_all_decided(key_prefix: str) -> None:
    limiter = RedisRateLimiter(REDIS_URL, key_prefix=key_prefix, max_connections=8)
    try:
        decisions = await asyncio.gather(*(limiter.hit("org:busy", 100) for _ in range(300)))
    finally:
        await limiter.close()
    assert sum(decision.allowed for decision in decisions) == 100
    assert all(decision.retry_after >= 1 for decision in decisions if not decision.allowed)


@pytest.mark.redis
def test_two_processes_share_one_limit(key_prefix: str) -> None:
    args = [sys.executable, str(WORKER), REDIS_URL, key_prefix, "org:shared", "10", "15"]
    workers = [
        subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=60)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert [worker.returncode for worker in workers] == [0, 0]
    allowed = [int(output.strip().splitlines()[-1]) for output in outputs]
    assert sum(allowed) == 10, allowed


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_redis_fails_closed_without_leaking_password() -> None:
    port = _closed_port()
    limiter = RedisRateLimiter(f"redis://user:s3cret-pw@127.0.0.1:{port}/0")
    try:
        with pytest.raises(RateLimiterUnavailable) as caught:
            await limiter.hit("conn:a", 5)
    finally:
        await limiter.close()
    error = caught.value
    assert error.status == 503
    assert error.key == "rate_limiter_unavailable"
    assert f"127.0.0.1:{port}" in error.message
    assert "unreachable" in error.message
    assert "s3cret" not in str(error)
    assert "s3cret" not in repr(limiter)
