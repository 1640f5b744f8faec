"""DNS resolution that only ever hands out addresses the policy has approved."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from ipaddress import ip_address
from typing import NamedTuple

from keyhole.egress.policy import EgressPolicy, IPAddress, denial


class ResolvedAddress(NamedTuple):
    """One checked, numeric address: connecting to it performs no second lookup."""

    host: str  # the numeric address (with ``%scope`` for a link-local IPv6 one)
    port: int
    family: int


_CacheKey = tuple[str, int, int]
# An approved answer, or the first refused address and why (raised again on every hit).
_Answer = list[ResolvedAddress] | tuple[IPAddress, str]
_AddrInfo = tuple[int, int, int, str, tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]]


class CheckingResolver:
    """Resolves once, refuses if any address is refused, and caches the checked answer.

    Callers connect to the numeric addresses it returns, so the addresses connected to are
    exactly the addresses checked (no second lookup that DNS rebinding could answer differently).
    """

    def __init__(self, policy: EgressPolicy, ttl_seconds: float = 30.0, max_entries: int = 1024) -> None:
        self._policy = policy
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._cache: dict[_CacheKey, tuple[float, _Answer]] = {}

    async def resolve(
        self, host: str, port: int = 0, family: int = socket.AF_UNSPEC
    ) -> list[ResolvedAddress]:
        key = (host, port, family)
        now = time.monotonic()
        entry = self._cache.get(key)
        if entry is not None and entry[0] > now:
            answer = entry[1]
        else:
            answer = await self._resolve_and_check(host, port, family)
            self._store(key, now + self._ttl, answer)
        if isinstance(answer, list):
            return list(answer)
        raise denial(host, *answer)

    async def close(self) -> None:
        self._cache.clear()

    async def _getaddrinfo(self, host: str, port: int, family: int) -> Sequence[_AddrInfo]:
        return await asyncio.get_running_loop().getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG
        )

    async def _resolve_and_check(self, host: str, port: int, family: int) -> _Answer:
        results: list[ResolvedAddress] = []
        for fam, _, _, _, sockaddr in await self._getaddrinfo(host, port, family):
            if fam not in (socket.AF_INET, socket.AF_INET6) or not isinstance(sockaddr[0], str):
                continue
            text = sockaddr[0]
            if len(sockaddr) == 4 and sockaddr[3]:
                text = f"{text}%{sockaddr[3]}"  # IPv6 scope id, needed for link-local
            address = ip_address(text)
            reason = self._policy.refusal_reason(address)
            if reason is not None:
                return address, reason
            results.append(ResolvedAddress(text, int(sockaddr[1]), fam))
        if not results:
            raise socket.gaierror(socket.EAI_NONAME, "no IPv4 or IPv6 address")
        return results

    def _store(self, key: _CacheKey, expires: float, answer: _Answer) -> None:
        cache = self._cache
        cache.pop(key, None)
        while len(cache) >= self._max_entries:
            del cache[next(iter(cache))]
        cache[key] = (expires, answer)
