"""One HTTP/1.1 connection to an upstream: send a request, parse the answer, stream its body.

The parser is httptools (llhttp, in C); everything else is a small asyncio protocol. Body chunks
are queued as they arrive and reading from the socket pauses while more than ``_HIGH_WATER``
bytes wait for the consumer, so memory stays bounded whatever the upstream sends.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

import httptools

_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
_MAX_HEADER_BYTES = 64 * 1024
_MAX_HEADERS = 256


class UpstreamProtocolError(Exception):
    """The upstream's answer is not valid HTTP/1.1 (or its header block is too large)."""


class UpstreamBodyError(Exception):
    """The response body is malformed: bad chunked framing or bad content coding."""


class UpstreamClosed(ConnectionError):
    """The connection ended before the response was complete."""


class ConnectTimeout(TimeoutError):
    """No connection (TCP and TLS) could be made within the connect deadline."""


class ConnectFailed(OSError):
    """Every address refused or failed; ``os_error`` is the last failure."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(os_error.errno, os_error.strerror)
        self.os_error = os_error


RawHeaders = list[tuple[bytes, bytes]]


class Connection(asyncio.Protocol):
    """A keep-alive connection carrying one exchange at a time."""

    def __init__(self, key: tuple[str, str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.read_timeout: float | None = None  # bounds each wait for data when set
        self._parser = httptools.HttpResponseParser(self)
        self._loop = asyncio.get_running_loop()
        self._active = False
        self._head_only = False
        self._status = 0
        self._headers: RawHeaders = []
        self._header_bytes = 0
        self._head_done = False
        self._complete = False
        self._keep_alive = False
        self._received = False
        self._error: BaseException | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    # -- the exchange, as driven by the client -------------------------------------------------

    def send(self, parts: list[bytes], *, head_only: bool = False) -> None:
        """Write a request; ``head_only`` for HEAD, whose answer has no body whatever it says."""
        self._active = True
        self._head_only = head_only
        self._status = 0
        self._headers = []
        self._header_bytes = 0
        self._head_done = self._complete = self._received = self._keep_alive = False
        self._error = None
        self._chunks.clear()
        self._buffered = 0
        transport = self.transport
        assert transport is not None
        if self._paused:
            self._paused = False
            transport.resume_reading()
        transport.writelines(parts)

    @property
    def received_anything(self) -> bool:
        return self._received

    async def response_head(self) -> tuple[int, RawHeaders]:
        while not self._head_done:
            if self._error is not None:
                raise self._error
            await self._wait()
        return self._status, self._headers

    async def read_chunk(self) -> bytes:
        """The next body chunk; ``b""`` once the body is complete."""
        chunks = self._chunks
        while not chunks:
            if self._error is not None:
                raise self._error
            if self._complete:
                return b""
            await self._wait()
        chunk = chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered <= _LOW_WATER:
            self._paused = False
            if self.transport is not None:
                self.transport.resume_reading()
        return chunk

    def take_buffered_body(self) -> bytes | None:
        """The whole body when it has already arrived (the common small answer), else None."""
        if not self._complete or self._error is not None:
            return None
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        return body

    def finish(self) -> bool:
        """End the exchange; True when the connection can carry another one."""
        self._active = False
        self._chunks.clear()
        return (
            self._complete
            and self._error is None
            and not self.closed
            and not self._head_only  # the parser still expects the body the headers announced
            and self._keep_alive
        )

    def expire(self, error: BaseException) -> None:
        """Abort the exchange with ``error`` (a deadline fired), unless it already ended."""
        if self._complete or self._error is not None:
            return
        self._fail(error)

    def close(self) -> None:
        self._active = False
        if self.transport is not None and not self.closed:
            self.transport.abort()

    async def _wait(self) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = None
        if self.read_timeout is not None:
            timer = self._loop.call_later(self.read_timeout, self.expire, TimeoutError())
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        self._error = error
        if self.transport is not None and not self.closed:
            self.transport.abort()
        self._wake()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass it

    def data_received(self, data: bytes) -> None:
        if not self._active:  # nothing was asked: an idle connection must stay silent
            self.close()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            if self._head_done:
                self._fail(UpstreamBodyError(str(exc)))
            else:
                self._fail(UpstreamProtocolError(str(exc)))
        except UpstreamProtocolError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._active or self._complete or self._error is not None:
            return
        if self._head_done and not self._framed():
            self._complete = True  # no length and no chunking: the body ends with the connection
            self._wake()
            return
        error = UpstreamClosed("the upstream closed the connection before the response was complete")
        error.__cause__ = exc
        self._error = error
        self._wake()

    # -- httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > _MAX_HEADER_BYTES or len(self._headers) >= _MAX_HEADERS:
            raise UpstreamProtocolError("the response header block is too large")
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._headers = []  # an interim answer (100 Continue, 103 Early Hints): wait on
            self._header_bytes = 0
            return
        self._status = status
        self._head_done = True
        if self._head_only:
            self._complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._head_done:
            self._keep_alive = self._parser.should_keep_alive()  # llhttp resets it right after
            self._complete = True
            self._wake()

    def _framed(self) -> bool:
        for name, _ in self._headers:
            if name.lower() in (b"content-length", b"transfer-encoding"):
                return True
        return self._status in (204, 304)
