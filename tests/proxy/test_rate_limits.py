"""Proxy rate limits per connection, per organization, and shared across processes via Redis.

Every refused call must leave the upstream untouched, so limits are tested against a local
upstream that counts requests by path.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from conftest import REDIS_URL, require_service

from .support import Gateway, LocalUpstream


def _assert_rate_limited(response: httpx.Response, key: str, limit: int) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["status"] == 429
    assert body["key"] == key
    assert body["metadata"]["limit"] == limit
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert response.headers["X-RateLimit-Remaining"] == "0"
    reset = int(response.headers["X-RateLimit-Reset"])
    assert time.time() - 5 <= reset <= time.time() + 65


def test_connection_limit(gw_a: Gateway, fresh_upstream: LocalUpstream) -> None:
    connection = gw_a.create(fresh_upstream.url(), proxy={"rate_limit_per_minute": 3})
    assert gw_a.info(connection)["requestContract"]["rateLimitPerMinute"] == 3
    # Calls refused by the request contract take no slot.
    for _ in range(3):
        gw_a.refused(connection, 400, "invalid_proxy_request", method="GET", path="../x")
    for n in range(3):
        assert gw_a.ok(connection, method="GET", path=f"/limited/{n}")["status"] == 200
    assert fresh_upstream.hits("/limited/") == 3
    for n in range(3, 6):
        _assert_rate_limited(
            gw_a.call(connection, method="GET", path=f"/limited/{n}"), "connection_rate_limited", 3
        )
    assert fresh_upstream.hits("/limited/") == 3, "a rate-limited call reached the upstream"
    outcomes = [call["outcome"] for call in gw_a.calls(connection, limit=6)["data"]]
    assert outcomes == ["connection_rate_limited"] * 3 + ["ok"] * 3
    # Other connections of the organization keep their own budget.
    other = gw_a.create(fresh_upstream.url(), proxy={"rate_limit_per_minute": 3})
    assert gw_a.ok(other, method="GET", path="/other")["status"] == 200


def test_organization_limit(
    make_server: Callable[..., Any],
    make_gateway: Callable[[str, dict[str, str]], Gateway],
    fresh_upstream: LocalUpstream,
) -> None:
    server = make_server(KEYHOLE_ORG_RATE_LIMIT_PER_MINUTE="2")
    first = make_gateway(server.url, server.bootstrap("org-limited", "l@l.test").bearer)
    second = make_gateway(server.url, server.bootstrap("org-free", "f@f.test").bearer)
    one = first.create(fresh_upstream.url())
    two = first.create(fresh_upstream.url())
    assert first.info(one)["requestContract"]["organizationRateLimitPerMinute"] == 2
    assert first.ok(one, method="GET", path="/org/1")["status"] == 200
    assert first.ok(two, method="GET", path="/org/2")["status"] == 200
    _assert_rate_limited(first.call(one, method="GET", path="/org/3"), "organization_rate_limited", 2)
    _assert_rate_limited(first.call(two, method="GET", path="/org/4"), "organization_rate_limited", 2)
    assert fresh_upstream.hits("/org/") == 2
    # Another organization on the same server is not affected.
    other = second.create(fresh_upstream.url())
    assert second.ok(other, method="GET", path="/org/other")["status"] == 200


def test_redis_limit_is_shared_by_two_processes(
    make_server: Callable[..., Any],
    make_gateway: Callable[[str, dict[str, str]], Gateway],
    fresh_upstream: LocalUpstream,
) -> None:
    parts = urlsplit(REDIS_URL)
    require_service("Redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    first = make_server(KEYHOLE_REDIS_URL=REDIS_URL)
    second = make_server(home=first.home, KEYHOLE_REDIS_URL=REDIS_URL)  # same SQLite (WAL) and keys
    keys = first.bootstrap(f"org-redis-{uuid.uuid4().hex[:8]}", "r@r.test")
    gateways = [make_gateway(first.url, keys.bearer), make_gateway(second.url, keys.bearer)]
    connection = gateways[0].create(fresh_upstream.url(), proxy={"rate_limit_per_minute": 5})
    statuses = []
    for n in range(12):
        response = gateways[n % 2].call(connection, method="GET", path=f"/shared/{n}")
        statuses.append(response.status_code)
        if response.status_code == 429:
            _assert_rate_limited(response, "connection_rate_limited", 5)
    assert statuses.count(200) == 5, statuses
    assert statuses.count(429) == 7, statuses
    assert statuses[:5] == [200] * 5
    assert fresh_upstream.hits("/shared/") == 5
