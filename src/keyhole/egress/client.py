"""The one way the gateway talks to upstream APIs."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from ipaddress import ip_address
from types import TracebackType

import aiohttp
import yarl

from keyhole import __version__
from keyhole.egress.failures import os_reason, upstream_error
from keyhole.egress.policy import EgressPolicy
from keyhole.egress.resolver import CheckingResolver
from keyhole.errors import InvalidRequest, UpstreamUnreachable

_SCHEMES = frozenset(("http", "https"))
_CHUNK = 65536
_MAX_CACHED_TIMEOUTS = 64
_MAX_ALLOWED_LITERALS = 4096
_SKIP_AUTO_HEADERS = frozenset({"Content-Type"})
_DEFAULT_HEADERS = {"User-Agent": f"Keyhole/{__version__}"}
_CAUGHT = (aiohttp.ClientError, OSError)  # OSError covers TimeoutError


class EgressClient:
    """Checked, redirect-free, always-deadlined HTTP requests over one shared session."""

    def __init__(self, policy: EgressPolicy, *, pool_limit: int = 256) -> None:
        self.policy = policy
        self._resolver = CheckingResolver(policy)
        self._pool_limit = pool_limit
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[int, aiohttp.ClientTimeout] = {}
        self._allowed_literals: set[str] = set()

    @property
    def resolver(self) -> CheckingResolver:
        """The checking resolver, for non-HTTP egress (database hosts) that must pin addresses."""
        return self._resolver

    async def check_url(self, url: yarl.URL) -> None:
        if url.scheme not in _SCHEMES:
            raise InvalidRequest(f"scheme {url.scheme!r} is not allowed; upstream URLs use http or https")
        host = url.raw_host
        if not host:
            raise InvalidRequest("the upstream URL has no host")
        if host in self._allowed_literals:
            return
        try:
            literal = ip_address(url.host or host)
        except ValueError:
            pass
        else:
            # aiohttp connects to IP literals without consulting the resolver. The policy is
            # fixed for the process, so an allowed literal is remembered (refusals are not).
            self.policy.check(host, literal)
            if len(self._allowed_literals) < _MAX_ALLOWED_LITERALS:
                self._allowed_literals.add(host)
            return
        if host.endswith(".."):  # aiohttp normalises this before resolving; share its cache key
            host = host.rstrip(".") + "."
        try:
            await self._resolver.resolve(host, url.port or 0)
        except OSError as exc:
            raise UpstreamUnreachable(f"could not resolve {host}: {os_reason(exc)}") from None

    def request(
        self,
        method: str,
        url: yarl.URL,
        *,
        headers: Mapping[str, str] | None,
        data: bytes | None,
        timeout_ms: int,
    ) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        """Async context manager yielding the response; the connection is released on exit."""
        timeout = self._timeouts.get(timeout_ms)
        if timeout is None:
            timeout = self._timeout(timeout_ms)
        return _EgressRequest(self, method, url, headers, data, timeout)

    def stream(
        self,
        method: str,
        url: yarl.URL,
        *,
        headers: Mapping[str, str] | None,
        timeout_ms: int,
        deadline_ms: int,
    ) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        """Like ``request``, for bodies read as a long stream: ``timeout_ms`` bounds connecting and
        every wait for data (headers included), ``deadline_ms`` the whole exchange."""
        if timeout_ms <= 0 or deadline_ms <= 0:
            raise InvalidRequest("timeouts must be positive")
        connect = min(timeout_ms, 10_000) / 1000
        timeout = aiohttp.ClientTimeout(
            total=deadline_ms / 1000, connect=connect, sock_connect=connect, sock_read=timeout_ms / 1000
        )
        return _EgressRequest(self, method, url, headers, None, timeout)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        await self._resolver.close()

    def _timeout(self, timeout_ms: int) -> aiohttp.ClientTimeout:
        if timeout_ms <= 0:
            raise InvalidRequest(f"timeout_ms must be positive, got {timeout_ms}")
        connect = min(timeout_ms, 10_000) / 1000
        timeout = aiohttp.ClientTimeout(total=timeout_ms / 1000, connect=connect, sock_connect=connect)
        if len(self._timeouts) >= _MAX_CACHED_TIMEOUTS:
            self._timeouts.clear()
        self._timeouts[timeout_ms] = timeout
        return timeout

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None:
            connector = aiohttp.TCPConnector(
                resolver=self._resolver,
                use_dns_cache=False,
                limit=self._pool_limit,
                keepalive_timeout=30,
            )
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=True,
                cookie_jar=aiohttp.DummyCookieJar(),  # upstream cookies must never be stored
                trust_env=False,  # never route through HTTP(S)_PROXY from the environment
                raise_for_status=False,
                headers=_DEFAULT_HEADERS,  # a caller's own User-Agent still wins
                # aiohttp would otherwise invent "application/octet-stream" for a bodyless POST;
                # set once here, as a per-request argument costs a set build on every call.
                skip_auto_headers=_SKIP_AUTO_HEADERS,
            )
        return session


class _EgressRequest:
    __slots__ = ("_client", "_data", "_headers", "_method", "_response", "_timeout", "_url")

    def __init__(
        self,
        client: EgressClient,
        method: str,
        url: yarl.URL,
        headers: Mapping[str, str] | None,
        data: bytes | None,
        timeout: aiohttp.ClientTimeout,
    ) -> None:
        self._client = client
        self._method = method
        self._url = url
        self._headers = headers
        self._data = data
        self._timeout = timeout
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        client = self._client
        url = self._url
        await client.check_url(url)  # refuse before aiohttp can open anything
        try:
            response = await client._get_session().request(
                self._method,
                url,
                headers=self._headers,
                data=self._data,
                allow_redirects=False,
                timeout=self._timeout,
            )
        except _CAUGHT as exc:
            # "from None": aiohttp's messages may contain the URL and its query string.
            raise upstream_error(exc, url.raw_host, url.port) from None
        self._response = response
        return response

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        response, self._response = self._response, None
        if response is None:
            return
        try:
            response.release()
            await response.wait_for_close()
        except _CAUGHT as error:
            if exc is None:
                raise upstream_error(error, self._url.raw_host, self._url.port) from None


async def read_capped(response: aiohttp.ClientResponse, cap: int) -> tuple[bytes, bool]:
    """Read at most ``cap`` body bytes; True means the body was longer and reading stopped.

    Holds at most ``cap`` plus one chunk. The session's total timeout also bounds reading.
    """
    body = bytearray()
    try:
        async for chunk in response.content.iter_chunked(_CHUNK):
            room = cap - len(body)
            if len(chunk) > room:
                body += chunk[:room]
                return bytes(body), True
            body += chunk
    except _CAUGHT as exc:
        raise upstream_error(exc, response.url.raw_host, response.url.port) from None
    return bytes(body), False
