"""The one way the gateway talks to upstream APIs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from ipaddress import ip_address
from types import TracebackType

import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from keyhole import __version__
from keyhole.egress.capacity import Capacity, EgressLimits, Origin
from keyhole.egress.decoding import ACCEPT_ENCODING, BodyDecoder, decoder_for
from keyhole.egress.failures import os_reason, upstream_error
from keyhole.egress.http1 import Connection, RawHeaders, UpstreamClosed
from keyhole.egress.policy import EgressPolicy
from keyhole.egress.pool import ConnectionPool
from keyhole.egress.resolver import CheckingResolver, ResolvedAddress
from keyhole.errors import InvalidRequest, UpstreamUnreachable

_SCHEMES = frozenset(("http", "https"))
_MAX_ALLOWED_LITERALS = 4096
_CONNECT_TIMEOUT_MS = 10_000
_USER_AGENT = f"Keyhole/{__version__}"
# Framing is the client's job: these never come from a caller's header map.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_DEFAULTED = frozenset({"user-agent", "accept", "accept-encoding"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class EgressClient:
    """Checked, redirect-free, always-deadlined HTTP/1.1 requests over pooled connections.

    Upstream cookies are never stored and proxy environment variables are never read: there
    is no cookie jar and no proxy support at all. Redirects come back as they are.
    Exchanges in flight are limited in all, per origin and per organization (``capacity``).
    """

    def __init__(self, policy: EgressPolicy, *, limits: EgressLimits | None = None) -> None:
        limits = limits or EgressLimits()
        self.policy = policy
        self._resolver = CheckingResolver(policy)
        self._pool = ConnectionPool(idle_per_key=min(limits.per_origin, limits.in_flight))
        self._capacity = Capacity(limits)
        self._allowed_literals: dict[tuple[str, int], list[ResolvedAddress]] = {}

    @property
    def resolver(self) -> CheckingResolver:
        """The checking resolver, for non-HTTP egress (database hosts) that must pin addresses."""
        return self._resolver

    async def addresses(self, url: yarl.URL) -> list[ResolvedAddress]:
        """The checked addresses to connect to for ``url``; raises if the policy refuses any."""
        if url.scheme not in _SCHEMES:
            raise InvalidRequest(f"scheme {url.scheme!r} is not allowed; upstream URLs use http or https")
        host = url.raw_host
        if not host:
            raise InvalidRequest("the upstream URL has no host")
        port = url.port or 0
        known = self._allowed_literals.get((host, port))
        if known is not None:
            return known
        try:
            literal = ip_address(host)
        except ValueError:
            pass
        else:
            # The policy is fixed for the process, so an allowed literal is remembered
            # (refusals are not).
            self.policy.check(host, literal)
            family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
            # Connected to in its canonical form: exactly what was checked, never re-parsed.
            answer = [ResolvedAddress(str(literal), port, family)]
            if len(self._allowed_literals) < _MAX_ALLOWED_LITERALS:
                self._allowed_literals[(host, port)] = answer
            return answer
        try:
            answer = await self._resolver.resolve(
                host.rstrip(".") + "." if host.endswith("..") else host, port
            )
        except OSError as exc:
            raise UpstreamUnreachable(f"could not resolve {host}: {os_reason(exc)}") from None
        if host.isdigit():
            # "2130706433" is an address to getaddrinfo, not a name: refused even where allowed.
            raise InvalidRequest(f"{host[:64]!r} is not a valid host name; write IP addresses in dotted form")
        return answer

    def request(
        self,
        method: str,
        url: yarl.URL,
        *,
        headers: Mapping[str, str] | None,
        data: bytes | None,
        timeout_ms: int,
        organization: str | None = None,
    ) -> Exchange:
        """Async context manager yielding the response; the connection is released on exit.

        ``timeout_ms`` bounds the whole exchange, waiting for a free slot, connecting and reading
        the body included. The call counts against ``organization``'s limit when one is given."""
        if timeout_ms <= 0:
            raise InvalidRequest(f"timeout_ms must be positive, got {timeout_ms}")
        return Exchange(
            self._pool,
            self._capacity,
            self.addresses,
            method,
            url,
            headers,
            data,
            timeout_ms / 1000,
            None,
            organization,
        )

    def stream(
        self,
        method: str,
        url: yarl.URL,
        *,
        headers: Mapping[str, str] | None,
        timeout_ms: int,
        deadline_ms: int,
        organization: str | None = None,
    ) -> Exchange:
        """Like ``request``, for bodies read as a long stream: ``timeout_ms`` bounds waiting for a
        free slot, connecting and every wait for data (headers included), ``deadline_ms`` the
        whole exchange."""
        if timeout_ms <= 0 or deadline_ms <= 0:
            raise InvalidRequest("timeouts must be positive")
        return Exchange(
            self._pool,
            self._capacity,
            self.addresses,
            method,
            url,
            headers,
            None,
            deadline_ms / 1000,
            timeout_ms / 1000,
            organization,
        )

    async def close(self) -> None:
        self._pool.close()
        await self._resolver.close()


class UpstreamResponse:
    """Status, headers and the (decoded) body stream of an upstream answer."""

    __slots__ = ("_connection", "_decoder", "headers", "status", "url")

    def __init__(
        self, connection: Connection, status: int, headers: CIMultiDictProxy[str], url: yarl.URL
    ) -> None:
        self._connection = connection
        self.status = status
        self.headers = headers
        self.url = url
        self._decoder: BodyDecoder | None = decoder_for(headers.getall("Content-Encoding", []))

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, decoded; failures become domain errors (502/504)."""
        connection = self._connection
        decoder = self._decoder
        try:
            while chunk := await connection.read_chunk():
                if decoder is None:
                    yield chunk
                else:
                    for piece in decoder.decode(chunk):
                        yield piece
            if decoder is not None and (tail := decoder.flush()):
                yield tail
        except Exception as exc:
            raise upstream_error(exc, self.url.raw_host, self.url.port) from None

    def buffered_body(self) -> bytes | None:
        """The whole body if it has already arrived and needs no decoding, without waiting."""
        if self._decoder is not None:
            return None
        return self._connection.take_buffered_body()


class Exchange:
    """One request and its response, as an async context manager."""

    __slots__ = (
        "_addresses",
        "_capacity",
        "_connection",
        "_data",
        "_deadline",
        "_headers",
        "_method",
        "_organization",
        "_origin",
        "_pool",
        "_read_timeout",
        "_timer",
        "_url",
    )

    def __init__(
        self,
        pool: ConnectionPool,
        capacity: Capacity,
        addresses: Callable[[yarl.URL], Awaitable[list[ResolvedAddress]]],
        method: str,
        url: yarl.URL,
        headers: Mapping[str, str] | None,
        data: bytes | None,
        deadline: float,
        read_timeout: float | None,
        organization: str | None,
    ) -> None:
        self._pool = pool
        self._capacity = capacity
        self._organization = organization
        self._addresses = addresses
        self._method = method
        self._url = url
        self._headers = headers
        self._data = data
        self._deadline = deadline
        self._read_timeout = read_timeout
        self._connection: Connection | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._origin: Origin = (url.scheme, url.raw_host or "", url.port or 0)

    async def __aenter__(self) -> UpstreamResponse:
        pool, capacity, url = self._pool, self._capacity, self._url
        key, organization = self._origin, self._organization
        started = asyncio.get_running_loop().time()
        deadline = started + self._deadline
        addresses = await self._addresses(url)  # refuses before anything is opened
        parts = self._serialize()
        if not capacity.take(key, organization):
            wait = self._deadline if self._read_timeout is None else min(self._read_timeout, self._deadline)
            await capacity.wait(key, organization, started + wait, round(wait * 1000))
        try:
            connection = pool.take_idle(key)
            reused = connection is not None
            if connection is None:
                connection = await self._open(key, addresses, deadline)
            try:
                status, raw_headers = await self._send(connection, parts, deadline)
            except UpstreamClosed:
                # A kept-alive connection the upstream closed while it sat idle never saw the
                # request, so an idempotent one is sent again, once, on a new connection.
                if not (reused and self._method in _IDEMPOTENT and not connection.received_anything):
                    raise
                self._release(reusable=False)
                connection = await self._open(key, addresses, deadline)
                status, raw_headers = await self._send(connection, parts, deadline)
            headers = CIMultiDictProxy(
                CIMultiDict(
                    (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
                    for name, value in raw_headers
                )
            )
        except BaseException as exc:
            self._release(reusable=False)
            capacity.release(key, organization)
            if isinstance(exc, Exception):
                raise upstream_error(exc, url.raw_host, url.port) from None
            raise
        return UpstreamResponse(connection, status, headers, url)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection = self._connection
        self._release(reusable=connection is not None and connection.finish())
        self._capacity.release(self._origin, self._organization)

    async def _open(self, key: Origin, addresses: list[ResolvedAddress], deadline: float) -> Connection:
        loop = asyncio.get_running_loop()
        connect_seconds = min(_CONNECT_TIMEOUT_MS / 1000, self._read_timeout or self._deadline)
        return await self._pool.open(key, addresses, min(connect_seconds, deadline - loop.time()))

    async def _send(
        self, connection: Connection, parts: list[bytes], deadline: float
    ) -> tuple[int, RawHeaders]:
        self._connection = connection
        connection.read_timeout = self._read_timeout
        self._timer = asyncio.get_running_loop().call_at(deadline, connection.expire, TimeoutError())
        connection.send(parts, head_only=self._method == "HEAD")
        return await connection.response_head()

    def _release(self, *, reusable: bool) -> None:
        connection, self._connection = self._connection, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if connection is None:
            return
        if reusable:
            self._pool.put_back(connection)
        else:
            connection.finish()
            connection.close()

    def _serialize(self) -> list[bytes]:
        url = self._url
        method = self._method
        lines = [f"{method} {url.raw_path_qs or '/'} HTTP/1.1\r\nHost: {url.host_port_subcomponent}\r\n"]
        defaulted = set()
        for name, value in (self._headers or {}).items():
            lower = name.lower()
            if lower in _FRAMING:
                continue
            if lower in _DEFAULTED:
                defaulted.add(lower)
            lines.append(f"{name}: {value}\r\n")
        if "user-agent" not in defaulted:
            lines.append(f"User-Agent: {_USER_AGENT}\r\n")
        if "accept" not in defaulted:
            lines.append("Accept: */*\r\n")
        if "accept-encoding" not in defaulted:
            lines.append(f"Accept-Encoding: {ACCEPT_ENCODING}\r\n")
        data = self._data
        if data:
            lines.append(f"Content-Length: {len(data)}\r\n")
        elif method in _BODY_METHODS:
            lines.append("Content-Length: 0\r\n")
        lines.append("\r\n")
        head = "".join(lines)
        breaks = len(lines) + 1  # one per line, and the request line shares the first with Host
        if head.count("\n") != breaks or head.count("\r") != breaks or "\x00" in head:
            # Callers validate headers; this keeps a bad value from ever splitting a request.
            raise InvalidRequest("a header name or value contains CR, LF or NUL")
        encoded = head.encode("utf-8", "surrogateescape")
        return [encoded, data] if data else [encoded]
