"""Reading at most a cap of an upstream body, streamed or whole; the rest is never downloaded.

Read failures are the domain errors ``UpstreamResponse.iter_chunks`` raises (502/504)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from keyhole.egress.client import UpstreamResponse


class CappedBody:
    """Iterate over at most ``cap`` bytes of a response body, one chunk in memory at a time.

    After iteration, ``read`` is the number of bytes yielded and ``truncated`` tells whether the
    upstream had more (reading stopped there; the rest is never downloaded).
    """

    def __init__(self, response: UpstreamResponse, cap: int) -> None:
        self._response = response
        self._cap = cap
        self.read = 0
        self.truncated = False

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.iter_chunks():
            room = self._cap - self.read
            if len(chunk) > room:
                self.truncated = True
                if room > 0:
                    self.read += room
                    yield chunk[:room]
                return
            self.read += len(chunk)
            yield chunk


async def read_capped(response: UpstreamResponse, cap: int) -> tuple[bytes, bool]:
    """Read at most ``cap`` body bytes; True means the body was longer and reading stopped.

    Holds at most ``cap`` plus one chunk. The exchange's deadline also bounds reading.
    """
    whole = response.buffered_body()
    if whole is not None:
        return (whole, False) if len(whole) <= cap else (whole[:cap], True)
    body = CappedBody(response, cap)
    data = bytearray()
    async for chunk in body.chunks():
        data += chunk
    return bytes(data), body.truncated
