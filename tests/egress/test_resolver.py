from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest

from keyhole.egress import CheckingResolver, EgressPolicy
from keyhole.errors import EgressDenied

from .conftest import LOOPBACK_V4, Upstream


class CountingResolver(CheckingResolver):
    def __init__(self, policy: EgressPolicy, **kwargs: Any) -> None:
        super().__init__(policy, **kwargs)
        self.lookups: list[str] = []

    async def _getaddrinfo(self, host: str, port: int, family: int) -> Sequence[Any]:
        self.lookups.append(host)
        return await super()._getaddrinfo(host, port, family)


async def test_results_are_numeric_and_checked() -> None:
    resolver = CheckingResolver(EgressPolicy([LOOPBACK_V4]))
    results = await resolver.resolve("127.0.0.1", 8080)
    assert results == [
        {
            "hostname": "127.0.0.1",
            "host": "127.0.0.1",
            "port": 8080,
            "family": socket.AF_INET,
            "proto": socket.IPPROTO_TCP,
            "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
        }
    ]


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "localhost"])
async def test_numeric_forms_are_caught_after_resolution(host: str) -> None:
    with pytest.raises(EgressDenied, match=r"resolves to 127\.0\.0\.1 \(loopback\)"):
        await CheckingResolver(EgressPolicy()).resolve(host, 80)


async def test_answers_and_refusals_are_cached_per_host_and_port() -> None:
    resolver = CountingResolver(EgressPolicy([LOOPBACK_V4]))
    await resolver.resolve("0x7f000001", 80)
    await resolver.resolve("0x7f000001", 80)
    await resolver.resolve("0x7f000001", 81)
    assert resolver.lookups == ["0x7f000001", "0x7f000001"]

    refusing = CountingResolver(EgressPolicy())
    for _ in range(2):
        with pytest.raises(EgressDenied):
            await refusing.resolve("0x7f000001", 80)
    assert refusing.lookups == ["0x7f000001"]


async def test_cache_expires_and_is_bounded() -> None:
    expiring = CountingResolver(EgressPolicy([LOOPBACK_V4]), ttl_seconds=0.0)
    await expiring.resolve("0x7f000001", 80)
    await expiring.resolve("0x7f000001", 80)
    assert len(expiring.lookups) == 2

    bounded = CountingResolver(EgressPolicy([LOOPBACK_V4]), max_entries=2)
    for port in (1, 2, 3):
        await bounded.resolve("0x7f000001", port)
    assert len(bounded._cache) == 2
    await bounded.resolve("0x7f000001", 1)  # evicted first, so looked up again
    assert len(bounded.lookups) == 4


async def test_dns_failure_is_an_os_error() -> None:
    with pytest.raises(socket.gaierror):
        await CheckingResolver(EgressPolicy()).resolve("nonexistent.invalid", 80)


async def test_aiohttp_passes_resolver_refusal_through_unwrapped(upstream: Upstream) -> None:
    """aiohttp wraps only OSError from a resolver (as ClientConnectorDNSError); ours is not one."""
    connector = aiohttp.TCPConnector(resolver=CheckingResolver(EgressPolicy()), use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(EgressDenied):
            await session.get(upstream.url(host="localhost"))
    assert upstream.connections == 0
