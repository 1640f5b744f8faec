from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import pytest

from keyhole.egress import CheckingResolver, EgressPolicy
from keyhole.egress.resolver import ResolvedAddress
from keyhole.errors import EgressDenied

from .conftest import LOOPBACK_V4


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
    assert results == [ResolvedAddress("127.0.0.1", 8080, socket.AF_INET)]


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
