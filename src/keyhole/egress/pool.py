"""Keep-alive connections to upstreams, keyed by scheme, host and port.

A connection is opened to an address the resolver has already checked (never to a name), and
TLS verifies the certificate against the URL's host name. Idle connections are reused newest
first and closed after ``idle_seconds``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Sequence

from keyhole.egress.capacity import Origin
from keyhole.egress.http1 import ConnectFailed, Connection, ConnectTimeout
from keyhole.egress.resolver import ResolvedAddress


class ConnectionPool:
    def __init__(self, *, idle_per_key: int, idle_seconds: float = 30.0) -> None:
        self._idle: dict[Origin, list[Connection]] = {}
        self._idle_seconds = idle_seconds
        self._idle_per_key = idle_per_key  # no more than can be in flight to one origin at once
        self._ssl: ssl.SSLContext | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    def take_idle(self, key: Origin) -> Connection | None:
        stack = self._idle.get(key)
        if not stack:
            return None
        oldest_allowed = time.monotonic() - self._idle_seconds
        while stack:
            connection = stack.pop()
            if not _expired(connection, oldest_allowed):
                return connection
            connection.close()
        return None

    async def open(
        self, key: Origin, addresses: Sequence[ResolvedAddress], connect_seconds: float
    ) -> Connection:
        """A new connection to the first address that accepts, within ``connect_seconds`` overall."""
        scheme, host, _ = key
        context = self._ssl_context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        try:
            async with asyncio.timeout(connect_seconds):
                for address in addresses:
                    connection = Connection(key)
                    try:
                        await loop.create_connection(
                            lambda connection=connection: connection,
                            host=address.host,
                            port=address.port,
                            family=address.family,
                            ssl=context,
                            server_hostname=host if context is not None else None,
                        )
                    except ssl.SSLError:
                        raise  # the certificate is the same on every address
                    except OSError as exc:
                        last = exc
                        continue
                    return connection
        except TimeoutError:
            raise ConnectTimeout("timed out connecting") from None
        raise ConnectFailed(last or OSError("no address to connect to"))

    def put_back(self, connection: Connection) -> None:
        stack = self._idle.setdefault(connection.key, [])
        if len(stack) >= self._idle_per_key:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        stack.append(connection)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(self._idle_seconds, self._sweep)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for stack in self._idle.values():
            for connection in stack:
                connection.close()
        self._idle.clear()

    def _sweep(self) -> None:
        """Close connections idle too long; the stacks are oldest first, so trim from the bottom."""
        self._sweeper = None
        oldest_allowed = time.monotonic() - self._idle_seconds
        for key, stack in list(self._idle.items()):
            expired = 0
            while expired < len(stack) and _expired(stack[expired], oldest_allowed):
                stack[expired].close()
                expired += 1
            del stack[:expired]
            if not stack:
                del self._idle[key]
        if self._idle:
            self._sweeper = asyncio.get_running_loop().call_later(self._idle_seconds, self._sweep)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl


def _expired(connection: Connection, oldest_allowed: float) -> bool:
    return connection.closed or connection.idle_since < oldest_allowed
