"""Run by test_ratelimit_redis in a separate OS process: wait for "go" on stdin, then hit.

Usage: python redis_hit_worker.py URL KEY_PREFIX KEY LIMIT HITS
Prints the number of allowed hits.
"""

from __future__ import annotations

import asyncio
import sys

from keyhole.ratelimit import RedisRateLimiter


async def main(url: str, prefix: str, key: str, limit: int, hits: int) -> int:
    limiter = RedisRateLimiter(url, key_prefix=prefix)
    try:
        await limiter.hit("warmup", 1)  # connect and load the script before the race starts
        print("ready", flush=True)
        sys.stdin.readline()
        allowed = 0
        for _ in range(hits):
            allowed += (await limiter.hit(key, limit)).allowed
        return allowed
    finally:
        await limiter.close()


if __name__ == "__main__":
    url, prefix, key, limit, hits = sys.argv[1:6]
    print(asyncio.run(main(url, prefix, key, int(limit), int(hits))), flush=True)
